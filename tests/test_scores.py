"""The one definition of every score (curriculum_rl.scores): G_m, G_J, Δm%, worst-task
change, failures."""

from __future__ import annotations

import json
import math

import pytest
from helpers import benchmark_script

from curriculum_rl.benchmark.store import run_path
from curriculum_rl.scores import (
    anytime_auc,
    delta_m,
    loss_gain,
    metric_gain,
    score_run,
    task_errors,
    task_terms,
    worst_task_change,
)


def _run(metrics, j=0.0, diverged=False, kinds=None, sizes=None, targets=None, hib=None):
    k = len(metrics)
    kinds = kinds or ["regression"] * k
    return {
        "final_test_metric": metrics,
        "best_test_metric": metrics,
        "final_test_j": j,
        "best_test_j": j,
        "diverged": diverged,
        "kinds": kinds,
        "test_sizes": sizes or [100] * k,
        "targets": targets or [True] * k,
        "higher_is_better": hib or [kind != "regression" for kind in kinds],
    }


def test_task_error_is_mse_or_add_one_smoothed_error_rate():
    kinds = ["regression", "classification", "tagging", "regression"]
    errors = task_errors([0.25, 1.0, 0.8, None], kinds, [9, 9, 20, 9])
    assert errors[0] == 0.25
    assert errors[1] == pytest.approx(1 / 10)  # 100% accuracy on 9: (0 + 1) / (9 + 1)
    assert errors[2] == pytest.approx(5 / 21)  # 4 of 20 tokens wrong: (4 + 1) / (20 + 1)
    assert errors[3] == math.inf


def test_metric_gain_is_the_mean_log_error_ratio_over_target_tasks():
    assert metric_gain([1.0, 4.0], [0.5, 4.0], [True, True]) == pytest.approx(math.log(2) / 2)
    # an auxiliary task's error does not count, however it moves
    assert metric_gain([1.0, 4.0], [0.5, 400.0], [True, False]) == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="no target task"):
        metric_gain([1.0], [1.0], [False])


def test_a_bound_clips_each_task_term_and_nothing_else():
    """A task whose error fell a millionfold carries the unbounded mean; bounded at 1 it
    counts as e-fold, while terms inside the bound and auxiliaries are untouched."""
    uniform, errors, targets = [1.0, 1.0, 1.0, 1.0], [1e-6, 2.0, 0.8, 1e-9], [True] * 3 + [False]
    terms = task_terms(uniform, errors, targets)
    assert terms == pytest.approx([math.log(1e6), -math.log(2.0), -math.log(0.8)])
    assert metric_gain(uniform, errors, targets) == pytest.approx(sum(terms) / 3)
    assert metric_gain(uniform, errors, targets, bound=1.0) == pytest.approx(
        (1.0 - math.log(2.0) - math.log(0.8)) / 3
    )
    assert metric_gain(uniform, errors, targets, bound=0.5) == pytest.approx(
        (0.5 - 0.5 - math.log(0.8)) / 3
    )
    assert metric_gain(uniform, errors, targets, bound=100.0) == metric_gain(
        uniform, errors, targets
    )
    with pytest.raises(ValueError, match="bound must be > 0"):
        metric_gain(uniform, errors, targets, bound=0.0)
    failed = _run([1.0, None], j=None, diverged=True)
    assert score_run(failed, _run([1.0, 1.0]), bound=1.0).gain == -math.inf


def test_score_bounds_ranks_a_one_task_lead_below_a_broad_one(tmp_path, monkeypatch, capsys):
    """benchmarks/score_bounds.py: on a hand-made folder, ``lottery`` leads unbounded by
    one task's thousandfold error fall while ``broad`` gains a little on every task; with
    the terms bounded at 1 the order turns, and the largest-term shares say why."""
    bounds = benchmark_script("score_bounds")
    errors = {"uniform": [1.0, 1.0, 1.0], "lottery": [1e-3, 1.5, 1.5], "broad": [0.7, 0.7, 0.7]}
    for controller, task_errors_ in errors.items():
        for seed in (0, 1):
            path = run_path(tmp_path, "s", controller, seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(_run(task_errors_)))
    table = bounds.bound_table(tmp_path, [1.0], reps=200)
    unbounded, bounded = table["bounds"]["none"], table["bounds"]["1.0"]
    assert unbounded["lottery"]["iqm"] == pytest.approx((math.log(1e3) - 2 * math.log(1.5)) / 3)
    assert unbounded["lottery"]["rank"] == 1 and unbounded["broad"]["rank"] == 2
    assert bounded["lottery"]["iqm"] == pytest.approx((1 - 2 * math.log(1.5)) / 3)
    assert bounded["broad"]["rank"] == 1 and bounded["lottery"]["rank"] == 2
    share = math.log(1e3) / (math.log(1e3) + 2 * math.log(1.5))
    assert table["largest_term_share"]["lottery"] == pytest.approx(share)
    assert table["largest_term_share"]["broad"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="no runs paired with 'uniform'"):
        bounds.bound_table(tmp_path / "runs" / "s", [1.0], reps=10)
    argv = ["score_bounds", str(tmp_path), "--bounds", "1", "--reps", "200", "--json"]
    monkeypatch.setattr("sys.argv", argv)
    bounds.main()
    printed = capsys.readouterr().out.splitlines()
    assert printed[2].startswith("| broad |") or printed[2].startswith("| lottery |")
    assert json.loads(printed[-1])["bounds"]["1.0"]["broad"]["rank"] == 1
    monkeypatch.setattr("sys.argv", ["score_bounds", str(tmp_path), "--bounds", "0"])
    with pytest.raises(SystemExit):
        bounds.main()
    assert "--bounds must be > 0" in capsys.readouterr().err


def test_solved_classification_tasks_cannot_inflate_the_metric_gain():
    """The loss-based score rewards a solved task's cross-entropy falling toward zero; the
    error of a task at 100% accuracy cannot fall, so G_m does not move."""
    kinds = ["classification", "regression"]
    uniform = _run([1.0, 2.0], j=0.0, kinds=kinds)
    gamer = _run([1.0, 2.2], j=-3.0, kinds=kinds)  # loss of the solved task far lower
    scores = score_run(gamer, uniform)
    assert scores.gain_j == pytest.approx(3.0)
    assert scores.gain == pytest.approx(math.log(2.0 / 2.2) / 2)
    assert scores.gain < 0


def test_a_failed_run_is_a_loss_in_every_score():
    uniform = _run([1.0, 1.0])
    failed = _run([1.0, None], j=None, diverged=True)
    scores = score_run(failed, uniform, reference={"final_test_metric": [1.0, 1.0]})
    assert scores.failed
    assert scores.gain == scores.gain_j == -math.inf
    assert scores.worst_vs_uniform == scores.delta_m == scores.worst_vs_reference == math.inf
    # ... also when uniform failed on the same seed: a failure is never a tie
    assert score_run(failed, _run([None, None], j=None, diverged=True)).gain == -math.inf
    # and a surviving run paired with a failed uniform run wins
    assert score_run(uniform, _run([None, 1.0], j=None, diverged=True)).gain == math.inf
    assert loss_gain(None, 1.0) == math.inf and loss_gain(1.0, None) == -math.inf


def test_uniform_against_itself_scores_zero():
    run = _run([0.3, 0.8], j=-1.0, kinds=["regression", "classification"])
    scores = score_run(run, run, reference={"final_test_metric": [0.3, 0.8]})
    assert scores.gain == scores.gain_j == scores.worst_vs_uniform == scores.delta_m == 0.0
    assert not scores.failed


def test_relative_scores_and_their_undefined_cases():
    assert delta_m([2.0, 0.5], [1.0, 1.0], [False, True]) == pytest.approx(75.0)
    assert worst_task_change([2.0, 0.5], [1.0, 1.0], [False, True]) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="one of each"):
        delta_m([1.0], [1.0, 2.0], [True])
    with pytest.raises(ValueError, match="non-zero"):
        delta_m([1.0], [0.0], [True])
    run = _run([1.0])
    assert math.isnan(score_run(run, run, reference={"final_test_metric": [0.0]}).delta_m)
    assert math.isnan(score_run(run, run).delta_m)  # no reference


def test_relative_scores_count_only_the_target_tasks():
    """An auxiliary is trained, not scored: a run that gives one up (error x100) for a
    target is judged on the target alone, as G_m is."""
    uniform = _run([1.0, 1.0, 1.0], targets=[True, True, False])
    gated = _run([0.5, 1.5, 100.0], targets=[True, True, False])
    scores = score_run(gated, uniform, reference={"final_test_metric": [1.0, 1.0, 1.0]})
    assert scores.worst_vs_uniform == pytest.approx(50.0)
    assert scores.worst_vs_reference == pytest.approx(50.0)
    assert scores.delta_m == pytest.approx(0.0)


def test_anytime_auc():
    assert anytime_auc([1.0, 0.5, 0.0]) == 0.5
    assert anytime_auc([1.0, None]) == math.inf
