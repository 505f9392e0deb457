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
the new runs and leaves the stored ones alone (as does another first seed: the seeds it
shares with the stored ones are read, the tables hold only its own), a lost run is
recomputed alone, and
``curriculum-rl run --seed s`` (which pads the same way) reproduces the benchmark's seed
``s`` exactly. ``tests/test_hardening.py`` checks both bit for bit on CPU; on other
hardware this holds as far as its kernels give the same result for one matrix of a batch
whatever the batch size (README, "Guarantees"). Batches hold at most
``BenchmarkConfig.batch_size`` runs, which bounds memory for large seed counts (and, on a
GPU, is how many runs share the device).

A batch of one suite, controller and shape is a :class:`Unit`, the work an executor runs
(:mod:`curriculum_rl.benchmark.executors`: in this process, or as Ray tasks on a cluster);
:func:`run_unit` computes it the same way everywhere, and the driver stores each run as
its unit returns.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, cast

import torch
from tqdm.auto import tqdm

from curriculum_rl import runner
from curriculum_rl.benchmark.config import (
    DEFAULT_BATCH_SIZE,
    TASK_SLOTS,
    TUNED,
    BenchmarkConfig,
    ControllerEntry,
    SuiteEntry,
)
from curriculum_rl.benchmark.executors import Executor
from curriculum_rl.benchmark.store import (
    IDENTITY_KEY,
    SETTINGS_KEY,
    load_done_run,
    run_path,
    write_run,
)
from curriculum_rl.controllers.base import Controller, RunContext
from curriculum_rl.suites import SuiteInstance
from curriculum_rl.trainer import BatchKey, TrainerConfig, batch_key

Records = dict[tuple[str, str], list[dict]]
"""(suite label, controller label) -> one stored run dict per seed of the config's
:attr:`~curriculum_rl.benchmark.config.BenchmarkConfig.seed_range`, in seed order."""


class RunShape(NamedTuple):
    """How the trainer pads one run: its task slots and its
    :class:`~curriculum_rl.trainer.BatchKey` (input shape, body, head and target widths).
    Runs of one shape batch together without changing each other's numbers."""

    task_slots: int
    key: BatchKey


def run_shape(instance: SuiteInstance) -> RunShape:
    """The padding of a run on ``instance``, from the instance alone (never its batch)."""
    slots = TASK_SLOTS * math.ceil(instance.num_tasks / TASK_SLOTS)
    return RunShape(slots, batch_key(instance))


def run_seeds(
    instances: Sequence[SuiteInstance],
    seeds: Sequence[int],
    make: Callable[[list[SuiteInstance]], Controller],
    budget: int,
    interval: int,
    trainer: TrainerConfig,
    on_decision: Callable[[int, int], None] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[runner.RunRecord]:
    """One record per (instance, seed), in order, each as if it had been trained alone:
    runs are grouped by :func:`run_shape` and padded by it, in batches of at most
    ``batch_size``; ``make(batch)`` builds a fresh controller per batch."""
    records: list[runner.RunRecord | None] = [None] * len(instances)
    for shape, members in _batches(instances, batch_size):
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
            out_max=shape.key.head_width,
        )
        for i, record in zip(members, results, strict=True):
            records[i] = record
    return cast(list[runner.RunRecord], records)


def _batches(
    instances: Sequence[SuiteInstance], batch_size: int
) -> Iterator[tuple[RunShape, list[int]]]:
    groups: dict[RunShape, list[int]] = {}
    for i, instance in enumerate(instances):
        groups.setdefault(run_shape(instance), []).append(i)
    for shape, members in groups.items():
        for start in range(0, len(members), batch_size):
            yield shape, members[start : start + batch_size]


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
    built = {c.label: c.make() for c in controllers if c.spec not in TUNED}
    for suite in suites:
        for seed in config.seed_range:
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


@dataclass(frozen=True)
class Unit:
    """One unit of work: seeds of one suite and controller that share a run shape, at
    most ``batch_size`` of them, trained as one batch by :func:`run_unit` wherever an
    executor runs it (the unit of resumption stays the single run)."""

    suite: str
    controller: ControllerEntry
    seeds: tuple[int, ...]


def plan_units(
    config: BenchmarkConfig,
    suites: Sequence[SuiteEntry],
    controllers: Sequence[ControllerEntry],
    todo: Callable[[str, str], list[int]],
    instances: InstanceCache,
) -> list[Unit]:
    """The units that compute the runs ``todo(suite, controller)`` of every pair, in
    grid order, batched as :func:`run_seeds` batches them."""
    units = []
    for suite in suites:
        for ctrl in controllers:
            seeds = todo(suite.label, ctrl.label)
            batch = [instances.get(suite.label, s) for s in seeds]
            for _, members in _batches(batch, config.batch_size):
                units.append(Unit(suite.label, ctrl, tuple(seeds[i] for i in members)))
    return units


def run_unit(
    config: BenchmarkConfig,
    unit: Unit,
    *instances: SuiteInstance,
    on_decision: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """Train the runs of ``unit`` on ``instances`` (one per seed, in order) and return
    them as stored records. The same function in every executor, so a run's numbers do
    not depend on where it ran; ``static-tuned`` is tuned here, per batch, as locally."""
    results = run_seeds(
        list(instances),
        list(unit.seeds),
        lambda batch: unit.controller.make(batch, config.budget, config.trainer),
        config.budget,
        config.interval,
        config.trainer,
        on_decision,
        batch_size=config.batch_size,
    )
    records = []
    for result in results:
        # The label, not the controller's own name: two policy files may share a name.
        result.controller = unit.controller.label
        # Through JSON and back, so that a fresh run and a resumed one look alike.
        records.append(
            json.loads(json.dumps({**result.to_dict(), SETTINGS_KEY: config.settings()}))
        )
    return records


def execute_runs(
    config: BenchmarkConfig,
    suites: Sequence[SuiteEntry],
    controllers: Sequence[ControllerEntry],
    instances: InstanceCache,
    executor: Executor,
) -> tuple[Records, int]:
    """Run (or load) every run; return the records and how many runs were computed now.

    The units go to ``executor`` all at once (one progress bar over the whole grid), and
    each run is stored as soon as its unit returns: an interruption, or a unit that
    fails, loses only the units still running; a rerun computes only what is missing.
    The executor is started only when something is missing.
    """
    settings = config.settings()
    seeds = list(config.seed_range)
    identity = {ctrl.label: ctrl.identity() for ctrl in controllers}
    found: dict[tuple[str, str], dict[int, dict | None]] = {
        (suite.label, ctrl.label): {
            s: load_done_run(
                run_path(config.out, suite.label, ctrl.label, s), settings, identity[ctrl.label]
            )
            for s in seeds
        }
        for suite in suites
        for ctrl in controllers
    }
    units = plan_units(
        config,
        suites,
        controllers,
        lambda suite, ctrl: [s for s in seeds if found[suite, ctrl][s] is None],
        instances,
    )
    missing = sum(len(unit.seeds) for unit in units)
    total = len(found) * len(seeds)
    with tqdm(
        total=total,
        initial=total - missing,
        desc="benchmark",
        unit="run",
        disable=not config.progress,
    ) as bar:
        if units:
            with executor:
                for unit, records in _computed(config, units, instances, executor, bar):
                    for seed, record in zip(unit.seeds, records, strict=True):
                        record[IDENTITY_KEY] = identity[unit.controller.label]
                        write_run(
                            config.out,
                            unit.suite,
                            unit.controller.label,
                            seed,
                            record,
                            config.tensorboard,
                        )
                        found[unit.suite, unit.controller.label][seed] = record
                    bar.update(len(unit.seeds))
    # Every entry is filled now: loaded, or written above.
    records: Records = {key: [cast(dict, runs[s]) for s in seeds] for key, runs in found.items()}
    return records, missing


def _computed(
    config: BenchmarkConfig,
    units: list[Unit],
    instances: InstanceCache,
    executor: Executor,
    bar: tqdm,
) -> Iterator[tuple[Unit, list[dict]]]:
    """Each unit with its records, as the executor finishes it. Every object a unit
    needs is shared once (a Ray executor sends an instance once, whatever the number
    of controllers that train on it)."""
    shared: dict[tuple[str, int], object] = {}

    def instance(suite: str, seed: int) -> object:
        if (suite, seed) not in shared:
            shared[suite, seed] = executor.share(instances.get(suite, seed))
        return shared[suite, seed]

    settings = executor.share(config)
    calls = [(settings, unit, *(instance(unit.suite, s) for s in unit.seeds)) for unit in units]
    for i, records in executor.map_unordered(run_unit, calls, lambda i: _postfix(bar, units[i])):
        yield units[i], records


def _postfix(bar: tqdm, unit: Unit) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        bar.set_postfix_str(f"{unit.suite} / {unit.controller.label}: decision {done}/{total}")

    return show
