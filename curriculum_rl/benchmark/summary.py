"""Aggregates over seeds: per (suite, controller), and per controller over all suites.

Every score is summarised by its IQM with a 95% stratified-bootstrap interval
(:mod:`curriculum_rl.stats`): per suite, the seeds are the one stratum; in
the aggregate over suites, each suite is a stratum (rliable's convention for the
runs x tasks score matrix, with suites as tasks). NaN scores (relative changes against a
reference that is itself undefined) are left out; infinite ones (failed runs) stay in.
The result is a plain JSON-ready dict: what ``--json`` prints and the reports read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from curriculum_rl.benchmark.metrics import RunRow
from curriculum_rl.stats import Estimate, stratified_iqm, stratified_mean

# summary key -> RunRow field; "_best" keys are at the best-validation checkpoint.
SCORES = {
    "gain": "gain_final",
    "gain_best": "gain_best",
    "gain_j": "gain_j_final",
    "gain_j_best": "gain_j_best",
    "worst_task_change_vs_uniform": "worst_vs_uniform_final",
    "worst_task_change_vs_uniform_best": "worst_vs_uniform_best",
}
REFERENCE_SCORES = {
    "delta_m": "delta_m_final",
    "delta_m_best": "delta_m_best",
    "worst_task_change": "worst_vs_stl_final",
    "worst_task_change_best": "worst_vs_stl_best",
}
AGGREGATE_SCORES = ("gain", "gain_best", "gain_j", "gain_j_best")
VERSUS_KEYS = (
    "paired_gap_to_versus",
    "paired_gap_to_versus_where_changed",
    "mean_paired_gap_to_versus",
    "largest_suite_gap_to_versus",
)
# The envelope's tolerance (issue #13's goal): within this much G_m of a suite's best.
ENVELOPE_MARGIN = 0.1


def summarize(
    rows: Sequence[RunRow],
    suites: Sequence[str],
    controllers: Sequence[str],
    with_reference: bool,
    reps: int,
    versus: str | None = None,
) -> dict:
    """``{"suites": {suite: {controller: {...}}}, "aggregate": {controller: {...}}}``.

    Per suite and controller: ``gain``/``gain_best`` (G_m, the headline),
    ``gain_j``/``gain_j_best`` (G_J), ``delta_m``/``delta_m_best``
    and ``worst_task_change``/``worst_task_change_best`` (against single-task training;
    ``None`` without the reference), ``worst_task_change_vs_uniform[_best]``, each as
    ``{"iqm": x, "ci": [low, high]}``; ``auc_val_j`` (mean), ``runs`` and ``failed``
    (counts). Aggregate per controller: the gains pooled over suites, ``failed`` and the
    median worst-task change against uniform. In both, ``paired_gap_to_leader``: see
    :func:`paired_gaps`; with ``versus`` (a controller label), the aggregate also has
    ``paired_gap_to_versus``: that controller's G_m minus each one's, run by run, and
    ``paired_gap_to_versus_where_changed``: the same over only the suites where the two
    differ in any run (:func:`gap_where_changed`), ``mean_paired_gap_to_versus``: the mean
    of those differences (the statistic a validation rule fixes in advance), and
    ``largest_suite_gap_to_versus`` (:func:`largest_suite_gap`).
    ``envelope``: see :func:`envelope`.
    Floats may be non-finite (failed runs); :func:`json_ready` maps them to ``None``.
    """
    by_key: dict[tuple[str, str], list[RunRow]] = {}
    for row in rows:
        by_key.setdefault((row.suite, row.controller), []).append(row)
    per_suite = {
        suite: {c: _cell(by_key[suite, c], with_reference, reps) for c in controllers}
        for suite in suites
    }
    aggregate = {
        c: {
            key: _estimate(
                [[getattr(r, SCORES[key]) for r in by_key[s, c]] for s in suites], reps
            ).to_dict()
            for key in AGGREGATE_SCORES
        }
        | {
            "runs": sum(len(by_key[s, c]) for s in suites),
            "failed": sum(r.failed for s in suites for r in by_key[s, c]),
            "worst_task_change_vs_uniform_median": _median(
                [r.worst_vs_uniform_final for s in suites for r in by_key[s, c]]
            ),
        }
        for c in controllers
    }
    for suite, cells in per_suite.items():
        for c, gap in paired_gaps(by_key, [suite], cells, reps).items():
            cells[c]["paired_gap_to_leader"] = gap
    for c, gap in paired_gaps(by_key, suites, aggregate, reps).items():
        aggregate[c]["paired_gap_to_leader"] = gap
    if versus is not None:
        for c in controllers:
            aggregate[c] |= _versus_figures(by_key, per_suite, versus, c, reps)
    return {"suites": per_suite, "aggregate": aggregate, "envelope": envelope(per_suite)}


def _versus_figures(
    by_key: dict[tuple[str, str], list[RunRow]],
    per_suite: dict[str, dict[str, dict]],
    versus: str,
    controller: str,
    reps: int,
) -> dict:
    """The aggregate's ``--versus`` entries for ``controller`` (all ``None`` for the named
    controller itself): the run-by-run differences to ``versus`` as an IQM (as
    :func:`paired_gaps` gives against the leader) and as a mean, from one list."""
    if controller == versus:
        return dict.fromkeys(VERSUS_KEYS)
    suites = list(per_suite)
    differences = _without_nan(_differences(by_key, suites, versus, controller))
    return {
        "paired_gap_to_versus": stratified_iqm(differences, reps).to_dict(),
        "paired_gap_to_versus_where_changed": gap_where_changed(
            by_key, suites, versus, controller, reps
        ),
        "mean_paired_gap_to_versus": stratified_mean(differences, reps).to_dict(),
        "largest_suite_gap_to_versus": largest_suite_gap(per_suite, versus, controller),
    }


def ranking(cells: dict[str, dict]) -> list[str]:
    """Controllers by the IQM of G_m, best first (a non-finite IQM ranks last)."""

    def key(name: str) -> float:
        value = cells[name]["gain"]["iqm"]
        return -value if value is not None and math.isfinite(value) else math.inf

    return sorted(cells, key=key)


def paired_gaps(
    by_key: dict[tuple[str, str], list[RunRow]],
    suites: Sequence[str],
    cells: dict[str, dict],
    reps: int,
) -> dict[str, dict | None]:
    """Per controller, the leader's G_m minus its own, run by run, as an IQM with a 95% CI
    stratified by suite (``None`` for the leader, the first of :func:`ranking`).

    The benchmark is paired: the same seed trains every controller on the same instance
    from the same initialisation, so the difference cancels what the two runs share (how
    hard the instance is). Its interval is the test of "A beats B" for this design; the
    two controllers' separate intervals, which both carry that spread, can overlap when
    the paired difference excludes 0.
    """
    order = ranking(cells)
    leader = order[0]
    gaps: dict[str, dict | None] = {leader: None}
    for c in order:
        if c != leader:
            gaps[c] = _estimate(_differences(by_key, suites, leader, c), reps).to_dict()
    return gaps


def largest_suite_gap(per_suite: dict[str, dict[str, dict]], versus: str, controller: str) -> dict:
    """The suite where ``controller`` is furthest behind ``versus`` by IQM of G_m:
    ``{"suite": name, "gap": versus's IQM minus its own}`` (negative where it is ahead on
    every suite): with the mean paired gap, the two figures a candidate's validation rule
    reads (RESULTS §31c, §40c). A suite both failed on (gap NaN) ranks last."""
    gaps = {
        suite: cells[versus]["gain"]["iqm"] - cells[controller]["gain"]["iqm"]
        for suite, cells in per_suite.items()
    }
    worst = max(gaps, key=lambda suite: -math.inf if math.isnan(gaps[suite]) else gaps[suite])
    return {"suite": worst, "gap": gaps[worst]}


def gap_where_changed(
    by_key: dict[tuple[str, str], list[RunRow]],
    suites: Sequence[str],
    leader: str,
    controller: str,
    reps: int,
) -> dict:
    """``leader``'s G_m minus ``controller``'s, run by run, over only the suites where some
    run differs (as :func:`paired_gaps`), with ``suites``: how many those are.

    A controller that changes another's decision only in rare regimes (a cap on
    auxiliaries that outweigh the targets tenfold) is identical on most suites; there
    most differences are exactly 0, and an interquartile mean over all suites is 0 by
    construction however large its effect where it acts. Over the suites it changes, the
    same paired test sees that effect; the count says how often it acts."""
    changed = [s for s in suites if _runs_differ(by_key[s, leader], by_key[s, controller])]
    if not changed:
        return {"suites": 0, "iqm": 0.0, "ci": [0.0, 0.0]}
    estimate = _estimate(_differences(by_key, changed, leader, controller), reps)
    return {"suites": len(changed), **estimate.to_dict()}


def _runs_differ(first: list[RunRow], second: list[RunRow]) -> bool:
    """Whether two controllers' runs of one suite differ in G_m for any seed (equal
    non-finite values, failed runs both, count as the same)."""
    return any(not (a == b or (math.isnan(a) and math.isnan(b))) for a, b in _paired(first, second))


def _differences(
    by_key: dict[tuple[str, str], list[RunRow]],
    suites: Sequence[str],
    leader: str,
    controller: str,
) -> list[list[float]]:
    """Per suite, ``leader``'s G_m minus ``controller``'s for each seed both ran."""
    return [[a - b for a, b in _paired(by_key[s, leader], by_key[s, controller])] for s in suites]


def _paired(first: list[RunRow], second: list[RunRow]) -> list[tuple[float, float]]:
    """The final G_m of both controllers' runs, seed by seed, for each seed both ran."""
    gains = {r.seed: r.gain_final for r in first}
    return [(gains[r.seed], r.gain_final) for r in second if r.seed in gains]


def envelope(per_suite: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """Per controller, its gap on each suite to the best controller there (best IQM of
    G_m minus its own; 0 where it is the best) and the largest of those gaps: how far a
    user who always picks this controller is from the best choice they could have made,
    suite by suite. ``inf`` where its IQM is not finite (failed runs dominate).

    ``clear_misses``: the suites where it is more than ``ENVELOPE_MARGIN`` behind with the
    paired gap's 95% CI (``paired_gap_to_leader``, if the cells have it) above the margin.
    The best of many IQMs is biased up (the largest of many noisy estimates), so a gap
    from the IQMs alone overstates misses where seeds disagree; the paired interval is the
    test of each one."""
    gaps: dict[str, dict] = {}
    for suite, cells in per_suite.items():
        finite = [c["gain"]["iqm"] for c in cells.values() if math.isfinite(c["gain"]["iqm"])]
        best = max(finite, default=math.nan)
        for controller, cell in cells.items():
            own = cell["gain"]["iqm"]
            gap = best - own if math.isfinite(own) else math.inf
            entry = gaps.setdefault(controller, {"gaps": {}, "clear_misses": []})
            entry["gaps"][suite] = gap
            if gap > ENVELOPE_MARGIN and _clearly_above(cell.get("paired_gap_to_leader")):
                entry["clear_misses"].append(suite)
    for entry in gaps.values():
        entry["max_gap"] = max(entry["gaps"].values(), default=math.nan)
    return gaps


def _clearly_above(paired_gap: dict | None) -> bool:
    low = None if paired_gap is None else paired_gap["ci"][0]
    return low is not None and low > ENVELOPE_MARGIN


def _median(values: list[float]) -> float:
    finite_or_inf = sorted(v for v in values if not math.isnan(v))
    if not finite_or_inf:
        return math.nan
    mid = len(finite_or_inf) // 2
    if len(finite_or_inf) % 2:
        return finite_or_inf[mid]
    return (finite_or_inf[mid - 1] + finite_or_inf[mid]) / 2


def _cell(rows: list[RunRow], with_reference: bool, reps: int) -> dict:
    cell: dict = {
        key: _estimate([[getattr(r, field) for r in rows]], reps).to_dict()
        for key, field in SCORES.items()
    }
    for key, field in REFERENCE_SCORES.items():
        cell[key] = (
            _estimate([[getattr(r, field) for r in rows]], reps).to_dict()
            if with_reference
            else None
        )
    aucs = [r.auc_val_j for r in rows]
    cell["auc_val_j"] = sum(aucs) / len(aucs)
    cell["runs"] = len(rows)
    cell["failed"] = sum(r.failed for r in rows)
    return cell


def _estimate(strata: list[list[float]], reps: int) -> Estimate:
    return stratified_iqm(_without_nan(strata), reps)


def _without_nan(strata: list[list[float]]) -> list[list[float]]:
    """``strata`` without NaN scores (undefined against their reference)."""
    return [[v for v in s if not math.isnan(v)] for s in strata]
