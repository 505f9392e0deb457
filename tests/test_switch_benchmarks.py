"""The switch diagnostics in benchmarks/: what they compute from demonstrations and
gains, on hand-made numbers (the real figures are in benchmarks/RESULTS.md §30)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import benchmark_script

from curriculum_rl.agents.imitation import GridRun
from curriculum_rl.agents.switch_imitation import rule_gains, save_demonstrations
from curriculum_rl.benchmark.store import run_path
from curriculum_rl.controllers.observation import FEATURES, NUM_FEATURES


def _demo(gap_after_half: float, seed: int, scores: list[float]) -> GridRun:
    """Four decisions, two rules, two target tasks and one auxiliary: the on rule's target
    ratios sit ``gap_after_half`` below the off rule's from half the budget on, and its
    auxiliary far above (which must not count)."""
    obs = torch.zeros(4, 2, 3, NUM_FEATURES)
    obs[..., FEATURES.index("mask")] = 1.0
    obs[..., FEATURES.index("progress")] = torch.tensor([0.0, 0.25, 0.5, 0.75]).view(4, 1, 1)
    obs[:, :, :2, FEATURES.index("is_objective")] = 1.0
    ratio = FEATURES.index("log_error_ratio")
    obs[:, :, :, ratio] = -1.0
    obs[2:, 1, :2, ratio] -= gap_after_half
    obs[2:, 1, 2, ratio] = 5.0
    return GridRun(seed, 0, 100, None, scores, obs)


def test_the_probe_picks_the_rule_ahead_on_the_targets_at_each_horizon(tmp_path):
    probe = benchmark_script("probe_horizon")
    runs = [
        _demo(0.5, 0, [-1.0, -1.2]),  # ahead from half the budget and wins by 0.2
        _demo(-0.3, 1, [-1.0, -0.9]),  # behind and loses by 0.1
        _demo(0.4, 2, [-1.0, -0.7]),  # ahead, yet loses by 0.3
    ]
    assert probe.early_gap(runs[0].observations, 0.5) == pytest.approx(0.5)
    assert probe.early_gap(runs[0].observations, 0.3) == pytest.approx(0.5)  # next decision
    assert probe.early_gap(runs[0].observations, 0.25) == 0.0
    save_demonstrations(runs, tmp_path)
    table = probe.horizon_table(tmp_path)
    assert table["always"] == pytest.approx((0.2 - 0.1 - 0.3) / 3)
    assert table["oracle"] == pytest.approx(0.2 / 3)
    early, half = table["horizons"]["0.1"], table["horizons"]["0.5"]
    assert early["captured"] == 0.0 and early["right"] == pytest.approx(2 / 3)
    assert early["correlation"] is None  # no gap yet: r is undefined, not a number
    assert half["captured"] == pytest.approx((0.2 - 0.3) / 3)
    assert half["right"] == pytest.approx(2 / 3)


def test_fixed_strengths_are_scored_against_strength_zero_per_suite():
    strength = benchmark_script("fallback_strength")
    runs = [
        GridRun(0, 0, 100, None, [-1.0, -1.1, -0.8], torch.zeros(1)),
        GridRun(1, 0, 100, None, [-2.0, -2.3, -2.2], torch.zeros(1)),
        GridRun(2, 0, 100, None, [-1.0, -1.0, float("inf")], torch.zeros(1)),
    ]
    gains = np.array([[0.0, *rule_gains(run.scores)] for run in runs])
    np.testing.assert_allclose(gains[:, 1], [0.1, 0.3, 0.0], atol=1e-12)
    assert gains[2, 2] == -10.0  # a diverged run loses by the clamp
    result = strength.summarise([0.0, 0.5, 1.0], ["a", "a", "b"], gains)
    half = result["strengths"]["0.5"]
    assert half["mean"] == pytest.approx(0.4 / 3) and half["wins"] == pytest.approx(2 / 3)
    assert half["by_suite"] == pytest.approx({"a": 0.2, "b": 0.0})
    assert half["ci"][0] <= half["iqm"] <= half["ci"][1]
    assert result["strengths"]["0"]["mean"] == 0.0
    assert result["oracle"] == pytest.approx((0.1 + 0.3 + 0.0) / 3)
    assert result["oracle_ends"] == pytest.approx((0.0 + 0.2 + 0.0) / 3)


def test_the_strength_readout_captures_what_its_features_tell_and_the_suite_rule_its_suites():
    readout = benchmark_script("strength_readout")
    rng = np.random.default_rng(0)
    regime = rng.integers(0, 3, size=240)  # which of three columns wins each instance
    gains = np.zeros((240, 3))
    gains[regime == 1, 1], gains[regime == 2, 2] = 0.3, 0.5
    gains[regime != 1, 1], gains[regime != 2, 2] = -0.2, -0.4
    oracle = gains.max(1).mean()
    telling = np.eye(3)[regime] + 0.05 * rng.normal(size=(240, 3))
    noise = rng.normal(size=(240, 3))
    assert readout.captured_by_readout(telling, gains, l2=1e-3) > 0.95 * oracle
    assert readout.captured_by_readout(noise, gains, l2=1.0) < 0.2 * oracle
    suites = np.array([f"suite{r}" for r in regime])
    assert readout.captured_by_suite_rule(suites, gains) == pytest.approx(oracle)
    shuffled = rng.permutation(suites)
    assert readout.captured_by_suite_rule(shuffled, gains) < 0.2 * oracle


def _family_demo(seed: int, suite: str | None, wins: bool) -> GridRun:
    """Two decisions, two rules, a target and an auxiliary; one statistic (the targets'
    ``lp_slope``) is +1 where switching wins by 0.5 and -1 where it loses by 0.5."""
    obs = torch.zeros(2, 2, 2, NUM_FEATURES)
    obs[..., FEATURES.index("mask")] = 1.0
    obs[..., 0, FEATURES.index("is_objective")] = 1.0
    obs[..., 0, FEATURES.index("lp_slope")] = 1.0 if wins else -1.0
    scores = [-1.0, -1.5] if wins else [-1.0, -0.5]
    return GridRun(seed, 0, 50, None, scores, obs, suite)


def test_holding_out_a_family_scores_a_switch_on_families_it_never_saw():
    holdout = benchmark_script("family_holdout")
    from curriculum_rl.agents.switch_imitation import DecisionTable
    from curriculum_rl.controllers.learned import load_artifact

    runs = [
        _family_demo(4 * f + i, suite, wins=i % 2 == 0)
        for f, suite in enumerate(("a", "b", "c"))
        for i in range(4)
    ]
    family, names = holdout.family_ids(runs, None)
    assert names == ["a", "b", "c"] and family.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    table = DecisionTable.build(load_artifact("agents/v7.json").actor, runs, "run")
    result = holdout.holdout_table(table, family, names, l2=1e-3)
    for row in result["families"].values():
        assert row["always"] == pytest.approx(0.0) and row["oracle"] == pytest.approx(0.25)
        assert 0.0 < row["captured"] <= row["oracle"]  # the telling statistic carries over
    mean_of_families = np.mean([row["captured"] for row in result["families"].values()])
    assert result["captured"] == pytest.approx(mean_of_families)
    # read as a latch, the same fits capture latched_gains of the same readouts
    from curriculum_rl.agents.switch_imitation import held_out_readouts, latched_gains

    readouts = held_out_readouts(table, family, 1e-3)
    expected = latched_gains(readouts, table.gain, "conservative").mean().item()
    latched = holdout.holdout_table(table, family, names, l2=1e-3, latch="conservative")
    assert latched["captured"] == pytest.approx(expected)
    assert latched["families"]["a"]["strength"] == result["families"]["a"]["strength"]
    with pytest.raises(ValueError, match="--families"):
        holdout.family_ids([_family_demo(0, None, True)], None)
    turns, _ = holdout.family_ids([_family_demo(i, None, True) for i in range(5)], 2)
    assert turns.tolist() == [0, 1, 0, 1, 0]


def test_holdout_sets_load_in_order_refuse_another_source_and_filter(tmp_path):
    holdout = benchmark_script("family_holdout")
    first = [_family_demo(i, "a", wins=True) for i in range(2)]
    second = [_family_demo(i, "b", wins=False) for i in range(3)]
    save_demonstrations(first, tmp_path / "one", {"switch": "gm-fallback"})
    save_demonstrations(second, tmp_path / "two", {"switch": "gm-fallback"})
    runs = holdout.load_sets([tmp_path / "one", tmp_path / "two"])
    assert [run.suite for run in runs] == ["a", "a", "b", "b", "b"]
    stored = zip(runs, first + second, strict=True)
    assert all(torch.equal(run.observations, made.observations) for run, made in stored)
    targets_only = _family_demo(9, "c", wins=True)
    targets_only.observations[..., 1, FEATURES.index("is_objective")] = 1.0
    assert holdout.without_auxiliaries([*runs, targets_only]) == [targets_only]
    save_demonstrations(second, tmp_path / "other", {"switch": "ie-fallback"})
    with pytest.raises(ValueError, match="another switch"):
        holdout.load_sets([tmp_path / "one", tmp_path / "other"])


def test_a_nudged_rule_scales_every_weight_and_keeps_the_rest_of_the_decision():
    """label_noise.py's nudge: weights times 1 + nudge; sampling and the loss
    normalisation (a switched twin's) as the base decided."""
    from dataclasses import replace

    from curriculum_rl.controllers.base import Controller
    from curriculum_rl.controllers.decision import uniform_decision

    noise = benchmark_script("label_noise")

    class Halfway(Controller):
        name = "halfway"

        def decide(self, signals):
            decision = uniform_decision(signals.mask)
            return replace(decision, normalisation=torch.full((signals.mask.shape[0],), 0.5))

    class Signals:
        mask = torch.tensor([[True, True, False]])

    base, nudged = Halfway(), noise.Nudged(Halfway(), 1e-3)
    a, b = base.decide(Signals()), nudged.decide(Signals())
    torch.testing.assert_close(b.weights, a.weights * 1.001)
    assert torch.equal(b.sampling, a.sampling) and torch.equal(b.normalisation, a.normalisation)
    assert nudged.name == "halfway-nudged"
    groups = noise.per_suite(["x", "y", "x"], np.array([1.0, 2.0, 3.0]))
    assert {k: v.tolist() for k, v in groups.items()} == {"x": [1.0, 3.0], "y": [2.0]}


def _benchmark_folder(tmp_path: Path, runs: dict) -> Path:
    """A benchmark folder by hand: ``runs[(controller, suite, seed)] = (gain, alphas)``,
    the run's G_m and its loss normalisation per decision."""
    rows = ["suite,controller,seed,gain_final"]
    for (controller, suite, seed), (gain, alphas) in runs.items():
        rows.append(f"{suite},{controller},{seed},{gain}")
        path = run_path(tmp_path, suite, controller, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"normalisation": alphas}))
    (tmp_path / "results.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_switch_timing_splits_a_switchs_paired_gains_by_when_it_turned_on(tmp_path, capsys):
    """benchmarks/switch_timing.py (RESULTS §36): each run's gain over the reference run of
    its suite and seed, classed by its first decision with normalisation 1 (never, the
    first, a later one); the mean over all runs lies in its interval; a reference the
    folder lacks, or a folder without results, is refused by name; a controller whose runs
    stop below ``--on-at`` (a fallback to another direction) is named in a warning."""
    timing = benchmark_script("switch_timing")
    off, start, late = [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.5, 1.0]
    runs = {("uniform", s, k): (0.0, off) for s in "ab" for k in (0, 1)}
    runs |= {("ref", s, k): (0.2, off) for s in "ab" for k in (0, 1)}
    runs |= {
        ("cand", "a", 0): (0.2, off),  # left alone: an exact tie
        ("cand", "a", 1): (1.2, start),  # on from the start: +1.0
        ("cand", "b", 0): (-0.3, late),  # on from its third decision: -0.5
        ("cand", "b", 1): (0.5, [0.0, 1.0, 1.0]),  # on from its second: +0.3
    }
    folder = _benchmark_folder(tmp_path, runs)
    result = timing.switch_timing(folder, "ref", reps=2000)
    assert list(result) == ["cand"]  # neither the reference nor uniform
    cand = result["cand"]
    assert cand["runs"] == 4 and cand["mean"] == pytest.approx((0 + 1.0 - 0.5 + 0.3) / 4)
    assert cand["ci"][0] <= cand["mean"] <= cand["ci"][1]
    assert cand["timing"]["never"] == {"runs": 1, "mean": 0.0}
    assert cand["timing"]["first"] == {"runs": 1, "mean": pytest.approx(1.0)}
    assert cand["timing"]["later"]["runs"] == 2
    assert cand["timing"]["later"]["mean"] == pytest.approx((-0.5 + 0.3) / 2)
    assert cand["suites_on"] == {  # suite a's tie was never on
        "a": {"runs": 1, "mean": pytest.approx(1.0)},
        "b": {"runs": 2, "mean": pytest.approx(-0.1)},
    }
    assert timing.main(["--runs", str(folder), "--versus", "ref", "--by-suite"]) == 0
    printed = capsys.readouterr().out
    assert "on later: 2 runs, mean -0.1000" in printed
    assert printed.index("b: on in 2 runs, mean -0.1000") < printed.index("a: on in 1 runs")
    sqrt_on = [0.5, 0.5, 0.5]  # a fallback to sqrt-loss, on throughout
    assert timing.timing(sqrt_on) == "never" and timing.timing(sqrt_on, on_at=0.5) == "first"
    assert "warning" not in capsys.readouterr().err  # cand reaches 1
    fourth_on = [0.75, 0.75, 0.75]  # a fallback to fourth-root-loss: no run reaches 1
    fourth_runs = {("cand", "a", 1): (1.2, fourth_on), ("cand", "b", 0): (-0.3, off)}
    quarter = _benchmark_folder(
        tmp_path / "fourth", runs | fourth_runs | {("cand", "b", 1): (0.5, off)}
    )
    assert timing.main(["--runs", str(quarter), "--versus", "ref"]) == 0
    assert "no run of cand reaches --on-at 1, but some reach 0.75" in capsys.readouterr().err
    assert timing.main(["--runs", str(quarter), "--versus", "ref", "--on-at", "0.75"]) == 0
    assert "warning" not in capsys.readouterr().err
    with pytest.raises(SystemExit):
        timing.main(["--runs", str(folder), "--versus", "ref", "--on-at", "0"])
    assert "--on-at is a loss normalisation in (0, 1]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        timing.main(["--runs", str(folder), "--versus", "v8"])
    assert "no runs of 'v8'; its controllers are ['cand', 'ref', 'uniform']" in (
        capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        timing.main(["--runs", str(tmp_path / "none"), "--versus", "ref"])
    assert "no results.csv in" in capsys.readouterr().err


def test_every_controller_sees_the_same_first_decision():
    """The premise of benchmarks/first_decision_gates.py: at a run's first decision nothing
    has trained, so two controllers on the same instance and seed measure the same losses
    there (and differ after their first decisions act)."""
    from curriculum_rl.controllers.load import load_controller
    from curriculum_rl.controllers.registry import make_controller
    from curriculum_rl.runner import run_controller
    from curriculum_rl.suites import SyntheticSetting, SyntheticSuite

    suite = SyntheticSuite(
        settings=(SyntheticSetting("k3", num_tasks=(3, 3), scale_spread=(1, 30)),),
        n_train=128,
        n_val=64,
        n_test=128,
    )
    instances = [suite.sample(0)]
    uniform, shipped = (
        run_controller(instances, [0], controller, budget=75, interval=25)[0]
        for controller in (make_controller("uniform"), load_controller("default"))
    )
    assert uniform.weights[0] != shipped.weights[0]  # they decide differently at once
    assert uniform.val_loss_curve[0] == shipped.val_loss_curve[0]
    assert uniform.train_loss_curve[0] == shipped.train_loss_curve[0]
    assert uniform.val_loss_curve[1] != shipped.val_loss_curve[1]


def _gate_folder(tmp_path: Path) -> Path:
    """Twelve suites of three seeds: ``alt`` gains 1 over ``base`` on the six whose first
    losses are large, loses 1 on the six whose are small."""
    rows = ["suite,controller,seed,gain_final"]
    levels = {f"big{i}": 20.0 * (i + 1) for i in range(6)}
    levels |= {f"small{i}": 0.5 / (i + 1) for i in range(6)}
    for suite, level in levels.items():
        for seed in range(3):
            gain = 1.0 if level > 1 else -1.0
            rows += [f"{suite},base,{seed},0.3", f"{suite},alt,{seed},{0.3 + gain}"]
            first = {
                "val_loss_curve": [[level * (1 + 0.1 * seed), level], [1.0, 1.0]],
                "weights": [[1.0, 1.0]],
                "sampling": [[0.5, 0.5]],
                "normalisation": [0.0],
                "targets": [True, True],
            }
            path = run_path(tmp_path, suite, "base", seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(first))
    (tmp_path / "results.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_first_decision_gates_screen_thresholds_and_a_held_out_readout(tmp_path, capsys):
    """benchmarks/first_decision_gates.py (RESULTS §43a): a gate's mean paired gain counts
    the runs it leaves to the base as 0; the gate on the first losses' mean that picks the
    big-loss suites gains 0.5 with no suite below the base; switching always gains 0 and
    puts a suite 1 below; a readout fitted without the suite it decides finds the same cut;
    a controller the folder lacks is refused by name."""
    gates = benchmark_script("first_decision_gates")
    result = gates.screen(_gate_folder(tmp_path), "base", "alt", reps=2000)
    always = result["always"]
    assert always["mean"] == pytest.approx(0.0) and always["switched"] == 36
    assert always["worst_gap"] == pytest.approx(-1.0)
    assert always["worst_suite"].startswith("small")
    best = result["thresholds"][0]
    assert best["gate"].startswith("log_loss_mean >") and best["mean"] == pytest.approx(0.5)
    assert best["switched"] == 18 and best["worst_gap"] == pytest.approx(0.0)
    assert best["ci"][0] <= best["mean"] <= best["ci"][1]
    for readout in result["held_out"].values():
        assert readout["switched"] == 18 and readout["mean"] == pytest.approx(0.5)
    assert (
        gates.main(["--runs", str(tmp_path), "--base", "base", "--alt", "alt", "--top", "1"]) == 0
    )
    printed = capsys.readouterr().out
    assert "always alt" in printed and "best 1 of" in printed
    with pytest.raises(SystemExit):
        gates.main(["--runs", str(tmp_path), "--base", "v11", "--alt", "alt"])
    assert "no runs of 'v11'; its controllers are ['alt', 'base']" in capsys.readouterr().err
