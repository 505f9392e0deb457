"""Switch imitation: labelled off/on runs, the cost-sensitive fit, the switched policy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ROOT_LOSSES

from curriculum_rl.agents import switch_imitation
from curriculum_rl.agents.average import twin_actor
from curriculum_rl.agents.config import config_from_dict
from curriculum_rl.agents.imitation import GridRun, mean_log_error
from curriculum_rl.agents.switch_imitation import (
    L2_GRID,
    LATCH_SCORINGS,
    SHARPNESS,
    SPREAD_FLOOR,
    SWITCHES,
    DecisionTable,
    Switch,
    cross_validate,
    demonstrate,
    fit_switch,
    fitted_switch_policy,
    latched_gains,
    load_demonstrations,
    main,
    run_features,
    save_demonstrations,
    strength,
    switch_features,
    switched_rules,
)
from curriculum_rl.controllers import make_controller
from curriculum_rl.controllers.actions import LATCH_AT
from curriculum_rl.controllers.learned import LearnedController, load_artifact
from curriculum_rl.controllers.learned.network import run_statistic_names, run_statistics_width
from curriculum_rl.controllers.observation import FEATURES, NUM_FEATURES
from curriculum_rl.runner import RunRecord, run_controller
from curriculum_rl.session import CurriculumSession
from curriculum_rl.suites import resolve_suite

POLICY = "agents/v3.json"  # the error_power policy the switches extend (shipped until v4)

SUITE = """
[suite]
kind = "synthetic"
name = "tiny-aux"
n_train = 128
n_val = 32
n_test = 64
hidden = [16]

[[suite.settings]]
name = "aux"
num_tasks = [3, 4]
auxiliary = [1, 2]
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    suite = tmp_path_factory.mktemp("suite") / "tiny-aux.toml"
    suite.write_text(SUITE)
    return config_from_dict(
        {
            "env": {
                "suite": str(suite),
                "budget": 50,
                "interval": 25,
                "max_tasks": 12,
                "trainer": {"device": "cpu", "batch_size": 16, "proj_dim": 16, "val_probe": 16},
            },
            "train": {"seed": 3},
        }
    )


@pytest.fixture(scope="module")
def runs(config):
    return demonstrate(config, load_artifact(POLICY), SWITCHES["gate"], instances=2, seed=3)


def test_each_instance_is_run_ungated_then_gated_from_one_start(config, runs):
    suite = resolve_suite(config.env.suite)
    for run in runs:
        instance = suite.sample(run.seed)
        assert 0 < len(instance.target_tasks) < instance.num_tasks
        assert run.suite == instance.name
        assert run.observations.shape == (2, 2, 12, NUM_FEATURES)  # 50 / 25 decisions
        # the ungated run is the policy's own run of that instance and seed
        (alone,) = run_controller(
            [instance],
            [run.run_seed],
            LearnedController.load(POLICY),
            run.budget,
            config.env.interval,
            config.env.trainer,
            max_tasks=12,
        )
        assert mean_log_error(alone.to_dict()) == pytest.approx(run.scores[0], abs=1e-5)


def test_stored_demonstrations_keep_their_suite_and_older_sets_load_without(runs, tmp_path):
    save_demonstrations(runs, tmp_path)
    loaded = load_demonstrations(tmp_path)
    assert [r.suite for r in loaded] == [r.suite for r in runs] and runs[0].suite
    for a, b in zip(loaded, runs, strict=True):
        assert (a.seed, a.scores) == (b.seed, b.scores)
        assert torch.equal(a.observations, b.observations)
    labels = json.loads((tmp_path / "labels.json").read_text())
    for label in labels:
        del label["suite"]  # a set stored before the suite was recorded
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    assert [r.suite for r in load_demonstrations(tmp_path)] == [None] * len(runs)


def test_the_fit_follows_the_weighted_label_frequency():
    # one feature value, labelled 1 with weight 3 and 0 with weight 1: P(gate wins) = 3/4
    features = torch.ones(2, 1)
    w, b = fit_switch(features, torch.tensor([1.0, 0.0]), torch.tensor([3.0, 1.0]), l2=0.0)
    assert torch.sigmoid(features[0] @ w + b).item() == pytest.approx(0.75, abs=1e-3)
    # a separable feature gets a logit of the right sign on each side
    features = torch.tensor([[1.0], [-1.0]])
    w, b = fit_switch(features, torch.tensor([1.0, 0.0]), torch.ones(2), l2=1e-2)
    logits = features @ w + b
    assert logits[0] > 0 > logits[1]


def _table(features: torch.Tensor, gain: torch.Tensor, decisions: int) -> DecisionTable:
    """A decision table of ``len(gain)`` instances, ``decisions`` rows each (off, on, ...)."""
    owner = torch.arange(len(gain)).repeat_interleave(decisions)
    return DecisionTable(
        features=features,
        labels=(gain[owner] > 0).float(),
        weights=gain[owner].abs() / decisions,
        owner=owner,
        off=torch.arange(len(owner)) % 2 == 0,
        gain=gain,
    )


@pytest.mark.parametrize("scoring", LATCH_SCORINGS)
def test_a_latched_switch_captures_a_gain_only_where_it_closes(scoring):
    """``latched_gains``: the latch closes at the first decision with strength >=
    ``LATCH_AT``. Never: 0; at the first decision: the whole gain (the latched run is the
    switched-on run); later, the run is not demonstrated: ``linear`` credits the share of
    the run left, ``conservative`` only a loss. ``start`` (the start latch) closes at the
    first decision or never: a later close is no close, exactly. ``continuous`` counts as
    ``linear``."""
    readouts = [
        torch.tensor([0.2, 0.4, 0.1, 0.3]),  # never closes
        torch.tensor([0.9, 0.1, 0.0, 0.0]),  # closes at once: stays on whatever follows
        torch.tensor([0.1, 0.2, LATCH_AT, 0.0]),  # closes at decision 2 of 4
        torch.tensor([0.1, 0.6, 0.7, 0.8]),  # closes at decision 1 of 4, on a loss
    ]
    gain = torch.tensor([0.5, -0.3, 0.8, -0.4])
    late = {
        "linear": [0.8 * (1 - 2 / 4), -0.4 * (1 - 1 / 4)],
        "conservative": [0.0, -0.4],
        "start": [0.0, 0.0],
        "continuous": [0.8 * (1 - 2 / 4), -0.4 * (1 - 1 / 4)],  # as linear
    }[scoring]
    expected = torch.tensor([0.0, -0.3, *late])
    torch.testing.assert_close(latched_gains(readouts, gain, scoring), expected)
    with pytest.raises(ValueError, match="latch scoring must be one of"):
        latched_gains(readouts, gain, "optimistic")


def test_cross_validation_credits_a_switch_with_what_it_captures_on_held_out_instances():
    gen = torch.Generator().manual_seed(0)
    gain = torch.rand(80, generator=gen) * torch.tensor([1.0, -1.0]).repeat(40)
    decisions = 6
    sign = (gain > 0).float().repeat_interleave(decisions)[:, None] * 2 - 1
    noise = torch.randn(len(sign), 1, generator=gen)
    telling = _table(torch.cat([4 * sign + 0.1 * noise, noise], 1), gain, decisions)
    blind = _table(torch.randn(len(sign), 2, generator=gen), gain, decisions)
    for table in (telling, blind):
        scores = cross_validate(table, l2_grid=(1e-3,), repeats=3)
        assert scores["never"] == 0.0 and scores["always"] == pytest.approx(gain.mean().item())
        assert scores["oracle"] == pytest.approx(gain.clamp_min(0).mean().item())
    # a feature that tells the winners apart captures nearly the oracle on held-out
    # instances; features of noise capture about what switching half-on everywhere does
    assert cross_validate(telling, l2_grid=(1e-3,))["l2=0.001"] > 0.9 * scores["oracle"]
    assert abs(cross_validate(blind, l2_grid=(1e-3,))["l2=0.001"]) < 0.2 * scores["oracle"]


def test_the_beta_shift_rules_are_the_policy_and_the_policy_with_its_switch_full_on():
    off, on = switched_rules(load_artifact(POLICY), SWITCHES["beta-up"])
    obs = torch.randn(4, 12, NUM_FEATURES)
    obs[..., 0] = (torch.arange(12) < torch.randint(2, 12, (4, 1))).float()
    valid = obs[..., 0] > 0.5
    with torch.no_grad():
        a_off, a_on = off.actor(obs), on.actor(obs)
    torch.testing.assert_close(a_on[..., :-1], a_off)
    assert torch.all(a_on[..., -1][valid] == 1.0)
    assert (off.transform.name, on.transform.name) == ("error_power", "error_power_beta_up")


def test_switched_rules_hold_the_switch_at_each_given_strength():
    rules = switched_rules(load_artifact(POLICY), SWITCHES["beta-up"], strengths=(0.0, 0.4, 1.0))
    obs = torch.randn(3, 12, NUM_FEATURES)
    obs[..., 0] = (torch.arange(12) < 5).float()
    with torch.no_grad():
        off, mid, on = (rule.actor(obs) for rule in rules)
    assert off.shape[-1] == mid.shape[-1] - 1
    torch.testing.assert_close(mid[..., :-1], off)
    torch.testing.assert_close(mid[..., :5, -1], torch.full((3, 5), 0.4))
    assert torch.all(on[..., :5, -1] == 1)
    with pytest.raises(ValueError, match=r"in \[0, 1\], got 1.5"):
        switched_rules(load_artifact(POLICY), SWITCHES["beta-up"], strengths=(1.5,))


def test_the_start_cap_switch_on_v5_runs_as_the_always_on_start_cap():
    """``--switch start-cap`` on v5: the switched-on rule decides exactly as v5's network
    under the always-on ``..._startcap`` transform (RESULTS §26g), on a training problem
    of envs/train-near-zero-targets.toml; switched off, exactly as v5."""
    v5 = load_artifact("agents/v5.json")
    off, on = switched_rules(v5, SWITCHES["start-cap"])
    assert on.transform.name == "error_power_gamma_up_aux_cap10_aux_startcap"
    always = LearnedController(v5.actor, v5.max_tasks, "error_power_gamma_up_aux_cap10_startcap")
    instance = resolve_suite("envs/train-near-zero-targets.toml#nz-train-xor-few").sample(0)
    assert instance.target_tasks == [0]
    weights = [
        run_controller([instance], [0], rule, budget=100, interval=25)[0].weights
        for rule in (off, on, always, LearnedController.load("agents/v5.json"))
    ]
    assert weights[1] == weights[2] and weights[0] == weights[3]
    assert weights[1] != weights[0]  # the cap binds on near-zero auxiliaries


def test_the_fallback_switch_on_v7_runs_as_scale_normalised_gs():
    """``--switch fallback`` on v7: switched on, a run decides exactly as the
    ``scale-normalised-gs`` heuristic (same weights at every decision, to float rounding,
    on an attention-trunk training problem with auxiliaries); switched off, exactly as v7."""
    v7 = load_artifact("agents/v7.json")
    off, on = switched_rules(v7, SWITCHES["fallback"])
    assert on.transform.name == "error_power_gamma_up_aux_cap10_aux_startcap_fallback"
    instance = resolve_suite("envs/train-tokens.toml#tokens-family-shallow").sample(4)
    assert 0 < len(instance.target_tasks) < instance.num_tasks
    rules = (
        off,
        on,
        make_controller("scale-normalised-gs"),
        LearnedController.load("agents/v7.json"),
    )
    weights = [
        run_controller([instance], [0], rule, budget=50, interval=25)[0].weights for rule in rules
    ]
    assert weights[0] == weights[3]
    np.testing.assert_allclose(weights[1], weights[2], rtol=1e-5, atol=1e-7)
    assert not np.allclose(weights[1], weights[0])


def test_the_ie_fallback_switch_on_v8_runs_as_inverse_error_and_at_zero_as_v8():
    """``--switch ie-fallback`` on v8: switched on, a run decides as the ``inverse-error``
    heuristic (to float rounding); the twin with its switch at 0 runs v8's schedule bit
    for bit. (On this problem one larger product happens to round as v8's; the test that
    fails without NetworkConfig.head_rows is in tests/test_average.py.)"""
    v8 = load_artifact("agents/v8.json")
    off, on = switched_rules(v8, SWITCHES["ie-fallback"])
    assert on.transform.name == v8.action + "_iefallback"
    at_zero = LearnedController(twin_actor(v8, on.transform.name), v8.max_tasks, on.transform.name)
    instance = resolve_suite("envs/train-raw-aux.toml").sample(2)
    rules = (off, on, make_controller("inverse-error"), at_zero)
    runs = [run_controller([instance], [0], rule, budget=50, interval=25)[0] for rule in rules]
    np.testing.assert_allclose(runs[1].weights, runs[2].weights, rtol=1e-5, atol=1e-7)
    assert not np.allclose(runs[1].weights, runs[0].weights)
    assert runs[3].weights == runs[0].weights
    assert runs[3].final_test_metric == runs[0].final_test_metric


def test_the_gm_fallback_switch_on_v8_trains_as_geometric_mean_and_at_zero_as_v8():
    """``--switch gm-fallback`` on v8: switched on, a run takes ``geometric-mean``'s steps
    (the heuristic's torchjd hook and the trainer's loss normalisation differ only by the
    scale Adam divides out, so the runs agree to float rounding over 50 steps; §33 shows
    how far they drift by 300); at 0 the twin runs v8's schedule bit for bit."""
    v8 = load_artifact("agents/v8.json")
    off, on = switched_rules(v8, SWITCHES["gm-fallback"])
    assert on.transform.name == v8.action + "_gmfallback"
    at_zero = LearnedController(twin_actor(v8, on.transform.name), v8.max_tasks, on.transform.name)
    instance = resolve_suite("envs/train-tokens.toml#tokens-family-deep").sample(2)
    rules = (off, on, make_controller("geometric-mean"), at_zero, make_controller("uniform"))
    runs = [run_controller([instance], [0], rule, budget=50, interval=25)[0] for rule in rules]
    metric = [run.final_test_metric for run in runs]
    np.testing.assert_allclose(metric[1], metric[2], rtol=1e-4)
    assert not np.allclose(metric[1], metric[4], rtol=1e-2)  # not uniform's either
    assert runs[3].weights == runs[0].weights
    assert metric[3] == metric[0]
    assert set(runs[1].normalisation) == {1.0} and set(runs[0].normalisation) == {0.0}


@pytest.mark.parametrize(
    "switch_name, heuristic",
    [("sqrt-fallback", "sqrt-loss"), ("fourth-root-fallback", "fourth-root-loss")],
)
def test_a_root_loss_switch_on_v8_trains_as_its_heuristic_and_at_zero_as_v8(switch_name, heuristic):
    """``--switch sqrt-fallback`` (``fourth-root-fallback``) on v8: switched on, a run is
    the ``sqrt-loss`` (``fourth-root-loss``) heuristic's bit for bit (the same decision:
    uniform weights and sampling, loss normalisation 1/2, 3/4); its start-latched twin at
    0 runs v8's schedule bit for bit."""
    v8 = load_artifact("agents/v8.json")
    switch = SWITCHES[switch_name]
    off, on = switched_rules(v8, switch)
    assert on.transform.name == v8.action + switch.suffix
    started = v8.action + switch.latch_suffix("start")
    at_zero = LearnedController(twin_actor(v8, started), v8.max_tasks, started)
    instance = resolve_suite("envs/train-tokens.toml#tokens-family-raw-class-aux").sample(0)
    rules = (off, on, make_controller(heuristic), at_zero)
    runs = [run_controller([instance], [0], rule, budget=50, interval=25)[0] for rule in rules]
    assert runs[1].final_test_metric == runs[2].final_test_metric
    alpha = ROOT_LOSSES[heuristic]
    assert set(runs[1].normalisation) == {alpha} and runs[1].weights == runs[2].weights
    assert runs[3].weights == runs[0].weights and set(runs[3].normalisation) == {0.0}
    assert runs[3].final_test_metric == runs[0].final_test_metric != runs[1].final_test_metric


def test_the_gmc_fallback_switch_is_gm_fallback_without_a_regression_auxiliary():
    """``--switch gmc-fallback`` on v8: switched on, a run beside a tagging auxiliary only
    is ``gm-fallback``'s switched-on run bit for bit; a run beside a regression auxiliary
    is v8's bit for bit (the switch cannot act there), so its demonstration gain is 0."""
    v8 = load_artifact("agents/v8.json")
    off, on = switched_rules(v8, SWITCHES["gmc-fallback"])
    assert on.transform.name == v8.action + "_gmcfallback"
    _, gm_on = switched_rules(v8, SWITCHES["gm-fallback"])
    tagging_only = resolve_suite("envs/train-tokens.toml#tokens-family-raw-class-aux").sample(0)
    with_regression = resolve_suite("envs/train-tokens.toml#tokens-family-shallow").sample(0)
    for instance, twin, alpha in ((tagging_only, gm_on, 1.0), (with_regression, off, 0.0)):
        runs = [run_controller([instance], [0], r, budget=50, interval=25)[0] for r in (on, twin)]
        assert runs[0].weights == runs[1].weights
        assert runs[0].final_test_metric == runs[1].final_test_metric
        assert set(runs[0].normalisation) == {alpha}


@pytest.mark.parametrize("switch", ["gmt-fallback", "gms-fallback"])
def test_the_targets_only_fallbacks_on_v8_normalise_and_keep_the_auxiliaries(switch):
    """``--switch gmt-fallback`` and ``gms-fallback`` on v8, on a problem with a regression
    and a tagging auxiliary: switched on, every decision normalises the losses and keeps
    the tagging auxiliary trained (v8 drops regression auxiliaries when its own switch says
    so, and both keep v8's view of the auxiliaries, zero included), where gm-fallback
    weighs every auxiliary as a target; at 0 the twin runs v8's schedule bit for bit."""
    v8 = load_artifact("agents/v8.json")
    off, on = switched_rules(v8, SWITCHES[switch])
    assert on.transform.name == v8.action + SWITCHES[switch].suffix
    at_zero = LearnedController(twin_actor(v8, on.transform.name), v8.max_tasks, on.transform.name)
    _, gm_on = switched_rules(v8, SWITCHES["gm-fallback"])
    instance = resolve_suite("envs/train-tokens.toml#tokens-family-shallow").sample(0)
    tagging = [k for k, t in enumerate(instance.tasks) if t.auxiliary and t.kind == "tagging"]
    assert tagging
    rules = (off, on, at_zero, gm_on)
    runs = [run_controller([instance], [0], rule, budget=50, interval=25)[0] for rule in rules]
    assert set(runs[1].normalisation) == {1.0} and set(runs[0].normalisation) == {0.0}
    assert all(weights[k] > 0 for weights in runs[1].weights for k in tagging)
    assert runs[1].weights != runs[3].weights  # not gm-fallback's equal auxiliaries
    assert runs[2].weights == runs[0].weights
    assert runs[2].final_test_metric == runs[0].final_test_metric


def test_the_target_start_down_switch_on_v8_raises_a_raw_target():
    """``--switch target-start-down`` on v8, on a problem whose targets are the raw
    ``token_sum`` and a classification: switched on, the first decision (the same state
    for both runs) gives ``token_sum`` more of the weight than v8 does; at 0 the twin runs
    v8's schedule bit for bit."""
    v8 = load_artifact("agents/v8.json")
    off, on = switched_rules(v8, SWITCHES["target-start-down"])
    assert on.transform.name == v8.action + "_tstartdown"
    at_zero = LearnedController(twin_actor(v8, on.transform.name), v8.max_tasks, on.transform.name)
    instance = resolve_suite("envs/train-tokens.toml#tokens-family-shallow").sample(1)
    assert [t.name for t in instance.tasks] == ["token_sum", "first_count"]
    runs = [
        run_controller([instance], [0], rule, budget=50, interval=25)[0]
        for rule in (off, on, at_zero)
    ]
    assert runs[1].weights[0][0] > 1.5 * runs[0].weights[0][0]
    assert runs[2].weights == runs[0].weights
    assert runs[2].final_test_metric == runs[0].final_test_metric


def test_the_aux_drop_switch_on_v7_trains_the_targets_only():
    """``--switch aux-drop`` on v7: switched on, every auxiliary has weight 0 at every
    decision of a training problem with auxiliaries; switched off, the run is v7's."""
    v7 = load_artifact("agents/v7.json")
    off, on = switched_rules(v7, SWITCHES["aux-drop"])
    assert on.transform.name == "error_power_gamma_up_aux_cap10_aux_startcap_auxdrop"
    instance = resolve_suite("envs/train-tokens.toml#tokens-family-shallow").sample(4)
    auxiliaries = [k for k in range(instance.num_tasks) if k not in instance.target_tasks]
    assert auxiliaries
    runs = [
        run_controller([instance], [0], rule, budget=50, interval=25)[0].weights
        for rule in (off, on, LearnedController.load("agents/v7.json"))
    ]
    assert runs[0] == runs[2]
    assert all(weights[k] == 0 for weights in runs[1] for k in auxiliaries)
    assert all(weights[k] > 0 for weights in runs[0] for k in auxiliaries)


def test_a_switch_on_one_kind_of_auxiliary_demonstrates_instances_with_one(config):
    """``aux-reg-drop`` acts on regression auxiliaries only: its draws all hold one, while
    ``aux-drop``'s need any auxiliary (an instance the switch cannot change would label
    round-off)."""
    mixed = config_from_dict(
        {"env": {"suite": "envs/train-tokens.toml#tokens-family-shallow", "budget": 50}}
    )
    kinds = []
    for switch in ("aux-drop", "aux-reg-drop"):
        draws = switch_imitation.demonstration_draws(mixed, SWITCHES[switch], 12)
        kinds.append(
            [
                {t.kind for k, t in enumerate(d.instance.tasks) if k not in d.instance.target_tasks}
                for d in draws
            ]
        )
    assert all(kinds[0]) and all("regression" in aux for aux in kinds[1])
    assert any("regression" not in aux for aux in kinds[0])  # the filter is not vacuous


@pytest.mark.parametrize(
    ("only", "kind", "problem"),
    [(False, "regression", "needs auxiliaries_only=True"), (True, "regresion", "not a task kind")],
)
def test_a_switch_refuses_an_auxiliary_kind_it_would_ignore_or_not_know(only, kind, problem):
    with pytest.raises(ValueError, match=problem):
        Switch("x", "_x", only, kind)


def test_the_fitted_gate_policy_sets_the_fitted_strength_and_keeps_the_rest(tmp_path):
    torch.manual_seed(0)
    source = load_artifact(POLICY)
    base = source.actor
    w, b = torch.randn(base.config.hidden), torch.tensor(0.3)
    path = fitted_switch_policy(
        source, SWITCHES["gate"], w, b, tmp_path / "gated", sharpness=2.0, notes={"l2": 0.1}
    )
    gated = load_artifact(path)
    assert gated.action == "error_power_gate"
    assert gated.metadata["notes"]["switch_imitation"] == {"switch": "gate", "l2": 0.1}
    obs = torch.randn(6, 12, NUM_FEATURES)
    obs[..., 0] = (torch.arange(12) < torch.randint(2, 12, (6, 1))).float()
    with torch.no_grad():
        actions, before = gated.actor(obs), base(obs)
    torch.testing.assert_close(actions[..., :-1], before)
    valid = obs[..., 0]
    mean_gate = (actions[..., -1] * valid).sum(1) / valid.sum(1)
    expected = strength(switch_features(base, obs), w, b, sharpness=2.0)
    torch.testing.assert_close(mean_gate.clamp(0, 1), expected)


def test_a_run_statistics_switch_lives_in_a_run_head_with_its_standardisation_folded(tmp_path):
    """``--features run``: the fit read standardised run statistics; the written policy's
    switch column is the fitted strength of the raw statistics at every valid task (one
    number per run), its other columns the policy's, and it round-trips through a file."""
    torch.manual_seed(0)
    source = load_artifact(POLICY)
    obs = torch.randn(6, 12, NUM_FEATURES)
    obs[..., 0] = (torch.arange(12) < torch.randint(2, 12, (6, 1))).float()
    raw = run_features(source.actor, obs)
    centre, spread = raw.mean(0), raw.std(0)
    assert (spread == 0).any()  # a constant statistic (the mask's minimum) gets no weight
    w, b = 0.02 * torch.randn(raw.shape[1]), torch.tensor(0.2)
    path = fitted_switch_policy(
        source, SWITCHES["beta-up"], w, b, tmp_path / "run", standardised=(centre, spread)
    )
    written = load_artifact(path)
    assert written.network.run_head and written.action == "error_power_beta_up"
    with torch.no_grad():
        actions, before = written.actor(obs), source.actor(obs)
    torch.testing.assert_close(actions[..., :-1], before)
    valid = obs[..., 0] > 0.5
    varied = spread > 0
    expected = strength((raw - centre)[:, varied] / spread[varied], w[varied], b, SHARPNESS)
    column = actions[..., -1]
    torch.testing.assert_close(column.clamp(0, 1), expected[:, None].expand(-1, 12) * valid)
    assert 0 < expected.min() < expected.max() < 1  # the readout varies by run


def _random_demonstrations(count: int) -> list[GridRun]:
    """``count`` instances of three decisions of random observations (off and on runs),
    instance ``i`` with ``3 + i`` valid tasks and a gain of ``0.1 (i - 2)``."""
    runs = []
    for seed in range(count):
        obs = torch.randn(3, 2, 12, NUM_FEATURES)
        obs[..., 0] = (torch.arange(12) < 3 + seed).float()
        runs.append(GridRun(seed, 0, 75, None, [-1.0, -1.0 - 0.1 * (seed - 2)], obs))
    return runs


def test_the_fit_reads_the_run_statistics_exactly_as_the_written_run_head_does(tmp_path):
    """A statistic whose spread over the demonstrations is below ``SPREAD_FLOOR`` (here a
    feature that varies by float round-off only) is 0 in the table the fit reads, as the
    written run head gives it no weight: for any fitted row, the strength cross-validation
    scores is the strength the written policy sets."""
    torch.manual_seed(1)
    v7 = load_artifact("agents/v7.json")
    runs = _random_demonstrations(5)
    for run in runs:
        run.observations[..., FEATURES.index("log_size_rel")] = 1e-8 * torch.randn(3, 2, 12)
    table = DecisionTable.build(v7.actor, runs, "run")
    raw = torch.cat([run_features(v7.actor, r.observations.flatten(0, 1)) for r in runs])
    noise = (raw.std(0) > 0) & (raw.std(0) <= SPREAD_FLOOR)
    assert noise.any() and (table.features[:, noise] == 0).all()
    w, b = torch.randn(raw.shape[1]), torch.tensor(0.1)
    standardised = (table.centre, table.spread)
    path = fitted_switch_policy(
        v7, SWITCHES["aux-drop"], w, b, tmp_path / "run", standardised=standardised
    )
    written = load_artifact(path)
    obs = torch.cat([r.observations.flatten(0, 1) for r in runs])
    with torch.no_grad():
        column = written.actor(obs)[..., -1]
    valid = obs[..., 0] > 0.5
    set_by_policy = ((column * valid).sum(1) / valid.sum(1)).clamp(0, 1)
    torch.testing.assert_close(set_by_policy, strength(table.features, w, b, SHARPNESS))


def test_a_selection_of_run_statistics_is_all_the_fit_and_the_written_head_read(tmp_path):
    """``statistics``: the table holds only the named statistics (the others 0, as
    constant ones), so a fit on it, written as a run head, reads nothing else."""
    torch.manual_seed(2)
    v7 = load_artifact("agents/v7.json")
    runs = _random_demonstrations(6)
    patterns = ["targets.mean.log_weight", "*.max.log_error_centred"]
    table = DecisionTable.build(v7.actor, runs, "run", patterns)
    names = run_statistic_names()
    kept = [n == patterns[0] or n.endswith(".max.log_error_centred") for n in names]
    assert sum(kept) == 4
    kept = torch.tensor(kept)
    assert (table.features[:, ~kept] == 0).all() and (table.features[:, kept] != 0).all()
    w, b = fit_switch(table.features, table.labels, table.weights, 1e-3)
    assert (w[~kept] == 0).all() and (w[kept] != 0).all()
    path = fitted_switch_policy(
        v7, SWITCHES["aux-drop"], torch.randn(len(names)), b, tmp_path / "p",
        standardised=(table.centre, table.spread),
    )  # fmt: skip
    head = load_artifact(path).actor.run_head.weight[-1]
    assert (head[~kept] == 0).all() and (head[kept] != 0).all()
    with pytest.raises(ValueError, match="matches none"):
        DecisionTable.build(v7.actor, runs, "run", ["targets.mean.log_wieght"])
    with pytest.raises(ValueError, match="features='run'"):
        DecisionTable.build(v7.actor, runs, "latent", patterns)


def test_the_command_refuses_a_statistics_selection_it_cannot_read(config, tmp_path, capsys):
    base = ["--config", "agents/switch-fallback.toml", "--policy", POLICY, "--out", str(tmp_path)]
    for extra, message in (
        (["--statistics", "targets.mean.log_weight"], "with --features run"),
        (["--features", "run", "--statistics", "target.mean.log_weight"], "matches none"),
    ):
        with pytest.raises(SystemExit):
            main([*base, *extra])
        assert message in capsys.readouterr().err


@pytest.mark.slow  # five instances and a refit: ~3 s
def test_the_command_writes_a_fitted_gate_policy_and_refits_the_same(
    config, tmp_path, capsys, monkeypatch
):
    toml = tmp_path / "gate.toml"
    toml.write_text(
        f'[env]\nsuite = "{config.env.suite}"\nbudget = 50\ninterval = 25\nmax_tasks = 12\n'
        '[env.trainer]\ndevice = "cpu"\nbatch_size = 16\nproj_dim = 16\nval_probe = 16\n'
    )
    out = tmp_path / "out"
    args = ["--config", str(toml), "--policy", POLICY, "--out", str(out), "--instances", "5"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "of 5 instances" in printed and "oracle" in printed
    labels = json.loads((out / "labels.json").read_text())
    assert len(labels) == 5 and all(len(label["scores"]) == 2 for label in labels)
    first = load_artifact(out / "policy.json")
    notes = first.metadata["notes"]["switch_imitation"]
    assert notes["instances"] == 5 and set(notes["cross_validation"]) >= {"never", "oracle"}
    fit = args[:-2]  # a refit runs no new demonstrations: no --instances
    assert main([*fit, "--reuse"]) == 0  # refit from the stored demonstrations
    again = load_artifact(out / "policy.json")
    torch.testing.assert_close(again.actor.head.weight, first.actor.head.weight)
    # where always switching scores best, the policy switches at every decision
    scores = {"never": 0.0, "always": 0.2, "oracle": 0.3, **{f"l2={v:g}": 0.1 for v in L2_GRID}}
    monkeypatch.setattr(switch_imitation, "cross_validate", lambda *a, **k: dict(scores))
    assert main([*fit, "--reuse"]) == 0
    assert "chose always" in capsys.readouterr().out
    always = load_artifact(out / "policy.json")
    assert always.metadata["notes"]["switch_imitation"]["always"] is True
    obs = torch.randn(4, 12, NUM_FEATURES)
    obs[..., 0] = 1.0
    with torch.no_grad():
        torch.testing.assert_close(always.actor(obs)[..., -1], torch.ones(4, 12))
    # --l2 fits with the given strength whatever cross-validation prefers
    assert main([*fit, "--reuse", "--l2", "0.5"]) == 0
    assert "chose l2=0.5" in capsys.readouterr().out
    given = load_artifact(out / "policy.json").metadata["notes"]["switch_imitation"]
    assert given["l2"] == 0.5 and given["l2_given"] and "always" not in given
    # --demos fits on stored demonstrations of several folders, in order
    joined = tmp_path / "joined"
    demos = ["--demos", str(out), str(out)]
    assert main([*args[:4], "--out", str(joined), *demos, "--l2", "0.5"]) == 0
    assert "of 10 instances" in capsys.readouterr().out
    notes = load_artifact(joined / "policy.json").metadata["notes"]["switch_imitation"]
    assert notes["instances"] == 10 and notes["demonstrations"] == [str(out), str(out)]
    assert not (joined / "labels.json").exists()  # nothing new to store
    # demonstrations record what made them; a fit with another switch is refused
    source = json.loads((out / "source.json").read_text())
    assert source["switch"] == "gate" and source["policy_sha256"]
    with pytest.raises(SystemExit):
        main([*args[:4], "--out", str(joined), "--demos", str(out), "--switch", "beta-up"])
    assert "made with another switch ('gate', not 'beta-up')" in capsys.readouterr().err
    source["observation"]["version"] = -1  # a set stored under an older observation layout
    (out / "source.json").write_text(json.dumps(source))
    with pytest.raises(SystemExit):
        main([*args[:4], "--out", str(joined), "--demos", str(out)])
    assert "made with another observation layout;" in capsys.readouterr().err


def test_the_command_refuses_too_few_instances_a_missing_reuse_and_a_policy_without_twin(
    tmp_path, capsys
):
    base = ["--config", "agents/switch-imitation.toml", "--policy", POLICY, "--out", str(tmp_path)]
    with pytest.raises(SystemExit):
        main([*base, "--instances", "1"])
    assert "--instances must be >= 2" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--reuse"])
    assert "--reuse: no stored demonstrations" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--demos", str(tmp_path / "none")])
    assert "--demos: no stored demonstrations in" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--reuse", "--demos", str(tmp_path)])
    assert "give one" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--latch", "linear"])  # gate has no latched twin
    assert (
        "--latch linear: gate has no twin read that way; switches with one: ['gmc-fallback']"
        in (capsys.readouterr().err)
    )
    with pytest.raises(SystemExit):
        main([*base, "--latch", "start"])
    started = "['fourth-root-fallback', 'gmc-fallback', 'sqrt-fallback']"
    assert f"--latch start: gate has no twin read that way; switches with one: {started}" in (
        capsys.readouterr().err
    )
    with pytest.raises(SystemExit):  # it would be silently ignored
        main([*base, "--reuse", "--instances", "50"])
    assert "--reuse and --demos run none" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--l2", "-1"])
    assert "--l2 must be >= 0" in capsys.readouterr().err
    gated = tmp_path / "gated"
    zero = torch.zeros(64), torch.tensor(0.0)
    fitted_switch_policy(load_artifact(POLICY), SWITCHES["gate"], *zero, gated)
    other = ["--policy", f"{gated}.json", "--out", str(tmp_path / "o"), "--switch", "beta-up"]
    with pytest.raises(SystemExit):  # a policy whose transform has no such twin
        main([*base[:2], *other])
    assert "has no 'error_power_gate_beta_up' twin" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("path", "action", "base"),
    [
        ("benchmarks/candidates/aux-up-im.json", "error_power_aux_beta_up", POLICY),
        ("benchmarks/candidates/aux-cap10.json", "error_power_aux_cap10", POLICY),
        ("agents/v5.json", "error_power_gamma_up_aux_cap10", "agents/v4.json"),
        ("agents/v6.json", "error_power_gamma_up_aux_cap10_gate", "agents/v5.json"),
    ],
)
def test_the_committed_aux_candidates_load_and_decide_as_their_base_without_auxiliaries(
    path, action, base
):
    """benchmarks/candidates/aux-up-im.json (RESULTS §21c), aux-cap10.json (§22b), v5
    (agents/v5.json, §23) and v6 (agents/v6.json, §24) act on auxiliaries only: on a suite
    without any they decide exactly as the policy they extend (v3, v3, v4, v5)."""
    assert load_artifact(path).action == action
    instance = resolve_suite("synthetic").sample(0)
    runs = [
        run_controller([instance], [0], LearnedController.load(p), budget=50, interval=25)[0]
        for p in (base, path)
    ]
    assert runs[0].weights and runs[0].weights == runs[1].weights


def test_v4_is_v3_with_its_fitted_gamma_switch():
    """agents/v4.json (shipped 2026-12-04, RESULTS §22): v3 plus a fitted gamma-up column;
    the rest of the network is v3's."""
    v4, base = load_artifact("agents/v4.json"), load_artifact(POLICY)
    assert v4.action == "error_power_gamma_up"
    notes = v4.metadata["notes"]["switch_imitation"]
    assert notes["switch"] == "gamma-up" and notes["l2"] == 1e-5
    obs = torch.randn(3, 12, NUM_FEATURES)
    obs[..., 0] = 1.0
    with torch.no_grad():
        torch.testing.assert_close(v4.actor(obs)[..., :-1], base.actor(obs))


def test_v5_is_v4_with_the_cap_always_on():
    """agents/v5.json (shipped 2026-12-04, RESULTS §23): v4 plus the aux-cap-10 column at
    full strength for every input (switch imitation chose "always"); the rest is v4's."""
    shipped, v4 = load_artifact("agents/v5.json"), load_artifact("agents/v4.json")
    assert shipped.action == "error_power_gamma_up_aux_cap10"
    notes = shipped.metadata["notes"]["switch_imitation"]
    assert notes["switch"] == "aux-cap-10" and notes["always"] is True
    obs = torch.randn(3, 12, NUM_FEATURES)
    obs[..., 0] = 1.0
    with torch.no_grad():
        actions = shipped.actor(obs)
        torch.testing.assert_close(actions[..., :-1], v4.actor(obs))
    assert (actions[..., -1] >= 1).all()  # clip(mean a, 0, 1) = 1: the cap always on


@pytest.mark.parametrize(
    ("path", "action", "switch"),
    [
        ("agents/v6.json", "error_power_gamma_up_aux_cap10_gate", "gate"),
        ("agents/v7.json", "error_power_gamma_up_aux_cap10_aux_startcap", "start-cap"),
    ],
)
def test_v6_and_v7_are_v5_with_one_fitted_switch(path, action, switch):
    """agents/v6.json (RESULTS §24e, shipped briefly, withdrawn in §24g) and agents/v7.json
    (shipped 2026-12-05, §27): v5 plus one column fitted from 240 labelled training runs
    (l2 1e-5), a gate and a start cap; the rest of the network is v5's, so on a suite
    without auxiliaries each decides as v5."""
    policy, v5 = load_artifact(path), load_artifact("agents/v5.json")
    assert policy.action == action
    notes = policy.metadata["notes"]["switch_imitation"]
    assert notes["switch"] == switch and notes["l2"] == 1e-5
    assert notes["cross_validation"]["l2=1e-05"] > max(0.0, notes["cross_validation"]["always"])
    obs = torch.randn(3, 12, NUM_FEATURES)
    obs[..., 0] = 1.0
    with torch.no_grad():
        torch.testing.assert_close(policy.actor(obs)[..., :-1], v5.actor(obs))


def test_v8_is_v7_with_its_fitted_regression_auxiliary_drop():
    """agents/v8.json (shipped 2026-12-06, RESULTS §31d): v7 plus one column fitted from
    210 labelled training runs with an auxiliary (l2 1e-3, chosen by cross-validation),
    which drops regression auxiliaries; v7's columns are v7's up to round-off (the head
    has one more row)."""
    v8, v7 = load_artifact("agents/v8.json"), load_artifact("agents/v7.json")
    assert v8.action == v7.action + "_auxregdrop"
    notes = v8.metadata["notes"]["switch_imitation"]
    assert notes["switch"] == "aux-reg-drop" and notes["l2"] == 1e-3
    scores = notes["cross_validation"]
    assert scores["l2=0.001"] == max(v for k, v in scores.items() if k.startswith("l2="))
    assert scores["l2=0.001"] > max(0.0, scores["always"])
    obs = torch.randn(3, 12, NUM_FEATURES)
    obs[..., 0] = 1.0
    with torch.no_grad():
        torch.testing.assert_close(v8.actor(obs)[..., :-1], v7.actor(obs))


def test_v9_is_v8_with_its_fitted_sqrt_loss_switch_read_at_the_start():
    """agents/v9.json (shipped 2026-12-07, RESULTS §38d): v8 plus one column fitted from
    540 labelled training runs on six run statistics (l2 0.01), which falls back to
    ``sqrt-loss`` for the whole run where it reads on at the first decision; v8's columns
    are v8's up to round-off, and its readout reads only the six statistics."""
    v9, v8 = load_artifact("agents/v9.json"), load_artifact("agents/v8.json")
    assert v9.action == v8.action + "_sqrtstart"
    notes = v9.metadata["notes"]["switch_imitation"]
    assert notes["switch"] == "sqrt-fallback" and notes["l2"] == 0.01
    assert notes["cross_validation"]["l2=0.01"] > max(0.0, notes["cross_validation"]["always"])
    obs = torch.randn(3, 12, NUM_FEATURES)
    obs[..., 0] = 1.0
    with torch.no_grad():
        torch.testing.assert_close(v9.actor(obs)[..., :-1], v8.actor(obs))
    read = v9.actor.run_head.weight[-1].detach() != 0
    names = [name for name, on in zip(run_statistic_names(), read.tolist(), strict=True) if on]
    assert names == [
        f"{group}.mean.{feature}"
        for group in ("targets", "auxiliaries")
        for feature in ("log_weight", "log_size_rel", "log_error_centred")
    ]


def test_the_shipped_policy_is_v13():
    """agents/default.json is v13 (RESULTS §45d), byte for byte agents/v13.json and the
    candidate file tier S judged; v12 (§44b) and v11 (§42c) stay the files tiers R and Q
    judged."""
    for suffix in (".json", ".pt"):
        shipped = Path("agents/default" + suffix).read_bytes()
        assert shipped == Path("agents/v13" + suffix).read_bytes()
        assert shipped == Path("benchmarks/candidates/v9plateau" + suffix).read_bytes()
        v12 = Path("agents/v12" + suffix).read_bytes()
        assert v12 == Path("benchmarks/candidates/v9hump" + suffix).read_bytes()
        v11 = Path("agents/v11" + suffix).read_bytes()
        assert v11 == Path("benchmarks/candidates/v9fade" + suffix).read_bytes()


@pytest.mark.parametrize(
    ("path", "s", "peak", "end", "held"),
    [
        ("benchmarks/candidates/v9geo.json", 0.33, None, None, None),
        ("agents/v10.json", 0.15, None, None, None),
        ("agents/v11.json", 0.33, None, 0.15, None),
        ("benchmarks/candidates/v9hump.json", 0.33, 0.5, 0.15, (0.5, 0.5)),
        ("agents/v13.json", 0.33, 0.5, 0.15, (0.3, 0.7)),
    ],
)
def test_policies_that_are_v9_under_the_fourth_root_mix(path, s, peak, end, held):
    """agents/v10.json (shipped 2026-12-07, RESULTS §40e), the failed candidate
    benchmarks/candidates/v9geo.json (§40c), agents/v11.json (shipped the same day, §42c),
    benchmarks/candidates/v9hump.json (v12, §44) and agents/v13.json (§45): v9's weights under
    ``..._sqrtstart_fourthgeo15``, ``..._fourthgeo33``, ``..._fourthgeo33to15``,
    ``..._fourthgeo33up50to15`` and ``..._fourthgeo33up50at30-70to15``.
    On a run where v9's switch stays off each decision trains at normalisation 3/4 of the
    strength at that point of the budget, and the first decision's weights (both runs
    start from the same signals) are v9's to the power 1 - s, rescaled."""
    candidate, v9 = load_artifact(path), load_artifact("agents/v9.json")
    rise, fall = held or (None, None)
    knots = [(0.0, s), (rise, peak), (fall, peak), (1.0, end)]
    knots = [(q, value) for q, value in knots if value is not None]
    span = None if held in (None, (0.5, 0.5)) else f"{round(100 * rise)}-{round(100 * fall)}"
    suffix = "_fourthgeo" + "".join(
        f"{tag}{value if tag == 'at' else round(100 * value)}"
        for tag, value in (("", s), ("up", peak), ("at", span), ("to", end))
        if value is not None
    )
    assert candidate.action == v9.action + suffix
    assert candidate.metadata["weights_sha256"] == v9.metadata["weights_sha256"]
    instance = resolve_suite("synthetic").sample(0)
    budget = 100
    runs = [
        run_controller([instance], [0], LearnedController.load(p), budget=budget, interval=25)[0]
        for p in ("agents/v9.json", path)
    ]
    assert runs[0].normalisation == [0.0] * len(runs[0].weights)
    decided = [step for step in runs[1].steps if step < budget]  # the last is the final state
    strengths = np.interp([step / budget for step in decided], *zip(*knots, strict=True))
    assert runs[1].normalisation[: len(decided)] == pytest.approx(0.75 * strengths)
    powered = torch.tensor(runs[0].weights[0]).pow(1 - s)
    expected = powered * len(powered) / powered.sum()
    torch.testing.assert_close(torch.tensor(runs[1].weights[0]), expected)
    assert runs[0].weights[0] != runs[1].weights[0]


def _progress_switch(tmp_path: Path, slope: float, bias: float, latch: str) -> Path:
    """A gmc-fallback fit on v8 written for ``--latch latch`` whose column reads only the
    run's progress: strength ``clip(0.5 + (slope * progress + bias) / 2, 0, 1)``."""
    v8 = load_artifact("agents/v8.json")
    switch = SWITCHES["gmc-fallback"]
    width = run_statistics_width(NUM_FEATURES)
    w = torch.zeros(width)
    w[FEATURES.index("progress")] = slope  # its mean over the run's tasks
    action = v8.action + switch.latch_suffix(latch)
    return fitted_switch_policy(
        v8,
        switch,
        w,
        torch.tensor(bias),
        tmp_path / f"{latch}{slope}",
        standardised=(torch.zeros(width), torch.ones(width)),
        action=action,
    )


def _raw_class_aux_run(policy: Path | str) -> RunRecord:
    instance = resolve_suite("envs/train-tokens.toml#tokens-family-raw-class-aux").sample(0)
    return run_controller([instance], [0], LearnedController.load(policy), 100, 25)[0]


def test_the_start_latch_reads_the_switch_at_a_runs_first_decision_only(tmp_path):
    """A gmc-fallback fit written under the start latch (``--latch start``) and under the
    latch, its column reading the run's progress: high at the first decision, both are on
    for the whole run; high only from the second decision, the latch closes there and
    the start latch never does, its run v8's bit for bit."""
    v8_run = _raw_class_aux_run("agents/v8.json")
    decisions = len(v8_run.normalisation)
    for latch in ("linear", "start"):
        early = _raw_class_aux_run(_progress_switch(tmp_path, -4.0, 1.0, latch))
        assert early.normalisation == [1.0] * decisions  # on at the first
    on_at_second = [0.0] + [1.0] * (decisions - 1)
    late = _raw_class_aux_run(_progress_switch(tmp_path, 4.0, -1.0, "linear"))
    assert late.normalisation == on_at_second
    never = _raw_class_aux_run(_progress_switch(tmp_path, 4.0, -1.0, "start"))
    assert never.normalisation == [0.0] * decisions and never.weights == v8_run.weights


def test_the_continuous_latch_changes_only_the_runs_that_close_mid_run(tmp_path):
    """``--latch continuous`` (``..._gmccont``): a run on from its first decision is the
    latch's run bit for bit (its scale stays 1); one that closes at its second decision
    takes the latch's decisions there too, but trains at the held scale, so it ends
    elsewhere."""
    runs = {
        (latch, when): _raw_class_aux_run(_progress_switch(tmp_path, *line, latch))
        for latch in ("linear", "continuous")
        for when, line in (("early", (-4.0, 1.0)), ("late", (4.0, -1.0)))
    }
    early, early_held = runs["linear", "early"], runs["continuous", "early"]
    assert early_held.final_test_metric == early.final_test_metric
    assert set(early_held.scale) == {1.0}
    late, late_held = runs["linear", "late"], runs["continuous", "late"]
    assert late_held.normalisation == late.normalisation and late.normalisation[1] == 1.0
    assert late_held.final_test_metric != late.final_test_metric
    held = late_held.scale[1]  # recorded per decision: 1 until the close, then held
    assert held != 1.0 and late_held.scale == [1.0] + [held] * (len(late.scale) - 1)
    assert set(late.scale) == {1.0}


@pytest.mark.parametrize(("slope", "bias", "on"), [(-4.0, 1.0, True), (4.0, -1.0, False)])
def test_the_start_latch_reads_a_users_first_decision(tmp_path, slope, bias, on):
    """In a user's loop (``CurriculumSession``) the first decision comes after the first
    interval of training, not at step 0: the start latch reads it there. A column high at
    the start is on from the first decision to the last; one that rises only later (past
    a quarter of the budget) never turns it on."""
    path = _progress_switch(tmp_path, slope, bias, "start")
    kinds = ["regression", "classification", "regression"]
    session = CurriculumSession(
        LearnedController.load(path), num_tasks=3, budget=1000, interval=25, task_kinds=kinds
    )
    alphas = []
    for step in range(400):
        session.loss(torch.tensor([200.0, 1.5, 0.3]) * (1 - step / 1000))
        if session.decision_due:
            session.update()
            alphas.append(float(session.loop.previous.normalisation[0]))
    assert alphas == [float(on)] * 16
