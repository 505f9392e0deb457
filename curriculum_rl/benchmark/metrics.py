"""Per-run figures of merit (one row of ``results.csv`` per run).

* G, the paired gain over uniform weighting on the same seed: ``J_uniform - J`` on the
  test split (log-loss units, higher is better), at the final parameters and at the
  best-validation checkpoint. A run whose loss turned non-finite has J = +inf, so its G is
  -inf (a failure that the IQM's trimming may absorb, never a silent drop); when uniform
  failed too, the two tie (G = 0).
* Δm% and the worst-task change against single-task training (positive = worse), when
  the reference is available; the worst-task change against uniform on the same seed,
  in the same convention, which is paired and free of the capacity confound of Δm%.
* Anytime performance: the area under the validation-J curve, as its mean over the
  decisions (lower is better).
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from curriculum_rl.benchmark.config import UNIFORM
from curriculum_rl.benchmark.run import Records
from curriculum_rl.benchmark.single_task import References, relative_score

REFERENCE_FIELDS = ("delta_m_final", "delta_m_best", "worst_vs_stl_final", "worst_vs_stl_best")


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
    worst_vs_uniform_final: float
    worst_vs_uniform_best: float
    delta_m_final: float
    delta_m_best: float
    worst_vs_stl_final: float
    worst_vs_stl_best: float
    auc_val_j: float
    diverged: bool


def run_rows(records: Records, references: References | None) -> list[RunRow]:
    """One row per run, in (suite, controller, seed) order of ``records``."""
    rows = []
    for (suite, controller), runs in records.items():
        for seed, run in enumerate(runs):
            uniform = records[suite, UNIFORM][seed]
            ref = references.get((suite, seed)) if references is not None else None
            rows.append(_row(suite, controller, seed, run, uniform, ref))
    return rows


def _row(
    suite: str, controller: str, seed: int, run: dict, uniform: dict, ref: dict | None
) -> RunRow:
    hib = run["higher_is_better"]
    scores = {}
    for ckpt in ("final", "best"):
        metric = run[f"{ckpt}_test_metric"]
        scores[f"gain_{ckpt}"] = paired_gain(uniform[f"{ckpt}_test_j"], run[f"{ckpt}_test_j"])
        scores[f"worst_vs_uniform_{ckpt}"] = relative_score(
            "worst_task_change", metric, uniform[f"{ckpt}_test_metric"], hib
        )
        stl = ref[f"{ckpt}_test_metric"] if ref is not None else None
        for name, kind in (("delta_m", "delta_m"), ("worst_vs_stl", "worst_task_change")):
            value = relative_score(kind, metric, stl, hib) if stl is not None else math.nan
            scores[f"{name}_{ckpt}"] = value
        if any(m is None for m in metric):
            # A non-finite metric is this run's failure: the worst score, not "undefined"
            # (NaN stays for a reference that is itself undefined, and is left out).
            failed = ["worst_vs_uniform"] + (["delta_m", "worst_vs_stl"] if stl else [])
            scores.update({f"{name}_{ckpt}": math.inf for name in failed})
    return RunRow(
        suite=suite,
        controller=controller,
        seed=seed,
        num_tasks=len(run["tasks"]),
        final_test_j=_j(run["final_test_j"]),
        best_test_j=_j(run["best_test_j"]),
        auc_val_j=anytime_auc(run["j_curve"]),
        diverged=bool(run["diverged"]),
        **scores,
    )


def paired_gain(j_uniform: float | None, j: float | None) -> float:
    """G = J_uniform - J; ``None`` (a non-finite J in the JSON) counts as +inf."""
    ju, jc = _j(j_uniform), _j(j)
    if math.isinf(ju) and math.isinf(jc):
        return 0.0  # both runs failed: no difference between them
    return ju - jc


def anytime_auc(j_curve: list[float | None]) -> float:
    """Mean of the validation-J curve over the decisions (area under it, per decision)."""
    values = [_j(v) for v in j_curve]
    return sum(values) / len(values) if values else math.nan


def _j(value: float | None) -> float:
    return math.inf if value is None else float(value)


def write_csv(rows: list[RunRow], path: Path, with_reference: bool) -> None:
    """``results.csv``: one row per run; the Δm%-vs-single-task columns only when the
    reference was computed (rather than columns of blanks)."""
    names = [f.name for f in fields(RunRow)]
    if not with_reference:
        names = [n for n in names if n not in REFERENCE_FIELDS]
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=names, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(asdict(row))
    tmp.replace(path)
