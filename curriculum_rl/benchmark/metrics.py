"""Per-run rows of ``results.csv``: every score of :mod:`curriculum_rl.scores` for one run,
at the final and at the best-validation checkpoint.

* ``gain`` (G_m, the headline: paired gain over uniform on task metrics) and ``gain_j``
  (G_J, on log test loss);
* ``worst_vs_uniform``: the worst task's change against uniform on the same seed (%);
* ``delta_m`` / ``worst_vs_stl``: Δm% and the worst-task change against single-task
  training, when the reference is available;
* ``auc_val_j``: the anytime area under the validation-J curve (mean over decisions);
* ``loss_normalisation``: the run's mean over decisions of the loss normalisation alpha
  (0: weighted sums; 1/2: ``sqrt-loss``; 1: the mean log loss; between: a switch that
  turned on mid-run), 0 for a record stored before the field existed;
* ``failed``: the run diverged (the trainer's one definition); its gains are -inf.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from statistics import fmean

from curriculum_rl.atomic import atomic_path
from curriculum_rl.benchmark.config import UNIFORM
from curriculum_rl.benchmark.run import Records
from curriculum_rl.benchmark.single_task import References
from curriculum_rl.scores import CHECKPOINTS, anytime_auc, score_run

REFERENCE_FIELDS = ("delta_m_final", "delta_m_best", "worst_vs_stl_final", "worst_vs_stl_best")
_SCORE_COLUMNS = {
    "gain": "gain",
    "gain_j": "gain_j",
    "worst_vs_uniform": "worst_vs_uniform",
    "delta_m": "delta_m",
    "worst_vs_stl": "worst_vs_reference",
}


@dataclass(frozen=True)
class RunRow:
    """The figures of one run; ``*_final`` / ``*_best``: final vs best-val checkpoint."""

    suite: str
    controller: str
    seed: int
    num_tasks: int
    final_test_j: float
    best_test_j: float
    gain_final: float
    gain_best: float
    gain_j_final: float
    gain_j_best: float
    worst_vs_uniform_final: float
    worst_vs_uniform_best: float
    delta_m_final: float
    delta_m_best: float
    worst_vs_stl_final: float
    worst_vs_stl_best: float
    auc_val_j: float
    loss_normalisation: float
    failed: bool


def run_rows(records: Records, references: References | None) -> list[RunRow]:
    """One row per run, in (suite, controller, seed) order of ``records``; each run is
    scored against uniform's run of the same seed (the seed it records, which need not
    start at 0: ``BenchmarkConfig.first_seed``)."""
    rows = []
    for (suite, controller), runs in records.items():
        uniform = {run["seed"]: run for run in records[suite, UNIFORM]}
        for run in runs:
            seed = run["seed"]
            ref = references.get((suite, seed)) if references is not None else None
            rows.append(_row(suite, controller, seed, run, uniform[seed], ref))
    return rows


def _row(
    suite: str, controller: str, seed: int, run: dict, uniform: dict, ref: dict | None
) -> RunRow:
    columns = {}
    failed = False
    for checkpoint in CHECKPOINTS:
        scores = score_run(run, uniform, ref, checkpoint)
        failed |= scores.failed
        for column, attribute in _SCORE_COLUMNS.items():
            columns[f"{column}_{checkpoint}"] = getattr(scores, attribute)
    return RunRow(
        suite=suite,
        controller=controller,
        seed=seed,
        num_tasks=len(run["tasks"]),
        final_test_j=_finite_or_inf(run["final_test_j"]),
        best_test_j=_finite_or_inf(run["best_test_j"]),
        auc_val_j=anytime_auc(run["j_curve"]),
        loss_normalisation=fmean(run.get("normalisation") or [0.0]),
        failed=failed,
        **columns,
    )


def _finite_or_inf(value: float | None) -> float:
    return float("inf") if value is None else float(value)


def write_csv(rows: list[RunRow], path: Path, with_reference: bool) -> None:
    """``results.csv``: one row per run; the Δm%-vs-single-task columns only when the
    reference was computed (rather than columns of blanks)."""
    names = [f.name for f in fields(RunRow)]
    if not with_reference:
        names = [n for n in names if n not in REFERENCE_FIELDS]
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=names, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(asdict(row))
