"""The benchmark harness: suites x controllers x seeds with paired, robust statistics.

``run_benchmark(BenchmarkConfig(...))`` (what ``curriculum-rl benchmark`` calls) runs
every (suite, controller) pair over the same seeds, resumes from the runs already stored
in ``out``, and writes

* ``runs/<suite>/<controller>/seed<k>.json``: each run's record (curves, final and
  best-checkpoint test metrics, weight and sampling trajectories);
* ``results.csv``: one row per run (G, Δm%, worst-task change, AUC, divergence);
* ``summary.md``: per-suite tables and the aggregate over suites (IQM, 95% CIs);
  both over exactly the seeds of ``config`` (runs of other seeds a resumed folder holds
  stay out of them);
* ``plots/*.png`` and TensorBoard logs under ``tb/``.

The runs are computed in units (batches of seeds of one suite and controller) by an
executor: in this process, or as Ray tasks on a cluster (``executor="ray"``,
:mod:`curriculum_rl.benchmark.executors`), with the same results.

See :mod:`curriculum_rl.benchmark.metrics` for the scores and
:mod:`curriculum_rl.stats` for the statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from curriculum_rl.atomic import folder_lock, json_ready
from curriculum_rl.benchmark.config import (
    BenchmarkConfig,
    ControllerEntry,
    SuiteEntry,
    resolve_controllers,
    resolve_suite_entries,
    unavailable_controllers,
    versus_label,
)
from curriculum_rl.benchmark.executors import Executor, make_executor
from curriculum_rl.benchmark.metrics import RunRow, run_rows, write_csv
from curriculum_rl.benchmark.plots import write_plots
from curriculum_rl.benchmark.report import write_summary
from curriculum_rl.benchmark.run import InstanceCache, check_controllers_serve, execute_runs
from curriculum_rl.benchmark.single_task import compute_references
from curriculum_rl.benchmark.summary import summarize


@dataclass
class BenchmarkResult:
    """What a benchmark produced: the summary (JSON-ready), the per-run rows and paths."""

    summary: dict
    rows: list[RunRow]
    runs_computed: int
    with_reference: bool
    csv_path: Path
    summary_path: Path
    plot_paths: list[Path] = field(default_factory=list)


def run_benchmark(config: BenchmarkConfig) -> BenchmarkResult:
    """Run (or resume) the benchmark described by ``config`` and write its reports."""
    executor = make_executor(config)  # a missing Ray is an error before any work
    suites = resolve_suite_entries(config.suites)
    controllers = resolve_controllers(config.controllers)
    versus = versus_label(config.versus, controllers)  # a wrong name fails before any work
    instances = InstanceCache(suites)
    check_controllers_serve(config, suites, controllers, instances)
    with folder_lock(config.out, "curriculum-rl benchmark"):
        return _run_locked(config, suites, controllers, instances, executor, versus)


def _run_locked(
    config: BenchmarkConfig,
    suites: list[SuiteEntry],
    controllers: list[ControllerEntry],
    instances: InstanceCache,
    executor: Executor,
    versus: str | None,
) -> BenchmarkResult:
    """Compute what is missing and write the reports; the caller holds the folder lock."""
    records, computed = execute_runs(config, suites, controllers, instances, executor)
    references = compute_references(config, suites, instances)
    with_reference = references is not None
    rows = run_rows(records, references)
    suite_labels = [s.label for s in suites]
    controller_labels = [c.label for c in controllers]
    summary = summarize(rows, suite_labels, controller_labels, with_reference, config.reps, versus)
    settings = _settings(config, suite_labels, controller_labels, with_reference, versus)
    summary = {"settings": settings, **summary}
    csv_path, summary_path = config.out / "results.csv", config.out / "summary.md"
    write_csv(rows, csv_path, with_reference)
    write_summary(summary_path, config, summary, records, with_reference)
    plots = write_plots(config.out, records, summary) if config.plots else []
    return BenchmarkResult(
        json_ready(summary), rows, computed, with_reference, csv_path, summary_path, plots
    )


def _settings(
    config: BenchmarkConfig,
    suites: list[str],
    controllers: list[str],
    with_reference: bool,
    versus: str | None,
) -> dict:
    return {
        "suites": suites,
        "controllers": controllers,
        "seeds": config.seeds,
        "first_seed": config.first_seed,
        **config.settings(),
        "skipped_controllers": unavailable_controllers(config.controllers),
        "reference": with_reference,
        "bootstrap_reps": config.reps,
        "versus": versus,
        "out": str(config.out),
    }


__all__ = ["BenchmarkConfig", "BenchmarkResult", "RunRow", "run_benchmark"]
