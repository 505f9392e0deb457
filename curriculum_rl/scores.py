"""Every score of a run, defined once (used by ``curriculum-rl run``, the benchmark and
the evaluation during training).

* **G_m**, the headline: the paired gain over uniform weighting on task *metrics*,
  ``G_m = mean over target tasks of log(E_uniform,k / E_k)``, where E is the task's test
  error: the MSE for regression, the error rate with add-one smoothing,
  ``(wrong + 1) / (n + 1)``, for classification and tagging (n = scored predictions:
  examples, or tokens for tagging). It is scale-free, aggregates across suites, and counts
  relative error reduction on the metrics users report; > 0 beats uniform.
* **G_J** = J_uniform - J, with J the mean over target tasks of log test *loss*. Reported
  beside G_m, not the headline: it rewards driving already-solved tasks' cross-entropy
  toward zero, which no user values (geometric-mean weighting "wins" ``sequence`` by +3.4
  in G_J while its task metrics get worse).
* **Δm%** against single-task training and the **worst-task change** (against
  single-task training, or against uniform on the same seed), in percent, positive =
  worse: ``Δm = (1/K) Σ_k (−1)^{s_k} (M_k − M_ref,k) / M_ref,k × 100`` with s_k = 1 when
  higher is better (Maninis et al. 2019 with the sign flipped, as DESIGN.md states).
  Like G_m and G_J, both count the target tasks only (K of them): auxiliaries are trained,
  not scored, so giving one up for the targets costs nothing here.
* **Failures**: a run whose losses or parameters turned non-finite, or whose validation J
  rose far above its start, is marked diverged by the trainer (the one definition:
  :data:`curriculum_rl.trainer.DIVERGENCE_RISE`). A failed run scores as a loss in every
  statistic: G_m = G_J = -inf and relative changes +inf, whatever the other run did; a
  surviving run paired with a failed uniform run gets +inf.

Runs are read as mappings with the keys of
:meth:`curriculum_rl.runner.RunRecord.to_dict` (a stored benchmark JSON, or a record).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

CHECKPOINTS = ("final", "best")


def task_errors(
    metrics: Sequence[float | None], kinds: Sequence[str], counts: Sequence[int]
) -> list[float]:
    """Per-task test error E_k: MSE for regression; ``(wrong + 1) / (n + 1)`` for
    classification and tagging, from the accuracy and the number of scored predictions.
    A missing or non-finite metric gives ``inf``."""
    errors = []
    for metric, kind, n in zip(metrics, kinds, counts, strict=True):
        if metric is None or not math.isfinite(metric):
            errors.append(math.inf)
        elif kind == "regression":
            errors.append(float(metric))
        else:
            wrong = max(0.0, (1.0 - float(metric)) * n)
            errors.append((wrong + 1.0) / (n + 1.0))
    return errors


def metric_gain(
    uniform_errors: Sequence[float],
    errors: Sequence[float],
    targets: Sequence[bool],
    bound: float | None = None,
) -> float:
    """G_m: mean over target tasks of ``log(E_uniform,k / E_k)`` (see the module doc).

    With ``bound``, each task's log ratio is clipped to ``[-bound, bound]`` first, so no
    single task can carry the mean: the headline's sensitivity check
    (``benchmarks/score_bounds.py``), not a second headline."""
    if bound is not None and not bound > 0:
        raise ValueError(f"bound must be > 0 (a log error ratio), got {bound}")
    chosen = [(u, e) for u, e, t in zip(uniform_errors, errors, targets, strict=True) if t]
    if not chosen:
        raise ValueError("no target task to score; mark at least one task as a target")
    if any(not math.isfinite(e) for _, e in chosen):
        return -math.inf
    if any(not math.isfinite(u) for u, _ in chosen):
        return math.inf
    terms = task_terms(uniform_errors, errors, targets)
    if bound is not None:
        terms = [min(max(t, -bound), bound) for t in terms]
    return sum(terms) / len(terms)


def task_terms(
    uniform_errors: Sequence[float], errors: Sequence[float], targets: Sequence[bool]
) -> list[float]:
    """G_m's terms: ``log(E_uniform,k / E_k)`` for each target task (finite errors)."""
    tiny = 1e-30  # an exact-zero MSE (a constant target) must not give log(0)
    chosen = zip(uniform_errors, errors, targets, strict=True)
    return [math.log(max(u, tiny) / max(e, tiny)) for u, e, t in chosen if t]


def loss_gain(uniform_j: float | None, j: float | None) -> float:
    """G_J = J_uniform - J; ``None`` (a non-finite J in JSON) counts as a failed run."""
    if j is None or not math.isfinite(j):
        return -math.inf
    if uniform_j is None or not math.isfinite(uniform_j):
        return math.inf
    return float(uniform_j) - float(j)


def relative_changes(
    metrics: Sequence[float | None],
    reference_metrics: Sequence[float | None],
    higher_is_better: Sequence[bool],
) -> list[float]:
    """Per-task signed relative change in percent, positive = worse than the reference:
    ``(-1)^{s_k} (M_k - M_ref,k) / |M_ref,k| * 100``. A missing run metric gives NaN.

    Raises ``ValueError`` on mismatched lengths, or a reference metric that is zero or not
    finite (the relative change is undefined there).
    """
    if not len(metrics) == len(reference_metrics) == len(higher_is_better):
        raise ValueError(
            f"got {len(metrics)} metrics, {len(reference_metrics)} reference metrics and "
            f"{len(higher_is_better)} directions; give one of each per task"
        )
    if not metrics:
        raise ValueError("give at least one task")
    changes = []
    for k, (m, ref, higher) in enumerate(
        zip(metrics, reference_metrics, higher_is_better, strict=True)
    ):
        if ref is None or not math.isfinite(ref) or ref == 0:
            raise ValueError(f"task {k}: reference metric {ref!r} must be finite and non-zero")
        m = math.nan if m is None else float(m)
        sign = -1.0 if higher else 1.0
        changes.append(sign * (m - ref) / abs(ref) * 100.0)
    return changes


def delta_m(
    metrics: Sequence[float | None],
    reference_metrics: Sequence[float | None],
    higher_is_better: Sequence[bool],
) -> float:
    """Δm%, the mean relative change against the reference (lower is better; negative
    beats it). NaN when a run metric is missing; ``ValueError`` when undefined."""
    changes = relative_changes(metrics, reference_metrics, higher_is_better)
    return sum(changes) / len(changes)


def worst_task_change(
    metrics: Sequence[float | None],
    reference_metrics: Sequence[float | None],
    higher_is_better: Sequence[bool],
) -> float:
    """The worst task's relative change in percent (positive = worse than the
    reference): it exposes a task that a good average hides."""
    changes = relative_changes(metrics, reference_metrics, higher_is_better)
    return math.nan if any(math.isnan(c) for c in changes) else max(changes)


def anytime_auc(j_curve: Sequence[float | None]) -> float:
    """Mean of the validation-J curve over the decisions (lower is better)."""
    values = [math.inf if v is None else float(v) for v in j_curve]
    return sum(values) / len(values) if values else math.nan


@dataclass(frozen=True)
class RunScores:
    """The scores of one run at one checkpoint (``final`` or ``best``-validation).

    ``delta_m`` / ``worst_vs_reference`` are against single-task training (NaN without a
    reference, or where it is undefined).
    """

    gain: float
    gain_j: float
    worst_vs_uniform: float
    delta_m: float
    worst_vs_reference: float
    failed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_failed(run: Mapping[str, Any], checkpoint: str = "final") -> bool:
    """A diverged run, or one whose test metrics are not all finite."""
    metrics = run[f"{checkpoint}_test_metric"]
    return bool(run["diverged"]) or any(m is None or not math.isfinite(m) for m in metrics)


def run_errors(run: Mapping[str, Any], checkpoint: str = "final") -> list[float]:
    """The per-task test errors E of a run (:func:`task_errors`)."""
    return task_errors(run[f"{checkpoint}_test_metric"], run["kinds"], run["test_sizes"])


def run_targets(run: Mapping[str, Any]) -> list[bool]:
    """Which of a stored run's tasks are scored: its ``targets``, or every task for a run
    stored before target tasks existed."""
    return run.get("targets") or [True] * len(run["kinds"])


def score_run(
    run: Mapping[str, Any],
    uniform: Mapping[str, Any],
    reference: Mapping[str, Any] | None = None,
    checkpoint: str = "final",
    bound: float | None = None,
) -> RunScores:
    """Every score of ``run`` against the uniform run of the same seed and, when given,
    the single-task reference (a dict with ``{checkpoint}_test_metric``); ``bound`` clips
    G_m's task terms (:func:`metric_gain`)."""
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {CHECKPOINTS}, got {checkpoint!r}")
    failed = run_failed(run, checkpoint)
    metric = run[f"{checkpoint}_test_metric"]
    higher = run["higher_is_better"]
    targets = run_targets(run)
    if failed:
        gain = gain_j = -math.inf
    else:
        gain = metric_gain(
            run_errors(uniform, checkpoint), run_errors(run, checkpoint), targets, bound
        )
        gain_j = loss_gain(uniform[f"{checkpoint}_test_j"], run[f"{checkpoint}_test_j"])
    ref = reference[f"{checkpoint}_test_metric"] if reference is not None else None

    def scored(values: Sequence[Any] | None) -> list[Any] | None:
        """The target tasks' entries: auxiliaries are trained, not scored, so a
        controller that gives one up for the targets is not charged for it."""
        return None if values is None else [v for v, t in zip(values, targets, strict=True) if t]

    metric, higher, ref = scored(metric), scored(higher), scored(ref)
    return RunScores(
        gain=gain,
        gain_j=gain_j,
        worst_vs_uniform=_relative(
            worst_task_change, metric, scored(uniform[f"{checkpoint}_test_metric"]), higher, failed
        ),
        delta_m=_relative(delta_m, metric, ref, higher, failed),
        worst_vs_reference=_relative(worst_task_change, metric, ref, higher, failed),
        failed=failed,
    )


def _relative(score, metrics, reference, higher, failed: bool) -> float:
    """A relative score, +inf for a failed run, NaN where the reference is missing or
    undefined (a reference metric of 0, a failed reference)."""
    if reference is None:
        return math.nan
    try:
        value = score(metrics, reference, higher)
    except ValueError:
        return math.nan
    return math.inf if failed else value
