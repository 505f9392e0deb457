"""Executing the runs: suites x controllers, the seeds of each pair batched together.

For each (suite, controller) the seeds run as one batch through
:func:`~curriculum_rl.runner.run_controller`: instance ``suite.sample(s)`` with trainer
seed ``s``. Every controller therefore trains on the same instances from the same
initialisations, in the same batch (a paired comparison).

The unit of resumption is that batch, not the single run: a run's random draws do not
depend on its batch, but batched matrix products of another shape may round differently,
so a seed recomputed alone could differ in the last bits from the same seed computed with
its batch. When any seed of a pair is missing, the whole batch is
recomputed and only the missing runs are written; the stored ones, identical by
construction, are left untouched.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import cast

from tqdm.auto import tqdm

from curriculum_rl import runner
from curriculum_rl.benchmark.config import BenchmarkConfig, ControllerEntry, SuiteEntry
from curriculum_rl.benchmark.store import (
    SETTINGS_KEY,
    load_done_run,
    run_path,
    tb_dir,
    write_json_atomic,
)
from curriculum_rl.suites import SuiteInstance

Records = dict[tuple[str, str], list[dict]]
"""(suite label, controller label) -> one stored run dict per seed, in seed order."""


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
                    runs.update(_run_batch(config, suite, ctrl, seeds, todo, instances, show))
                    bar.update(len(todo))
    # Every entry is filled now: loaded, or written by its batch above.
    records: Records = {key: [cast(dict, runs[s]) for s in seeds] for key, runs in found.items()}
    return records, missing


def _run_batch(
    config: BenchmarkConfig,
    suite: SuiteEntry,
    ctrl: ControllerEntry,
    seeds: list[int],
    todo: list[int],
    instances: InstanceCache,
    on_decision: Callable[[int, int], None],
) -> dict[int, dict]:
    """Train all ``seeds`` of one (suite, controller) together; store the runs of ``todo``."""
    batch = [instances.get(suite.label, s) for s in seeds]
    results = runner.run_controller(
        batch,
        seeds,
        ctrl.make(batch, config.budget, config.trainer),
        config.budget,
        config.interval,
        config.trainer,
        on_decision=on_decision,
    )
    stored = {}
    for seed, result in zip(seeds, results, strict=True):
        if seed not in todo:
            continue
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
