"""Executing the runs: suites x controllers x seeds, batched, each seed's numbers its own.

Seed ``s`` of a (suite, controller) trains on instance ``suite.sample(s)`` with trainer
seed ``s``, so every controller sees the same instances from the same initialisations
(a paired comparison). Seeds are batched through
:func:`~curriculum_rl.runner.run_controller` for speed, and a seed's numbers never depend
on which other seeds share its batch:

* its random draws are its own (the trainer seeds each run separately);
* the shapes of the batched products are its own too: the trainer pads every run to the
  batch's task slots and head width, and products of another shape may round
  differently, which a controller reading the signals amplifies over a run (the third
  decimal of J). So every run is padded by :func:`run_shape` alone (task slots rounded up
  to a multiple of :data:`TASK_SLOTS`, heads as wide as its own widest task), and only
  runs of one shape share a batch.

Hence the unit of resumption is the single run: extending a benchmark to more seeds adds
the new runs and leaves the stored ones alone, a lost run is recomputed alone, and
``curriculum-rl run --seed s`` (which pads the same way) reproduces the benchmark's seed
``s`` exactly. ``tests/test_hardening.py`` checks both bit for bit on CPU; on other
hardware this holds as far as its kernels give the same result for one matrix of a batch
whatever the batch size (README, "Guarantees"). Batches hold at most :data:`MAX_BATCH`
runs, which bounds memory for large seed counts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple, cast

import torch
from tqdm.auto import tqdm

from curriculum_rl import runner
from curriculum_rl.atomic import write_json_atomic
from curriculum_rl.benchmark.config import (
    STATIC_TUNED,
    TASK_SLOTS,
    BenchmarkConfig,
    ControllerEntry,
    SuiteEntry,
)
from curriculum_rl.benchmark.store import SETTINGS_KEY, load_done_run, run_path, tb_dir
from curriculum_rl.controllers.base import Controller, RunContext
from curriculum_rl.suites import SuiteInstance
from curriculum_rl.trainer import TrainerConfig

MAX_BATCH = 16
"""At most this many runs train in one batch (memory; the numbers do not depend on it)."""

Records = dict[tuple[str, str], list[dict]]
"""(suite label, controller label) -> one stored run dict per seed, in seed order."""


class RunShape(NamedTuple):
    """How the trainer pads one run: task slots, head width, target width. Runs of one
    shape batch together without changing each other's numbers."""

    task_slots: int
    out_max: int
    target_width: int


def run_shape(instance: SuiteInstance) -> RunShape:
    """The padding of a run on ``instance``, from the instance alone (never its batch)."""
    slots = TASK_SLOTS * math.ceil(instance.num_tasks / TASK_SLOTS)
    widths = [
        1 if task.kind == "classification" else int(data.y_train.shape[1])
        for task, data in zip(instance.tasks, instance.data, strict=True)
    ]
    return RunShape(slots, max(t.out_dim for t in instance.tasks), max(widths))


def run_seeds(
    instances: Sequence[SuiteInstance],
    seeds: Sequence[int],
    make: Callable[[list[SuiteInstance]], Controller],
    budget: int,
    interval: int,
    trainer: TrainerConfig,
    on_decision: Callable[[int, int], None] | None = None,
) -> list[runner.RunRecord]:
    """One record per (instance, seed), in order, each as if it had been trained alone:
    runs are grouped by :func:`run_shape` and padded by it, in batches of at most
    :data:`MAX_BATCH`; ``make(batch)`` builds a fresh controller per batch."""
    records: list[runner.RunRecord | None] = [None] * len(instances)
    for shape, members in _batches(instances):
        batch = [instances[i] for i in members]
        results = runner.run_controller(
            batch,
            [seeds[i] for i in members],
            make(batch),
            budget,
            interval,
            trainer,
            on_decision=on_decision,
            max_tasks=shape.task_slots,
            out_max=shape.out_max,
        )
        for i, record in zip(members, results, strict=True):
            records[i] = record
    return cast(list[runner.RunRecord], records)


def _batches(instances: Sequence[SuiteInstance]) -> Iterator[tuple[RunShape, list[int]]]:
    groups: dict[RunShape, list[int]] = {}
    for i, instance in enumerate(instances):
        groups.setdefault(run_shape(instance), []).append(i)
    for shape, members in groups.items():
        for start in range(0, len(members), MAX_BATCH):
            yield shape, members[start : start + MAX_BATCH]


def check_controllers_serve(
    config: BenchmarkConfig,
    suites: Sequence[SuiteEntry],
    controllers: Sequence[ControllerEntry],
    instances: InstanceCache,
) -> None:
    """Build every controller (a misspelt name fails before any suite is sampled), then
    start it on every instance it will meet, as its runs will, so that one which cannot
    serve a suite refuses before any run is computed (not hours later, after the runs of
    the controllers before it).

    Raises:
        ValueError: an unknown controller, or one that refuses a suite (naming the
            controller, the suite, the seed and the controller's reason).
    """
    # static-tuned: fixed weights, tuned per batch from its instances; any K works.
    built = {c.label: c.make() for c in controllers if c.spec != STATIC_TUNED}
    for suite in suites:
        for seed in range(config.seeds):
            instance = instances.get(suite.label, seed)
            context = _run_context(instance, seed, config)
            for label, controller in built.items():
                try:
                    controller.reset(context)
                except ValueError as err:
                    raise ValueError(
                        f"controller {label!r} cannot run on suite {suite.label!r} (seed "
                        f"{seed}, {instance.num_tasks} tasks): {err}. Nothing was computed; "
                        "leave that controller or that suite out of this benchmark"
                    ) from err


def _run_context(instance: SuiteInstance, seed: int, config: BenchmarkConfig) -> RunContext:
    """The context a run on ``instance`` starts its controller with (padded by
    :func:`run_shape`, as :func:`run_seeds` pads it)."""
    k, slots = instance.num_tasks, run_shape(instance).task_slots
    mask = torch.zeros(1, slots, dtype=torch.bool)
    mask[0, :k] = True
    sizes = torch.zeros(1, slots, dtype=torch.long)
    sizes[0, :k] = torch.tensor([len(d.x_train) for d in instance.data])
    return RunContext(mask, sizes, config.budget, config.interval, [seed])


class InstanceCache:
    """Suite instances sampled on first use (real suites may be slow to build) and kept
    for the other controllers and the single-task reference."""

    def __init__(self, suites: Sequence[SuiteEntry]) -> None:
        self._suites = {s.label: s for s in suites}
        self._cache: dict[tuple[str, int], SuiteInstance] = {}

    def get(self, suite: str, seed: int) -> SuiteInstance:
        key = (suite, seed)
        if key not in self._cache:
            self._cache[key] = self._suites[suite].suite.sample(seed)
        return self._cache[key]


def execute_runs(
    config: BenchmarkConfig,
    suites: Sequence[SuiteEntry],
    controllers: Sequence[ControllerEntry],
    instances: InstanceCache,
) -> tuple[Records, int]:
    """Run (or load) every run; return the records and how many runs were computed now."""
    settings = config.settings()
    seeds = list(range(config.seeds))
    found: dict[tuple[str, str], dict[int, dict | None]] = {
        (suite.label, ctrl.label): {
            s: load_done_run(run_path(config.out, suite.label, ctrl.label, s), settings)
            for s in seeds
        }
        for suite in suites
        for ctrl in controllers
    }
    missing = sum(run is None for runs in found.values() for run in runs.values())
    total = len(found) * len(seeds)
    with tqdm(
        total=total,
        initial=total - missing,
        desc="benchmark",
        unit="run",
        disable=not config.progress,
    ) as bar:
        for suite in suites:
            for ctrl in controllers:
                runs = found[suite.label, ctrl.label]
                todo = [s for s in seeds if runs[s] is None]
                if todo:
                    show = _postfix(bar, suite, ctrl)
                    runs.update(_run_missing(config, suite, ctrl, todo, instances, show))
                    bar.update(len(todo))
    # Every entry is filled now: loaded, or written above.
    records: Records = {key: [cast(dict, runs[s]) for s in seeds] for key, runs in found.items()}
    return records, missing


def _run_missing(
    config: BenchmarkConfig,
    suite: SuiteEntry,
    ctrl: ControllerEntry,
    todo: list[int],
    instances: InstanceCache,
    on_decision: Callable[[int, int], None],
) -> dict[int, dict]:
    """Train the runs of ``todo`` (seeds of one suite and controller) and store each."""
    results = run_seeds(
        [instances.get(suite.label, s) for s in todo],
        todo,
        lambda batch: ctrl.make(batch, config.budget, config.trainer),
        config.budget,
        config.interval,
        config.trainer,
        on_decision,
    )
    stored = {}
    for seed, result in zip(todo, results, strict=True):
        # The label, not the controller's own name: two policy files may share a name.
        result.controller = ctrl.label
        # Through JSON and back, so that a fresh run and a resumed one look alike.
        record = json.loads(json.dumps({**result.to_dict(), SETTINGS_KEY: config.settings()}))
        if config.tensorboard:  # imported here: tensorboard is slow to import, and optional
            from curriculum_rl.benchmark.tensorboard import write_run_events

            write_run_events(tb_dir(config.out, suite.label, ctrl.label, seed), record)
        # Last: the JSON is what marks the run as done.
        write_json_atomic(run_path(config.out, suite.label, ctrl.label, seed), record)
        stored[seed] = record
    return stored


def _postfix(bar: tqdm, suite: SuiteEntry, ctrl: ControllerEntry) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        bar.set_postfix_str(f"{suite.label} / {ctrl.label}: decision {done}/{total}")

    return show
