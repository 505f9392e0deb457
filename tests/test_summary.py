"""The benchmark's aggregates: the paired test of a lead, and the verdict that reports it."""

import math

import numpy as np

from curriculum_rl.benchmark.metrics import RunRow
from curriculum_rl.benchmark.report import verdicts
from curriculum_rl.benchmark.summary import ENVELOPE_MARGIN, ranking, summarize
from curriculum_rl.cli import BENCHMARK_DESCRIPTION


def _row(suite: str, controller: str, seed: int, gain: float) -> RunRow:
    return RunRow(
        suite=suite, controller=controller, seed=seed, num_tasks=3,
        final_test_j=0.0, best_test_j=0.0, gain_final=gain, gain_best=gain,
        gain_j_final=gain, gain_j_best=gain, worst_vs_uniform_final=0.0,
        worst_vs_uniform_best=0.0, delta_m_final=math.nan, delta_m_best=math.nan,
        worst_vs_stl_final=math.nan, worst_vs_stl_best=math.nan, auc_val_j=0.0,
        loss_normalisation=0.0, failed=False,
    )  # fmt: skip


def _rows(lead: float, spread: float, seeds: int = 10) -> list[RunRow]:
    """``a`` beats ``b`` by about ``lead`` on every seed; instances differ by ``spread``."""
    rng = np.random.default_rng(0)
    rows = []
    for suite in ("s1", "s2"):
        for seed in range(seeds):
            hardness = spread * rng.standard_normal()
            noise = 0.01 * rng.standard_normal()
            rows += [
                _row(suite, "a", seed, hardness + lead + noise),
                _row(suite, "b", seed, hardness),
            ]
    return rows


def _summary(rows: list[RunRow]) -> dict:
    return summarize(rows, ["s1", "s2"], ["a", "b"], with_reference=False, reps=2000)


def test_paired_gap_separates_a_consistent_lead_that_separate_intervals_cannot():
    summary = _summary(_rows(lead=0.05, spread=0.5))
    aggregate = summary["aggregate"]
    assert ranking(aggregate)[:2] == ["a", "b"]
    assert aggregate["a"]["gain"]["ci"][0] < aggregate["b"]["gain"]["ci"][1]  # overlap
    gap = aggregate["b"]["paired_gap_to_leader"]
    assert 0.03 < gap["ci"][0] <= gap["iqm"] <= gap["ci"][1] < 0.07
    assert aggregate["a"]["paired_gap_to_leader"] is None
    assert summary["suites"]["s1"]["b"]["paired_gap_to_leader"]["ci"][0] > 0
    line = verdicts(summary)[-1]
    assert "CIs overlap" in line and "the lead holds" in line


def test_paired_gap_does_not_establish_a_lead_that_is_noise():
    summary = _summary(_rows(lead=0.0, spread=0.5))
    runner_up = ranking(summary["aggregate"])[1]
    low, high = summary["aggregate"][runner_up]["paired_gap_to_leader"]["ci"]
    assert low <= 0 <= high
    assert "not established" in verdicts(summary)[-1]


def test_versus_pairs_every_controller_against_the_named_one():
    """--versus: the named controller's G_m minus each other's, run by run, whoever leads
    (here the runner-up ``b`` is the reference, so ``a``'s gap to it is negative), as an
    IQM and as a mean, and the suite where ``a`` is furthest behind ``b`` by IQM."""
    rows = _rows(lead=0.05, spread=0.5)
    summary = summarize(rows, ["s1", "s2"], ["a", "b"], with_reference=False, reps=2000, versus="b")
    aggregate = summary["aggregate"]
    gap = aggregate["a"]["paired_gap_to_versus"]
    assert -0.07 < gap["ci"][0] <= gap["iqm"] <= gap["ci"][1] < -0.03
    assert aggregate["b"]["paired_gap_to_versus"] is None
    lead = aggregate["b"]["paired_gap_to_leader"]
    assert math.isclose(gap["iqm"], -lead["iqm"], rel_tol=1e-9)
    assert "paired_gap_to_versus" not in _summary(rows)["aggregate"]["a"]
    differences = [b.gain_final - a.gain_final for a, b in zip(rows[::2], rows[1::2], strict=True)]
    mean = aggregate["a"]["mean_paired_gap_to_versus"]
    assert math.isclose(mean["iqm"], float(np.mean(differences)), rel_tol=1e-9)
    assert mean["ci"][0] <= mean["iqm"] <= mean["ci"][1] < 0
    cells = summary["suites"]
    largest = aggregate["a"]["largest_suite_gap_to_versus"]
    gaps = {s: cells[s]["b"]["gain"]["iqm"] - cells[s]["a"]["gain"]["iqm"] for s in ("s1", "s2")}
    assert largest == {"suite": max(gaps, key=gaps.get), "gap": max(gaps.values())}
    assert aggregate["b"]["mean_paired_gap_to_versus"] is None
    both_failed_on_s1 = [
        _row(suite, c, seed, -math.inf if suite == "s1" else gain)
        for suite in ("s1", "s2")
        for c, gain in (("a", 0.2), ("b", 0.5))
        for seed in range(3)
    ]
    failed = summarize(
        both_failed_on_s1, ["s1", "s2"], ["a", "b"], with_reference=False, reps=50, versus="b"
    )
    largest = failed["aggregate"]["a"]["largest_suite_gap_to_versus"]
    assert largest["suite"] == "s2" and math.isclose(largest["gap"], 0.3)


def test_the_gap_where_changed_sees_a_sparse_effect_that_the_iqm_over_all_suites_cannot():
    """A controller identical to the reference on four suites of five and 0.1 better on
    every run of the fifth: over all suites the paired IQM is 0 by construction (80% of
    the differences are 0); over the suites it changes, it is the effect, counted once."""
    suites = [f"s{i}" for i in range(5)]
    rows = []
    for suite in suites:
        for seed in range(10):
            base = 0.3 * seed
            lift = 0.1 if suite == "s4" else 0.0
            rows += [_row(suite, "ref", seed, base), _row(suite, "cand", seed, base + lift)]
    summary = summarize(rows, suites, ["ref", "cand"], with_reference=False, reps=500, versus="ref")
    aggregate = summary["aggregate"]
    assert aggregate["cand"]["paired_gap_to_versus"]["iqm"] == 0.0
    changed = aggregate["cand"]["paired_gap_to_versus_where_changed"]
    assert changed["suites"] == 1
    assert math.isclose(changed["iqm"], -0.1, abs_tol=1e-12)
    assert aggregate["ref"]["paired_gap_to_versus_where_changed"] is None
    same = [
        _row(s, c, seed, -math.inf) for s in suites for c in ("ref", "cand") for seed in range(3)
    ]
    unchanged = summarize(
        same, suites, ["ref", "cand"], with_reference=False, reps=50, versus="ref"
    )
    assert unchanged["aggregate"]["cand"]["paired_gap_to_versus_where_changed"]["suites"] == 0


def test_the_envelope_counts_a_miss_as_clear_only_where_the_paired_gap_is_beyond_the_margin():
    """On ``s1`` ``b`` trails ``a`` by 0.3 on every seed (a clear miss); on ``s2`` its IQM
    trails by more than the margin too, but seed by seed it is ahead as often as behind (a
    gap the best IQM's luck makes): counted in ``gaps``, not in ``clear_misses``."""
    rng = np.random.default_rng(1)
    rows = []
    for seed in range(10):
        hardness = 0.5 * rng.standard_normal()
        rows += [_row("s1", "a", seed, hardness + 0.3), _row("s1", "b", seed, hardness)]
        swing = 0.7 if seed % 2 else -0.4  # a's IQM leads by about 0.15, a coin flip per seed
        rows += [_row("s2", "a", seed, swing), _row("s2", "b", seed, 0.0)]
    summary = _summary(rows)
    entry = summary["envelope"]["b"]
    assert entry["gaps"]["s1"] > ENVELOPE_MARGIN and entry["gaps"]["s2"] > ENVELOPE_MARGIN
    assert entry["clear_misses"] == ["s1"]
    assert summary["envelope"]["a"]["clear_misses"] == []


def test_the_benchmark_help_states_the_envelope_margin_the_summary_uses():
    """The CLI imports the summary lazily (it pulls in torch), so its help writes the margin
    as a literal: this keeps the two from drifting apart."""
    assert f"more than {ENVELOPE_MARGIN} behind" in BENCHMARK_DESCRIPTION
