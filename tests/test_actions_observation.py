"""Action transform and observation: ranges, uniform at zero, equivariance, padding."""

import dataclasses
import math

import pytest
import torch
from helpers import ROOT_LOSSES, make_signals, with_gradients

from curriculum_rl.controllers import (
    NUM_FEATURES,
    Decision,
    actions_to_decision,
    build_observation,
    decision_to_actions,
)
from curriculum_rl.controllers.actions import (
    BETA_SHIFT,
    FOURTH_ROOT_FADES,
    FOURTH_ROOT_HUMPS,
    FOURTH_ROOT_MIXES,
    GAMMA_CENTRE,
    GAMMA_SCALE,
    GAMMA_SHIFT,
    LAG,
    LATCH_AT,
    OVERFIT_GAP,
    RESIDUAL_SCALE,
    SAMPLING_FLOOR,
    START_CENTRE,
    START_SCALE,
    TARGET_START_SHIFT,
    CappedTransform,
    FourthRootMixTransform,
    ScaledErrorPower,
    ShiftedTransform,
    action_transform,
    emphasis_divergence,
    geometric_mix,
    lift_slow_targets,
)
from curriculum_rl.controllers.auxiliary import cap_auxiliaries, gate_auxiliaries
from curriculum_rl.controllers.base import DecisionState
from curriculum_rl.controllers.inverse_error import ErrorPower
from curriculum_rl.controllers.observation import OBS_CLIP
from curriculum_rl.trainer.signals import Signals

MASK = torch.tensor([[True, True, True, False], [True, True, False, False]])


TRANSFORMS = [
    "logits", "loss_power", "error_power", "error_power_weights", "error_exponents",
    "error_power_gated", "error_power_gate", "error_power_aux_cap", "error_power_aux_cap10",
    "error_power_gamma_up_aux_cap10", "error_power_gamma_ahead_up",
    "error_power_gamma_ahead_up_aux_cap10", "error_power_gamma_late_up",
    "error_power_gamma_guarded_up", "error_power_gamma_up_aux_cap10_lifted",
    "error_power_gamma_progress_up", "error_power_gamma_progress_up_aux_cap10",
    "error_power_gamma_up_aux_cap10_gate", "error_power_gamma_up_aux_cap10_startcap",
    "error_power_gamma_up_aux_cap10_startcap_guarded",
    "error_power_gamma_up_aux_cap10_aux_startcap",
    "error_power_gamma_up_aux_cap10_aux_startcap_fallback",
    "error_power_gamma_up_aux_cap10_aux_startcap_auxdrop",
    "error_power_gamma_up_aux_cap10_aux_startcap_auxregdrop",
]  # fmt: skip
UNIFORM_AT_ZERO = ["logits", "loss_power"]


def _state(mask=MASK, seed=0):
    """Signals whose validation errors differ a lot between tasks."""
    errors = torch.rand(mask.shape, generator=torch.Generator().manual_seed(seed)) * 1e3 + 1e-3
    return make_signals(mask, val_error=errors)


def _actions(dim: int, seed: int, mask=MASK) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(*mask.shape, dim, generator=gen) * 2 - 1


@pytest.mark.parametrize("name", UNIFORM_AT_ZERO)
def test_zero_action_is_uniform_and_padding_gets_nothing(name):
    dim = action_transform(name).dim
    d = actions_to_decision(torch.zeros(2, 4, dim), _state(), name)
    torch.testing.assert_close(d.weights, MASK.float())
    torch.testing.assert_close(d.sampling, MASK.float() / MASK.sum(1, keepdim=True))


@pytest.mark.parametrize("name", TRANSFORMS)
def test_weights_mean_one_sampling_sums_one_with_floor(name):
    d = actions_to_decision(_actions(action_transform(name).dim, 0), _state(), name)
    k = MASK.sum(1).float()
    torch.testing.assert_close(d.weights.sum(1) / k, torch.ones(2))
    torch.testing.assert_close(d.sampling.sum(1), torch.ones(2))
    assert (d.sampling[MASK] >= SAMPLING_FLOOR / k.repeat_interleave(MASK.sum(1)) - 1e-7).all()
    assert (d.weights[~MASK] == 0).all() and (d.sampling[~MASK] == 0).all()


@pytest.mark.parametrize("name", TRANSFORMS)
def test_transforms_are_permutation_equivariant(name):
    mask = torch.ones(1, 4, dtype=torch.bool)
    state, actions = _state(mask, 3), _actions(action_transform(name).dim, 4, mask)
    perm = torch.tensor([2, 0, 3, 1])
    d = actions_to_decision(actions, state, name)
    permuted = make_signals(mask, val_error=state.val_error[:, perm])
    dp = actions_to_decision(actions[:, perm], permuted, name)
    torch.testing.assert_close(dp.weights, d.weights[:, perm])
    torch.testing.assert_close(dp.sampling, d.sampling[:, perm])


def test_loss_power_weights_follow_the_inverse_error_rule():
    """The defining property: with no residual, w_k ∝ E_k^-gamma, gamma = GAMMA_SCALE x
    the mean of the third column; gamma = 1 equalises w_k E_k across tasks."""
    mask = torch.ones(1, 3, dtype=torch.bool)
    errors = torch.tensor([[1e-2, 1.0, 1e3]])
    state = make_signals(mask, val_error=errors)
    actions = torch.zeros(1, 3, 3)
    actions[..., 2] = torch.tensor([1.0, 0.0, 1 / 3]) / GAMMA_SCALE  # mean 4/9: gamma 4/9
    d = actions_to_decision(actions, state, "loss_power")
    gamma = 4 / 9
    expected = errors[0] ** -gamma
    torch.testing.assert_close(d.weights[0], 3 * expected / expected.sum())
    actions[..., 2] = 1 / GAMMA_SCALE  # gamma = 1
    d = actions_to_decision(actions, state, "loss_power")
    product = d.weights[0] * errors[0]
    torch.testing.assert_close(product, product.mean().expand(3))
    # a residual multiplies one task's weight by exp(RESIDUAL_SCALE * a) before normalising
    actions[..., 2] = 0
    actions[0, 0, 0] = 0.5
    d = actions_to_decision(actions, state, "loss_power")
    ratio = d.weights[0, 0] / d.weights[0, 1]
    torch.testing.assert_close(ratio, torch.tensor(math.exp(RESIDUAL_SCALE * 0.5)))


def _started_state(mask, start, now):
    """Signals whose errors were ``start`` at the first decision and are ``now``."""
    return make_signals(mask, val_error=now, log_error_ratio=(now / start).log())


def test_error_power_zero_action_is_its_centre_rule():
    """An all-zero ``error_power`` action is the registered ErrorPower centre rule, with
    uniform sampling and nothing for padded tasks."""
    start = torch.tensor([[1e3, 1.0, 1e-2, 5.0], [40.0, 0.5, 1.0, 1.0]])
    state = dataclasses.replace(
        _started_state(MASK, start, start * torch.rand(2, 4) + 1e-3), mask=MASK
    )
    d = actions_to_decision(torch.zeros(2, 4, 4), state, "error_power")
    rule = ErrorPower(GAMMA_CENTRE, START_CENTRE).decide(state)
    torch.testing.assert_close(d.weights, rule.weights)
    torch.testing.assert_close(d.sampling, MASK.float() / MASK.sum(1, keepdim=True))


@pytest.mark.parametrize("direction", ["up", "down"])
@pytest.mark.parametrize("strength", [-0.5, 0.0, 0.4, 1.0, 3.0])
def test_error_power_beta_shifts_move_beta_by_their_clipped_strength(strength, direction):
    """The defining property: ``error_power_beta_up`` (``_down``) is ``error_power`` with
    beta moved by ±BETA_SHIFT * clip(mean a_h, 0, 1): w_shift / w_base ∝ E0_k^-(±BETA_SHIFT s)."""
    start = torch.tensor([[1e3, 1.0, 1e-2, 5.0], [40.0, 0.5, 1.0, 1.0]])
    state = dataclasses.replace(_started_state(MASK, start, start * 0.3), mask=MASK)
    s = (1 if direction == "up" else -1) * BETA_SHIFT * min(max(strength, 0.0), 1.0)
    _assert_exponent_shift(f"error_power_beta_{direction}", strength, state, start, s)


def _assert_exponent_shift(name, strength, state, error, s):
    """Transform ``name`` with its shift column at ``strength`` is ``error_power`` with
    each weight times ``error^-s`` (then rescaled to mean 1), sampling unchanged, and
    ``error_power`` bit for bit where ``s`` is 0 (``s`` a number, or (N, 1) per run)."""
    base = _actions(4, seed=1)
    shifted = actions_to_decision(_with_column(base, strength), state, name)
    plain = actions_to_decision(base, state, "error_power")
    expected = plain.weights * (error.log() * -s).exp() * MASK
    expected = expected / expected.sum(1, keepdim=True) * MASK.sum(1, keepdim=True)
    torch.testing.assert_close(shifted.weights, expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(shifted.sampling, plain.sampling)
    if not torch.as_tensor(s).any():
        assert torch.equal(shifted.weights, plain.weights)


@pytest.mark.parametrize("strength", [-0.5, 0.0, 0.4, 1.0, 3.0])
def test_error_power_gamma_up_raises_gamma_by_its_clipped_strength(strength):
    """The defining property: ``error_power_gamma_up`` is ``error_power`` with gamma
    raised by GAMMA_SHIFT * clip(mean a_h, 0, 1): w_shift / w_base ∝ E_k^-(GAMMA_SHIFT s)."""
    start = torch.tensor([[1e3, 1.0, 1e-2, 5.0], [40.0, 0.5, 1.0, 1.0]])
    now = start * torch.tensor([[0.3, 0.01, 0.9, 0.5], [0.1, 1.0, 0.02, 1.0]])
    state = dataclasses.replace(_started_state(MASK, start, now), mask=MASK)
    s = GAMMA_SHIFT * min(max(strength, 0.0), 1.0)
    _assert_exponent_shift("error_power_gamma_up", strength, state, now, s)
    with pytest.raises(ValueError, match="gamma"):
        ShiftedTransform(ScaledErrorPower("e", ("gamma", "beta")), 1, True, exponent="gamma")


@pytest.mark.parametrize("strength", [-0.5, 0.0, 0.4, 1.0])
def test_error_power_gamma_progress_up_shifts_gamma_on_each_tasks_progress(strength):
    """The defining property: ``error_power_gamma_progress_up`` is ``error_power`` with
    each weight times ``(E_k / E0_k)^-(GAMMA_SHIFT s)``: gamma up and beta down by the same
    shift, so two tasks that progressed alike keep their ratio whatever their scales."""
    start = torch.tensor([[1e3, 1.0, 1e-2, 5.0], [40.0, 0.5, 1.0, 1.0]])
    now = start * torch.tensor([[0.3, 0.01, 0.9, 0.5], [0.1, 1.0, 0.02, 1.0]])
    state = dataclasses.replace(_started_state(MASK, start, now), mask=MASK)
    s = GAMMA_SHIFT * min(max(strength, 0.0), 1.0)
    _assert_exponent_shift("error_power_gamma_progress_up", strength, state, now / start, s)


def test_error_power_gamma_late_up_ramps_the_gamma_shift_in_with_the_budget_used():
    """The defining property: ``error_power_gamma_late_up`` is ``error_power_gamma_up``
    with the shift times the run's fraction of the budget used: ``error_power`` bit for
    bit at the start, the full shift at the end, each weight times ``E_k^-(GAMMA_SHIFT s
    progress)`` between."""
    start = torch.tensor([[1e3, 1.0, 1e-2, 5.0], [40.0, 0.5, 1.0, 1.0]])
    now = start * torch.tensor([[0.3, 0.01, 0.9, 0.5], [0.1, 1.0, 0.02, 1.0]])
    state = dataclasses.replace(_started_state(MASK, start, now), mask=MASK)
    for progress in ([0.0, 0.0], [0.25, 0.5], [1.0, 1.0]):
        at = dataclasses.replace(state, progress=torch.tensor(progress))
        s = GAMMA_SHIFT * at.progress[:, None]
        _assert_exponent_shift("error_power_gamma_late_up", 1.0, at, now, s)
    actions = _with_column(_actions(4, seed=1), 1.0)
    end = dataclasses.replace(state, progress=torch.ones(2))
    torch.testing.assert_close(
        actions_to_decision(actions, end, "error_power_gamma_late_up").weights,
        actions_to_decision(actions, end, "error_power_gamma_up").weights,
    )


def test_error_power_gamma_guarded_up_drops_the_shift_while_a_target_is_behind_and_slow():
    """The defining property: a run with a target task whose error is above the run's
    geometric mean and whose log error has fallen more than LAG nats less than the mean
    decides as ``error_power``, bit for bit; a run without one as ``error_power_gamma_up``;
    the same slow task as an auxiliary does not trigger the guard."""
    start = torch.tensor([[1e3, 1.0, 1.0, 1.0], [40.0, 0.5, 1.0, 1.0]])
    now = start * torch.tensor(
        [[0.9, 0.01, 0.1, 1.0], [0.1, 0.1, 1.0, 1.0]]
    )  # task 0 slow in run 0
    state = dataclasses.replace(_started_state(MASK, start, now), mask=MASK)
    actions = _with_column(_actions(4, seed=1), 1.0)
    guarded = actions_to_decision(actions, state, "error_power_gamma_guarded_up")
    plain = actions_to_decision(actions[..., :4], state, "error_power")
    shifted = actions_to_decision(actions, state, "error_power_gamma_up")
    assert torch.equal(guarded.weights[0], plain.weights[0])
    assert torch.equal(guarded.weights[1], shifted.weights[1])
    assert not torch.allclose(plain.weights[0], shifted.weights[0])  # the guard mattered
    auxiliary = dataclasses.replace(
        state, objective=MASK & torch.tensor([[False, True, True, True]])
    )
    free = actions_to_decision(actions, auxiliary, "error_power_gamma_guarded_up")
    torch.testing.assert_close(
        free.weights, actions_to_decision(actions, auxiliary, "error_power_gamma_up").weights
    )
    assert LAG == 1.0


def test_the_lift_raises_a_behind_lagging_target_by_exp_lag_up_to_uniform():
    """The defining property of ``..._lifted``: a target task whose error is above the
    run's geometric mean and whose log error has fallen ``lag`` nats less than the mean
    has its weight times ``exp(lag)``, never past 1 (then all rescaled to mean 1); a run
    without one, or the same task as an auxiliary, decides as the base bit for bit."""
    start = torch.tensor([[1e3, 1.0, 1.0, 1.0], [40.0, 0.5, 1.0, 1.0]])
    now = start * torch.tensor([[0.9, 0.1, 0.2, 1.0], [0.1, 0.1, 1.0, 1.0]])
    state = dataclasses.replace(_started_state(MASK, start, now), mask=MASK)
    actions = _with_column(_with_column(_actions(4, seed=1), 1.0), 1.0)
    base = actions_to_decision(actions, state, "error_power_gamma_up_aux_cap10")
    lifted = actions_to_decision(actions, state, "error_power_gamma_up_aux_cap10_lifted")
    lag = math.log(0.9) - (math.log(0.9) + math.log(0.1) + math.log(0.2)) / 3
    expected = base.weights[0].clone()
    expected[0] = min(expected[0] * math.exp(lag), max(expected[0], 1.0))
    expected = 3 * expected / expected.sum()
    torch.testing.assert_close(lifted.weights[0], expected)
    assert lifted.weights[0, 0] > base.weights[0, 0]  # the lift mattered
    assert torch.equal(lifted.weights[1], base.weights[1])  # run 1: no slow target behind
    assert torch.equal(lifted.sampling, base.sampling)
    auxiliary = dataclasses.replace(state, objective=MASK & torch.tensor([[False], [True]]))
    free = actions_to_decision(actions, auxiliary, "error_power_gamma_up_aux_cap10_lifted")
    torch.testing.assert_close(
        free.weights,
        actions_to_decision(actions, auxiliary, "error_power_gamma_up_aux_cap10").weights,
    )
    stuck = dataclasses.replace(  # task 0 4.6 nats behind: lifted to 1 at most, never past it
        _started_state(MASK, torch.ones(2, 4), torch.tensor([[1.0, 1e-3, 1e-3, 1.0]] * 2)),
        mask=MASK,
    )
    for weight in (0.5, 1.5):
        weights = torch.tensor([[weight, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
        expected = torch.tensor([max(weight, 1.0), 1.0, 1.0])
        torch.testing.assert_close(
            lift_slow_targets(weights, stuck)[0, :3], 3 * expected / expected.sum()
        )


def test_the_start_cap_holds_each_auxiliary_to_the_targets_weight_at_start_scale():
    """The defining property of ``..._startcap``: an auxiliary whose ``w_k E0_k`` is above
    the geometric mean of the targets' ``w_t E0_t`` is cut to it, the others keep their
    weights (then all rescaled to mean 1); a run without auxiliaries decides as the base
    bit for bit. The case it is for: a target that does not learn beside auxiliaries
    that fit to near-zero error, which a rule following the current error starves."""
    start = torch.tensor([[1.4, 0.9, 0.5, 1.0], [40.0, 0.5, 1.0, 1.0]])
    now = start * torch.tensor([[1.0, 0.01, 0.02, 1.0], [0.1, 0.1, 1.0, 1.0]])
    state = dataclasses.replace(_started_state(MASK, start, now), mask=MASK)
    targets = torch.tensor([[True, False, False, False], [True, True, False, False]])
    state = dataclasses.replace(state, objective=MASK & targets)
    actions = _with_column(_with_column(_actions(4, seed=2), 1.0), 1.0)
    base = actions_to_decision(actions, state, "error_power_gamma_up_aux_cap10")
    capped = actions_to_decision(actions, state, "error_power_gamma_up_aux_cap10_startcap")
    load = base.weights[0, :3] * start[0, :3]
    expected = base.weights[0, :3] * torch.clamp(load[0] / load, max=1.0)
    torch.testing.assert_close(capped.weights[0, :3], 3 * expected / expected.sum())
    assert base.weights[0, 0] < base.weights[0, 1:3].min()  # the base starves the target
    assert (
        capped.weights[0, 1:3] * start[0, 1:3] <= capped.weights[0, 0] * start[0, 0] + 1e-6
    ).all()
    assert torch.equal(capped.weights[1], base.weights[1])  # run 1: every task a target
    assert torch.equal(capped.sampling, base.sampling)
    with pytest.raises(ValueError, match="'current' or 'start'"):
        cap_auxiliaries(base, state, torch.ones(2), scale="end")
    with pytest.raises(ValueError, match="'current' or 'start'"):
        CappedTransform(action_transform("error_power"), scale="end")


@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
def test_the_start_cap_column_sets_how_far_the_start_cap_cuts(strength):
    """The defining property of ``..._aux_startcap``: column 0 is v5's transform bit for bit,
    1 the always-on start cap's decision, and in between each capped auxiliary's weight
    is cut by the same factor raised to the strength (then all rescaled to mean 1)."""
    start = torch.tensor([[1.4, 0.9, 0.5, 1.0], [1.4, 0.9, 0.5, 1.0]])
    now = start * torch.tensor([[1.0, 0.01, 0.02, 1.0], [1.0, 0.01, 0.02, 1.0]])
    targets = torch.tensor([[True, False, False, False], [True, True, False, False]])
    state = dataclasses.replace(_started_state(MASK, start, now), mask=MASK)
    state = dataclasses.replace(state, objective=MASK & targets)
    v5_actions = _with_column(_with_column(_actions(4, seed=2), 1.0), 1.0)
    v5 = actions_to_decision(v5_actions, state, "error_power_gamma_up_aux_cap10")
    always = actions_to_decision(v5_actions, state, "error_power_gamma_up_aux_cap10_startcap")
    name = "error_power_gamma_up_aux_cap10_aux_startcap"
    switched = actions_to_decision(_with_column(v5_actions, strength), state, name)
    assert torch.equal(switched.sampling, v5.sampling)
    if strength == 0.0:
        assert torch.equal(switched.weights, v5.weights)
        return

    def relative(weights: torch.Tensor) -> torch.Tensor:  # each valid task's weight / the target's
        return weights[0, :3] / weights[0, 0]

    cut = relative(always.weights) / relative(v5.weights)
    torch.testing.assert_close(relative(switched.weights) / relative(v5.weights), cut**strength)
    assert torch.equal(switched.weights[1], v5.weights[1])  # run 1: no auxiliary
    assert cut[1:3].max() < 1  # both near-zero auxiliaries are held down
    assert action_transform(name).constants()["auxiliary_start_cap"] == 1.0


def test_the_guarded_start_cap_is_off_in_runs_whose_targets_overfit():
    """The defining property of ``..._startcap_guarded``: the start cap's decision in a run
    whose targets' mean ``log(val loss / train loss)`` is at most log 2, the base decision
    bit for bit in a run above it (auxiliaries' own gaps do not count)."""
    mask = torch.tensor([[True, True, True, False]] * 2)
    start = torch.tensor([[1.4, 0.9, 0.5, 1.0], [1.4, 0.9, 0.5, 1.0]])
    now = start * torch.tensor([[1.0, 0.01, 0.02, 1.0], [1.0, 0.01, 0.02, 1.0]])
    targets = torch.tensor([[True, False, False, False]] * 2)
    val = torch.tensor([[1.3, 5.0, 5.0, 1.0], [2.1, 1.0, 1.0, 1.0]])
    train = torch.tensor([[1.0, 0.01, 0.01, 1.0], [1.0, 1.0, 1.0, 1.0]])  # gaps: 0.26, 0.74
    state = dataclasses.replace(
        _started_state(mask, start, now),
        mask=mask,
        objective=mask & targets,
        val_loss=val,
        train_loss=train,
    )
    actions = _with_column(_with_column(_actions(4, seed=2, mask=mask), 1.0), 1.0)
    base = actions_to_decision(actions, state, "error_power_gamma_up_aux_cap10")
    capped = actions_to_decision(actions, state, "error_power_gamma_up_aux_cap10_startcap")
    guarded = actions_to_decision(actions, state, "error_power_gamma_up_aux_cap10_startcap_guarded")
    assert torch.equal(guarded.weights[0], capped.weights[0])  # generalising: capped
    assert not torch.equal(capped.weights[1], base.weights[1])  # the cap would act ...
    assert torch.equal(guarded.weights[1], base.weights[1])  # ... but the target overfits
    assert torch.equal(guarded.sampling, base.sampling)
    assert math.isclose(OVERFIT_GAP, math.log(2))


@pytest.mark.parametrize("strength", [0.0, 0.4, 1.0])
def test_error_power_gamma_ahead_up_raises_gamma_for_the_tasks_ahead_only(strength):
    """The defining property: each weight gains the factor ``min(E_k / G, 1)^-(GAMMA_SHIFT
    s)`` before rescaling, G the geometric mean of the run's valid errors: tasks ahead of
    G gain as under ``error_power_gamma_up``, those behind keep their ratios to each other."""
    start = torch.tensor([[1e3, 1.0, 1e-2, 5.0], [40.0, 0.5, 1.0, 1.0]])
    now = start * torch.tensor([[0.3, 0.01, 0.9, 0.5], [0.1, 1.0, 0.02, 1.0]])
    state = dataclasses.replace(_started_state(MASK, start, now), mask=MASK)
    log_now = now.log() * MASK
    geometric = (log_now.sum(1, keepdim=True) / MASK.sum(1, keepdim=True)).exp()
    relative = torch.where(MASK, (now / geometric).clamp_max(1), torch.ones_like(now))
    s = GAMMA_SHIFT * strength
    _assert_exponent_shift("error_power_gamma_ahead_up", strength, state, relative, s)
    assert (relative < 1).any() and (relative[MASK] == 1).any()  # both kinds present


def test_error_power_aux_beta_up_raises_beta_of_the_auxiliaries_only():
    """The defining property: targets keep the policy's beta, each auxiliary's weight
    gains the factor E0_k^-(BETA_SHIFT s) (before the weights are rescaled to mean 1)."""
    start = torch.tensor([[1e3, 1.0, 1e-2, 5.0], [40.0, 0.5, 1.0, 1.0]])
    objective = torch.tensor([[True, False, True, False], [False, True, True, True]]) & MASK
    state = dataclasses.replace(
        _started_state(MASK, start, start * 0.3), mask=MASK, objective=objective
    )
    base = _actions(4, seed=2)
    column = torch.full((2, 4, 1), 0.5)
    shifted = actions_to_decision(torch.cat([base, column], -1), state, "error_power_aux_beta_up")
    plain = actions_to_decision(base, state, "error_power")
    factor = torch.where(objective, 1.0, start.pow(-BETA_SHIFT * 0.5)) * MASK
    expected = plain.weights * factor
    expected = expected / expected.sum(1, keepdim=True) * MASK.sum(1, keepdim=True)
    torch.testing.assert_close(shifted.weights, expected, rtol=1e-4, atol=1e-6)


def test_error_power_weights_follow_both_exponents():
    """The defining property: with no residual, w_k ∝ E_k^-gamma E0_k^-beta, gamma and
    beta the centres plus the scaled means of the third and fourth columns."""
    mask = torch.ones(1, 3, dtype=torch.bool)
    start = torch.tensor([[1e2, 1.0, 1e-1]])
    now = torch.tensor([[1.0, 0.5, 1e-2]])
    state = _started_state(mask, start, now)
    actions = torch.zeros(1, 3, 4)
    actions[..., 2] = torch.tensor([0.6, 0.0, 0.3])  # mean 0.3
    actions[..., 3] = torch.tensor([-0.9, 0.0, 0.0])  # mean -0.3
    gamma = GAMMA_CENTRE + GAMMA_SCALE * 0.3
    beta = START_CENTRE - START_SCALE * 0.3
    expected = now[0] ** -gamma * start[0] ** -beta
    d = actions_to_decision(actions, state, "error_power")
    torch.testing.assert_close(d.weights[0], 3 * expected / expected.sum())
    # a task whose scale is 100x another's but equally far along gets 100^-(gamma+beta)
    # times its weight: scale normalisation at gamma + beta = 1
    actions.zero_()
    actions[..., 2] = (0.5 - GAMMA_CENTRE) / GAMMA_SCALE  # gamma = beta = 0.5
    actions[..., 3] = (0.5 - START_CENTRE) / START_SCALE
    start, now = torch.tensor([[100.0, 1.0, 1.0]]), torch.tensor([[50.0, 0.5, 0.5]])
    scaled = _started_state(mask, start, now)
    d = actions_to_decision(actions, scaled, "error_power")
    torch.testing.assert_close(d.weights[0, 0] / d.weights[0, 1], torch.tensor(0.01))


def test_error_power_weights_is_error_power_with_uniform_sampling():
    """The defining property: an ``error_power_weights`` action (a_w, a_g, a_b) gives the
    weights of the ``error_power`` action (a_w, 0, a_g, a_b), and every valid task is
    sampled with probability 1/K."""
    start = torch.tensor([[1e3, 1.0, 1e-2, 5.0], [40.0, 0.5, 1.0, 1.0]])
    state = dataclasses.replace(
        _started_state(MASK, start, start * torch.rand(2, 4) + 1e-3), mask=MASK
    )
    short = _actions(3, seed=3)
    full = torch.stack(
        [short[..., 0], _actions(1, seed=4)[..., 0], short[..., 1], short[..., 2]], dim=-1
    )
    d = actions_to_decision(short, state, "error_power_weights")
    torch.testing.assert_close(d.weights, actions_to_decision(full, state, "error_power").weights)
    torch.testing.assert_close(d.sampling, MASK.float() / MASK.sum(1, keepdim=True))
    assert not torch.allclose(d.weights[MASK], torch.ones(int(MASK.sum())))
    assert action_transform("error_power_weights").columns == ("weight", "gamma", "beta")


def test_error_exponents_is_error_power_with_only_its_exponents():
    """The defining property: an ``error_exponents`` action (a_g, a_b) is the
    ``error_power`` action (0, 0, a_g, a_b): weights E^-gamma E0^-beta, uniform sampling."""
    start = torch.tensor([[1e3, 1.0, 1e-2, 5.0], [40.0, 0.5, 1.0, 1.0]])
    state = dataclasses.replace(
        _started_state(MASK, start, start * torch.rand(2, 4) + 1e-3), mask=MASK
    )
    short = _actions(2, seed=5)
    full = torch.cat([torch.zeros(*MASK.shape, 2), short], dim=-1)
    d = actions_to_decision(short, state, "error_exponents")
    expected = actions_to_decision(full, state, "error_power")
    torch.testing.assert_close(d.weights, expected.weights)
    torch.testing.assert_close(d.sampling, expected.sampling)
    zero = actions_to_decision(torch.zeros_like(short), state, "error_exponents")
    assert not torch.allclose(d.weights, zero.weights)


def test_an_error_power_transform_needs_both_exponents():
    with pytest.raises(ValueError, match="must include gamma and beta"):
        ScaledErrorPower("broken", ("weight", "gamma"))


def test_unknown_transform_and_wrong_shapes_are_refused():
    with pytest.raises(ValueError, match="unknown action transform"):
        action_transform("softmax")
    with pytest.raises(ValueError, match="shape"):
        actions_to_decision(torch.zeros(2, 4, 2), _state(), "loss_power")


def test_emphasis_divergence_is_kl_from_uniform_and_ignores_padding():
    d = actions_to_decision(_actions(2, 2), _state(), "logits")
    got = emphasis_divergence(d, MASK)
    for run in range(2):
        k = int(MASK[run].sum())
        q = d.weights[run, :k] * d.sampling[run, :k]
        q = q / q.sum()
        expected = (torch.full((k,), 1 / k) * (1 / k / q).log()).sum()
        torch.testing.assert_close(got[run], expected)
    assert (got > 0).all()
    uniform = actions_to_decision(torch.zeros(2, 4, 2), _state(), "logits")
    torch.testing.assert_close(emphasis_divergence(uniform, MASK), torch.zeros(2))


def test_emphasis_divergence_from_a_reference_is_the_kl_between_emphases():
    a = actions_to_decision(_actions(2, 2), _state(), "logits")
    b = actions_to_decision(_actions(2, 7), _state(), "logits")
    got = emphasis_divergence(a, MASK, reference=b)
    for run in range(2):
        k = int(MASK[run].sum())
        q, r = (d.weights[run, :k] * d.sampling[run, :k] for d in (a, b))
        q, r = q / q.sum(), r / r.sum()
        torch.testing.assert_close(got[run], (r * (r / q).log()).sum())
    assert (got > 0).all()
    torch.testing.assert_close(emphasis_divergence(a, MASK, reference=a), torch.zeros(2))
    uniform = actions_to_decision(torch.zeros(2, 4, 2), _state(), "logits")
    torch.testing.assert_close(
        emphasis_divergence(a, MASK, reference=uniform), emphasis_divergence(a, MASK)
    )


def test_inverse_transform_round_trips():
    actions = (torch.rand(2, 4, 2, generator=torch.Generator().manual_seed(1)) - 0.5) * MASK[
        ..., None
    ]
    actions = actions - actions.sum(1, keepdim=True) / MASK.sum(1)[:, None, None] * MASK[..., None]
    d = actions_to_decision(actions, _state(), "logits")
    again = actions_to_decision(decision_to_actions(d, MASK), _state(), "logits")
    torch.testing.assert_close(again.weights, d.weights, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(again.sampling, d.sampling, rtol=1e-4, atol=1e-5)


def fake_signals(mask, seed=0):
    """Random signals of every scale the observation must absorb."""
    g = torch.Generator().manual_seed(seed)
    n, k = mask.shape
    rnd = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    a = torch.randn(n, k, 5, generator=g)
    gram = a @ a.transpose(1, 2)
    norm = gram.diagonal(dim1=1, dim2=2).sqrt()
    return make_signals(
        mask,
        rnd(n, k) * 100 + 1,
        train_loss=rnd(n, k) * 1e4,
        val_loss=rnd(n, k) + 1e-3,
        log_val_ratio=-rnd(n, k),
        lp_slope=-rnd(n, k),
        lp_gap=rnd(n, k),
        grad_norm=norm,
        grad_cos=gram / (norm[:, :, None] * norm[:, None, :]),
        cos_update=rnd(n, k),
        progress=rnd(n),
    )


def test_observation_is_bounded_finite_and_zero_on_padding():
    sig = fake_signals(MASK)
    sig.train_loss[0, 0] = float("nan")
    obs = build_observation(sig, actions_to_decision(torch.zeros(2, 4, 2), _state(), "logits"))
    assert obs.shape == (2, 4, NUM_FEATURES) and obs.dtype == torch.float32
    assert torch.isfinite(obs).all() and obs.abs().max() <= OBS_CLIP
    assert (obs[~MASK] == 0).all() and (obs[MASK][:, 0] == 1).all()


def test_observation_is_permutation_equivariant():
    mask = torch.ones(1, 4, dtype=torch.bool)
    sig = fake_signals(mask, seed=3)
    dec = Decision(torch.tensor([[0.5, 1.5, 1.0, 1.0]]), torch.tensor([[0.1, 0.2, 0.3, 0.4]]))
    obs = build_observation(sig, dec)
    perm = torch.tensor([2, 0, 3, 1])
    permuted = Signals(
        **{
            name: (
                v[:, perm][:, :, perm] if name == "grad_cos" else v[:, perm] if v.dim() == 2 else v
            )
            for name, v in sig.__dict__.items()
        }
    )
    obs_p = build_observation(permuted, Decision(dec.weights[:, perm], dec.sampling[:, perm]))
    torch.testing.assert_close(obs_p, obs[:, perm])


def test_the_documented_feature_table_is_the_schema():
    """docs/environment.md lists every feature of the schema, in order."""
    from pathlib import Path

    from curriculum_rl.controllers.observation import FEATURES

    docs = (Path(__file__).resolve().parents[1] / "docs" / "environment.md").read_text()
    rows = [
        line.split("|")[2].strip().strip("`")
        for line in docs.splitlines()
        if line.startswith("| ") and line.split("|")[1].strip().isdigit()
    ]
    assert rows == list(FEATURES)


# Targets 0 and 1 (orthogonal gradients), auxiliary 2 agrees with them in part, auxiliary 3
# opposes them.
GATE_GRADIENTS = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 3.0], [-1.0, -0.5]]])


def _gated_state():
    """(mask, state) of one run whose auxiliaries 2 and 3 can be gated."""
    mask = torch.ones(1, 4, dtype=torch.bool)
    objective = torch.tensor([[True, True, False, False]])
    return mask, with_gradients(_state(mask, 5), GATE_GRADIENTS, objective=objective)


V7_TRANSFORM = "error_power_gamma_up_aux_cap10_aux_startcap"


def _v7_and_switched(state: Signals, suffix: str, strength: float) -> tuple[Decision, Decision]:
    """v7's decision for fixed random actions on ``state`` (one run of four tasks), and its
    twin's ``V7_TRANSFORM + suffix`` with the switch column at ``strength``."""
    v7_actions = _actions(7, 6, state.mask)
    v7 = actions_to_decision(v7_actions, state, V7_TRANSFORM)
    twin = actions_to_decision(_with_column(v7_actions, strength), state, V7_TRANSFORM + suffix)
    return v7, twin


@pytest.mark.parametrize("strength", [0.0, 0.3, 1.0])
@pytest.mark.parametrize(
    ("base", "suffix", "heuristic"),
    [
        (V7_TRANSFORM, "_fallback", "scale-normalised-gs"),
        (V7_TRANSFORM + "_auxregdrop", "_iefallback", "inverse-error"),  # v8's transform
        (V7_TRANSFORM + "_auxregdrop", "_sqrtfallback", "sqrt-loss"),
        (V7_TRANSFORM + "_auxregdrop", "_fourthfallback", "fourth-root-loss"),
    ],
)
def test_a_fallback_column_mixes_its_base_with_the_heuristic(base, suffix, heuristic, strength):
    """The defining property of ``..._fallback`` (on v7), ``..._iefallback``,
    ``..._sqrtfallback`` and ``..._fourthfallback`` (on v8): column 0 is the base
    transform bit for bit, 1 the heuristic's own decision, and in between the linear mix of
    both weights, sampling and loss normalisation. (On this state
    ``scale-normalised-gs`` gates out auxiliary 3, which opposes the targets.)"""
    from curriculum_rl.controllers import make_controller

    _, state = _gated_state()
    actions = _actions(action_transform(base).dim, 6, state.mask)
    plain = actions_to_decision(actions, state, base)
    mixed = actions_to_decision(_with_column(actions, strength), state, base + suffix)
    if strength == 0.0:
        assert torch.equal(mixed.weights, plain.weights)
        assert torch.equal(mixed.sampling, plain.sampling)
        return
    target = make_controller(heuristic).decide(state)
    assert not torch.allclose(target.weights, plain.weights)  # the mix is not vacuous
    for got, start, end in (
        (mixed.weights, plain.weights, target.weights),
        (mixed.sampling, plain.sampling, target.sampling),
        (mixed.normalisation, plain.normalisation, target.normalisation),
    ):
        torch.testing.assert_close(got, (1 - strength) * start + strength * end)
    constants = action_transform(base + suffix).constants()
    assert constants[f"fallback_{heuristic.replace('-', '_')}"] == 1.0


V8_TRANSFORM = V7_TRANSFORM + "_auxregdrop"


@pytest.mark.parametrize("strength", [0.0, 0.3, 1.0])
def test_the_gmt_column_takes_geometric_means_direction_on_the_targets_only(strength):
    """The defining property of ``..._gmtfallback`` (on v8): the loss normalisation is s;
    the targets' weights move s of the way to their geometric mean and their sampling to
    an equal split of what the auxiliaries leave; each auxiliary's weight is times
    ``(L_a / G_t L_t)^s``. So at 1 the step coefficients ``w_k / L_k`` are ``c / L_t`` on
    the targets, and each auxiliary's relative to the targets' geometric mean is v8's
    ``w_a / G_t w_t``. Column 0 is v8 bit for bit."""
    _, state = _gated_state()
    state = dataclasses.replace(state, train_loss=torch.tensor([[2.0, 0.5, 30.0, 0.01]]))
    actions = _actions(action_transform(V8_TRANSFORM).dim, 6, state.mask)
    v8 = actions_to_decision(actions, state, V8_TRANSFORM)
    moved = actions_to_decision(
        _with_column(actions, strength), state, V8_TRANSFORM + "_gmtfallback"
    )
    if strength == 0.0:
        for key in ("weights", "sampling", "normalisation"):
            assert torch.equal(getattr(moved, key), getattr(v8, key))
        return
    (w8,), (p8,), (loss,) = v8.weights, v8.sampling, state.train_loss

    def geo(x: torch.Tensor) -> torch.Tensor:
        return x.log().mean().exp()

    expected = torch.cat(
        [torch.lerp(w8[:2], geo(w8[:2]), strength), w8[2:] * (loss[2:] / geo(loss[:2])) ** strength]
    )
    torch.testing.assert_close(moved.weights[0], expected * 4 / expected.sum())
    share = torch.lerp(p8[:2], (1 - p8[2:].sum()) / 2, strength)
    torch.testing.assert_close(moved.sampling[0], torch.cat([share, p8[2:]]))
    torch.testing.assert_close(moved.normalisation, torch.tensor([strength]))
    if strength == 1.0:
        coefficient = moved.weights[0] / loss
        torch.testing.assert_close(coefficient[0] * loss[0], coefficient[1] * loss[1])
        relative = coefficient[2:] / geo(coefficient[:2])
        torch.testing.assert_close(relative, w8[2:] / geo(w8[:2]))
    constants = action_transform(V8_TRANSFORM + "_gmtfallback").constants()
    assert constants["fallback_geometric_mean_targets"] == 1.0


@pytest.mark.parametrize("strength", [0.0, 0.6, 1.0])
def test_the_gmc_column_is_gm_fallback_except_beside_a_regression_auxiliary(strength):
    """The defining property of ``..._gmcfallback`` (on v8): on a run whose auxiliaries
    are all classification or tagging it is ``..._gmfallback`` exactly; on a run with a
    regression auxiliary, in the same batch, it is v8 bit for bit at any strength."""
    mask = torch.ones(3, 4, dtype=torch.bool)
    objective = torch.tensor([[True, True, False, False]] * 3)
    classify = torch.tensor(
        [[False, True, True, True], [False, False, True, False], [False, False, False, False]]
    )  # run 0: classification auxiliaries only; run 1: one regression auxiliary; run 2: two
    losses = torch.tensor([[2.0, 0.5, 30.0, 0.01]] * 3)
    state = make_signals(mask, train_loss=losses, val_error=_state(mask).val_error)
    state = dataclasses.replace(state, objective=objective, classify=classify)
    actions = _actions(action_transform(V8_TRANSFORM).dim, 6, mask)
    v8 = actions_to_decision(actions, state, V8_TRANSFORM)
    columns = _with_column(actions, strength)
    gm = actions_to_decision(columns, state, V8_TRANSFORM + "_gmfallback")
    gmc = actions_to_decision(columns, state, V8_TRANSFORM + "_gmcfallback")
    for key in ("weights", "sampling", "normalisation"):
        assert torch.equal(getattr(gmc, key)[0], getattr(gm, key)[0])
        assert torch.equal(getattr(gmc, key)[1:], getattr(v8, key)[1:])
    assert gmc.normalisation[0] == strength
    constants = action_transform(V8_TRANSFORM + "_gmcfallback").constants()
    assert constants["fallback_only_no_regression_auxiliary"] == 1.0


def _gmc_latch_problem() -> tuple[Signals, torch.Tensor, Decision, Decision]:
    """Two runs for the latch tests: run 0 beside a classification and a tagging auxiliary,
    run 1 beside a regression auxiliary; actions, v8's decision on them and
    ``..._gmcfallback``'s at strength 1."""
    mask = torch.ones(2, 4, dtype=torch.bool)
    objective = torch.tensor([[True, True, False, False]] * 2)
    classify = torch.tensor([[False, True, True, True], [False, False, False, True]])
    losses = torch.tensor([[2.0, 0.5, 30.0, 0.01]] * 2)
    signals = make_signals(mask, train_loss=losses, val_error=_state(mask).val_error)
    signals = dataclasses.replace(signals, objective=objective, classify=classify)
    actions = _actions(action_transform(V8_TRANSFORM).dim, 6, mask)
    v8 = actions_to_decision(actions, signals, V8_TRANSFORM)
    full = actions_to_decision(_with_column(actions, 1.0), signals, V8_TRANSFORM + "_gmcfallback")
    return signals, actions, v8, full


def test_the_gmc_latch_is_all_or_nothing_and_stays_on_once_on():
    """The defining property of ``..._gmclatch`` (on v8): the column below ``LATCH_AT`` is
    v8 bit for bit; at or above it, ``..._gmcfallback`` at strength 1 exactly; after a
    decision that took the fallback (normalisation 1), strength 1 whatever the column says.
    A run with a regression auxiliary stays v8 throughout, and plain signals (no previous
    decision) do not latch."""
    signals, actions, v8, full = _gmc_latch_problem()
    fields = {f.name: getattr(signals, f.name) for f in dataclasses.fields(Signals)}
    name = V8_TRANSFORM + "_gmclatch"

    def latched(column: float, previous_alpha: float | None) -> Decision:
        state = signals
        if previous_alpha is not None:
            previous = Decision(v8.weights, v8.sampling, torch.full((2,), previous_alpha))
            state = DecisionState(**fields, previous=previous)
        return actions_to_decision(_with_column(actions, column), state, name)

    cases = [(0.49, 0.0, v8), (LATCH_AT, 0.0, full), (0.0, 1.0, full), (0.0, None, v8)]
    cases += [(0.3, 0.7, v8), (1.0, None, full)]
    for column, previous_alpha, expected in cases:
        got = latched(column, previous_alpha)
        for key in ("weights", "sampling", "normalisation"):
            assert torch.equal(getattr(got, key)[0], getattr(expected, key)[0])
            assert torch.equal(getattr(got, key)[1], getattr(v8, key)[1])
    assert action_transform(name).constants()["fallback_latch_at"] == LATCH_AT


@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
def test_the_gms_column_keeps_each_auxiliarys_share_of_v8s_objective(strength):
    """The defining property of ``..._gmsfallback`` (on v8): at 1 the loss normalisation
    is 1 and each auxiliary's weight, as a share of the weights, is its share of v8's
    objective ``w_a L_a / sum w L``; the targets split the rest equally, and sampling
    likewise keeps the auxiliaries' probabilities. In between, the linear mix with v8's
    decision; column 0 is v8 bit for bit."""
    _, state = _gated_state()
    state = dataclasses.replace(state, train_loss=torch.tensor([[2.0, 0.5, 30.0, 0.01]]))
    actions = _actions(action_transform(V8_TRANSFORM).dim, 6, state.mask)
    v8 = actions_to_decision(actions, state, V8_TRANSFORM)
    name = V8_TRANSFORM + "_gmsfallback"
    moved = actions_to_decision(_with_column(actions, strength), state, name)
    if strength == 0.0:
        for key in ("weights", "sampling", "normalisation"):
            assert torch.equal(getattr(moved, key), getattr(v8, key))
        return
    (w8,), (p8,), (loss,) = v8.weights, v8.sampling, state.train_loss
    objective = w8 * loss
    aux_share = objective[2:] / objective.sum()
    share = torch.cat([((1 - aux_share.sum()) / 2).expand(2), aux_share])
    weights = torch.lerp(w8, 4 * share, strength)
    torch.testing.assert_close(moved.weights[0], weights)
    sampling = torch.cat([((1 - p8[2:].sum()) / 2).expand(2), p8[2:]])
    torch.testing.assert_close(moved.sampling[0], torch.lerp(p8, sampling, strength))
    torch.testing.assert_close(moved.normalisation, torch.tensor([strength]))
    assert action_transform(name).constants()["fallback_geometric_mean_shares"] == 1.0


@pytest.mark.parametrize("strength", [0.0, 0.4, 1.0])
def test_the_target_start_column_lowers_beta_for_the_targets_only(strength):
    """The defining property of ``..._tstartdown`` (on v8): each target's weight is times
    ``E0^(s TARGET_START_SHIFT)``, the auxiliaries' unchanged, then rescaled to mean 1: so
    the targets' weights relative to each other and to the auxiliaries follow a start
    exponent lowered by ``s TARGET_START_SHIFT``. Column 0 is v8 bit for bit."""
    _, state = _gated_state()
    actions = _actions(action_transform(V8_TRANSFORM).dim, 6, state.mask)
    v8 = actions_to_decision(actions, state, V8_TRANSFORM)
    name = V8_TRANSFORM + "_tstartdown"
    moved = actions_to_decision(_with_column(actions, strength), state, name)
    if strength == 0.0:
        assert torch.equal(moved.weights, v8.weights) and torch.equal(moved.sampling, v8.sampling)
        return
    start = state.log_error_start[0].exp()
    factor = torch.cat([start[:2] ** (strength * TARGET_START_SHIFT), torch.ones(2)])
    expected = v8.weights[0] * factor
    torch.testing.assert_close(moved.weights[0], 4 * expected / expected.sum())
    assert torch.equal(moved.sampling, v8.sampling)
    assert action_transform(name).constants()["target_start_shift"] == TARGET_START_SHIFT


@pytest.mark.parametrize("suffix", ["_gmtfallback", "_gmsfallback"])
def test_the_targets_only_columns_are_geometric_means_direction_without_auxiliaries(suffix):
    """Without auxiliaries, strength 1 is ``geometric-mean``'s direction (uniform weights
    and sampling, normalisation 1); a run at 0 beside it keeps v8's decision bit for bit."""
    mask = torch.tensor([[True, True, True, False], [True, True, True, False]])
    state = make_signals(mask, train_loss=torch.tensor([[3.0, 0.2, 40.0, 1.0]] * 2))
    state = dataclasses.replace(state, val_error=_state(mask, 3).val_error)
    actions = _actions(action_transform(V8_TRANSFORM).dim, 2, mask)
    v8 = actions_to_decision(actions, state, V8_TRANSFORM)
    columns = torch.tensor([0.0, 1.0])[:, None, None].expand(2, 4, 1)
    moved = actions_to_decision(torch.cat([actions, columns], -1), state, V8_TRANSFORM + suffix)
    assert torch.equal(moved.weights[0], v8.weights[0])
    assert torch.equal(moved.sampling[0], v8.sampling[0]) and moved.normalisation[0] == 0
    torch.testing.assert_close(moved.weights[1], mask[1].float())
    torch.testing.assert_close(moved.sampling[1], mask[1].float() / 3)
    assert moved.normalisation[1] == 1.0


@pytest.mark.parametrize("strength", [0.0, 0.4, 1.0])
def test_the_auxdrop_column_drops_the_auxiliaries_from_v7(strength):
    """The defining property of ``..._auxdrop``: column 0 is v7's transform bit for bit;
    at strength s each auxiliary keeps (1 - s) of its weight relative to the targets and
    its sampling moves that far to the floor share; at 1 only the targets are trained.
    The targets keep their weights and sampling relative to each other."""
    _, state = _gated_state()
    v7, dropped = _v7_and_switched(state, "_auxdrop", strength)
    if strength == 0.0:
        assert torch.equal(dropped.weights, v7.weights)
        assert torch.equal(dropped.sampling, v7.sampling)
        return
    targets, auxiliaries = [0, 1], [2, 3]
    torch.testing.assert_close(dropped.weights[0].sum(), torch.tensor(4.0))  # mean one
    relative = dropped.weights[0] / v7.weights[0]
    torch.testing.assert_close(relative[auxiliaries] / relative[0], torch.full((2,), 1 - strength))
    torch.testing.assert_close(relative[targets[1]], relative[targets[0]])
    floor = SAMPLING_FLOOR / 4
    moved = torch.lerp(v7.sampling[0, auxiliaries], torch.tensor(floor), strength)
    unnormalised = torch.cat([v7.sampling[0, targets], moved])
    torch.testing.assert_close(dropped.sampling[0], unnormalised / unnormalised.sum())
    if strength == 1.0:
        assert torch.all(dropped.weights[0, auxiliaries] == 0)
    assert action_transform(V7_TRANSFORM + "_auxdrop").constants()["auxiliary_drop"] == 1.0


@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
def test_the_auxregdrop_column_drops_only_the_regression_auxiliaries(strength):
    """``..._auxregdrop``: ``..._auxdrop`` restricted to regression auxiliaries; a
    classification auxiliary keeps its weight relative to the targets, and a run whose
    auxiliaries are all classification is v7's decision bit for bit."""
    _, state = _gated_state()
    state = dataclasses.replace(state, classify=torch.tensor([[False, True, True, False]]))
    v7, dropped = _v7_and_switched(state, "_auxregdrop", strength)  # auxiliary 2 classifies
    relative = dropped.weights[0] / v7.weights[0]
    torch.testing.assert_close(relative[1:3], relative[0].expand(2))  # targets, aux 2
    torch.testing.assert_close(relative[3] / relative[0], torch.tensor(1 - strength))
    assert (dropped.sampling[0, 3] < v7.sampling[0, 3]) == (strength > 0)
    constants = action_transform(V7_TRANSFORM + "_auxregdrop").constants()
    assert constants["regression_auxiliary_drop"] == 1.0
    no_regression = dataclasses.replace(state, classify=torch.tensor([[False, False, True, True]]))
    v7_there, kept = _v7_and_switched(no_regression, "_auxregdrop", 1.0)
    assert torch.equal(kept.weights, v7_there.weights)
    assert torch.equal(kept.sampling, v7_there.sampling)


@pytest.mark.parametrize("suffix", ["_auxdrop", "_auxregdrop"])
def test_the_drop_columns_leave_runs_without_auxiliaries_alone(suffix):
    """A run whose tasks are all targets has nothing to drop: v7's decision bit for bit."""
    state = make_signals(torch.ones(1, 4, dtype=torch.bool))
    v7, dropped = _v7_and_switched(state, suffix, 1.0)
    assert torch.equal(dropped.weights, v7.weights) and torch.equal(dropped.sampling, v7.sampling)


def test_error_power_gated_is_error_power_with_auxiliaries_gated():
    """The defining property: the gated twin's decision is ``gate_auxiliaries`` of
    ``error_power``'s for the same action; with every task a target it is ``error_power``."""

    mask, state = _gated_state()
    actions = _actions(4, 6, mask)
    plain = actions_to_decision(actions, state, "error_power")
    gated = actions_to_decision(actions, state, "error_power_gated")
    expected = gate_auxiliaries(plain, state)
    torch.testing.assert_close(gated.weights, expected.weights)
    torch.testing.assert_close(gated.sampling, plain.sampling)
    assert gated.weights[0, 3] == 0 and 0 < gated.weights[0, 2] < gated.weights[0, 0] * 10
    all_targets = dataclasses.replace(state, objective=mask)
    torch.testing.assert_close(
        actions_to_decision(actions, all_targets, "error_power_gated").weights,
        actions_to_decision(actions, all_targets, "error_power").weights,
    )
    assert action_transform("error_power_gated").constants()["auxiliary_gate"] == 1.0


def _with_column(base: torch.Tensor, value: float) -> torch.Tensor:
    """``error_power`` actions ``base`` with one more column, ``value`` for every task."""
    return torch.cat([base, torch.full((*base.shape[:2], 1), value)], dim=-1)


def _zero_column_is_error_power(base: torch.Tensor, state: Signals, name: str) -> Decision:
    """Assert that transform ``name`` with its extra column at 0 is ``error_power`` bit for
    bit; return ``error_power``'s decision."""
    plain = actions_to_decision(base, state, "error_power")
    zero = actions_to_decision(_with_column(base, 0.0), state, name)
    assert torch.equal(zero.weights, plain.weights) and torch.equal(zero.sampling, plain.sampling)
    return plain


def test_error_power_gate_moves_from_error_power_to_the_full_gate_with_its_strength():
    """The defining property: gate column 0 is ``error_power`` bit for bit, 1 (and above,
    clipped) is ``error_power_gated``, and strength d multiplies an auxiliary by cos^d."""
    mask, state = _gated_state()
    base = _actions(4, 6, mask)
    plain = _zero_column_is_error_power(base, state, "error_power_gate")
    full = actions_to_decision(_with_column(base, 1.0), state, "error_power_gate")
    gated = actions_to_decision(base, state, "error_power_gated")
    torch.testing.assert_close(full.weights, gated.weights)
    half = actions_to_decision(_with_column(base, 0.5), state, "error_power_gate").weights[0]
    target = plain.weights[0, 0] * GATE_GRADIENTS[0, 0] + plain.weights[0, 1] * GATE_GRADIENTS[0, 1]
    cos = torch.nn.functional.cosine_similarity(GATE_GRADIENTS[0, 2], target, dim=0)
    ratio = (half[2] / half[0]) / (plain.weights[0, 2] / plain.weights[0, 0])
    torch.testing.assert_close(ratio, cos.sqrt())
    assert half[3] == 0


def test_the_gate_column_composes_with_v5s_transform():
    """``error_power_gamma_up_aux_cap10_gate``: gate column 0 is v5's transform bit for
    bit, 1 gates each auxiliary of v5's (capped) decision by its positive cosine."""
    mask, state = _gated_state()
    base = _with_column(_with_column(_actions(4, 6, mask), 1.0), 1.0)  # shift and cap on
    v5 = actions_to_decision(base, state, "error_power_gamma_up_aux_cap10")
    name = "error_power_gamma_up_aux_cap10_gate"
    off = actions_to_decision(_with_column(base, 0.0), state, name)
    assert torch.equal(off.weights, v5.weights) and torch.equal(off.sampling, v5.sampling)
    full = actions_to_decision(_with_column(base, 1.0), state, name)
    torch.testing.assert_close(full.weights, gate_auxiliaries(v5, state).weights)
    assert not torch.allclose(full.weights, v5.weights)  # the gate mattered


def _aux_cap_state():
    """Run 0: targets 0 and 2, a raw-scale auxiliary 1 and a small auxiliary 3 (padded
    slot 3 in run 1, where every task is a target)."""
    errors = torch.tensor([[2.0, 5e6, 0.5, 1e-3], [3.0, 40.0, 0.2, 1.0]])
    objective = torch.tensor([[True, False, True, False], [True, True, True, False]])
    mask = torch.tensor([[True, True, True, True], [True, True, True, False]])
    return mask, make_signals(mask, val_error=errors, objective=objective & mask)


def test_error_power_aux_cap_cuts_only_auxiliaries_above_the_targets_level():
    """The defining property: at strength 1 every auxiliary's ``w E`` is at most the
    geometric mean of the targets' ``w E``; an auxiliary above it lands on it, one below
    keeps its weight relative to the targets; a run without auxiliaries is ``error_power``
    bit for bit, and strength 0 is ``error_power`` bit for bit."""
    mask, state = _aux_cap_state()
    base = torch.zeros(2, 4, 4)
    base[..., 2] = -0.2  # gamma 0.2, beta 0.5: 0.3 of each task's scale stays in w E
    plain = _zero_column_is_error_power(base, state, "error_power_aux_cap")
    full = actions_to_decision(_with_column(base, 1.0), state, "error_power_aux_cap")
    assert torch.equal(full.weights[1], plain.weights[1])  # every task a target
    load = full.weights[0] * state.val_error[0]
    level = load[[0, 2]].log().mean().exp()
    torch.testing.assert_close(load[1], level)  # the raw-scale auxiliary: cut to the level
    plain_load = plain.weights[0] * state.val_error[0]
    assert plain_load[1] > level * 10 and plain_load[3] < level
    ratio = (full.weights[0] / plain.weights[0])[[0, 2, 3]]
    torch.testing.assert_close(ratio, ratio[0].expand(3))  # the rest: only rescaled
    torch.testing.assert_close(full.weights.sum(1), mask.sum(1).float())
    half = actions_to_decision(_with_column(base, 0.5), state, "error_power_aux_cap").weights[0]
    cut = (half[1] / half[0]) / (plain.weights[0, 1] / plain.weights[0, 0])
    torch.testing.assert_close(cut, (level / plain_load[1]).sqrt(), rtol=1e-4, atol=0)
    assert action_transform("error_power_aux_cap").constants()["auxiliary_cap"] == 1.0


def test_error_power_aux_cap10_cuts_auxiliaries_to_ten_times_the_targets_level():
    """With headroom 10, an auxiliary above ten times the targets' level lands there."""
    _, state = _aux_cap_state()
    base = torch.zeros(2, 4, 4)
    base[..., 2] = -0.2
    full = actions_to_decision(_with_column(base, 1.0), state, "error_power_aux_cap10").weights[0]
    load = full * state.val_error[0]
    torch.testing.assert_close(load[1], 10 * load[[0, 2]].log().mean().exp())
    assert action_transform("error_power_aux_cap10").constants()["auxiliary_cap"] == 10.0
    with pytest.raises(ValueError, match="headroom"):
        CappedTransform(action_transform("error_power"), headroom=0.5)


@pytest.mark.parametrize(
    "shift", ["gamma", "gamma_ahead", "gamma_late", "gamma_guarded", "gamma_progress"]
)
def test_the_cap_composes_with_the_gamma_switches(shift):
    """``error_power_gamma_up_aux_cap10`` (v4's transform plus the cap) and its twins on
    the other gamma shifts: cap column 0 is the base transform bit for bit, whatever its own
    switch; at 1 the raw-scale auxiliary lands on ten times the targets' level of the
    shifted decision."""
    base_name = f"error_power_{shift}_up"
    name = f"{base_name}_aux_cap10"
    _, state = _aux_cap_state()
    base = _with_column(torch.zeros(2, 4, 4), 1.0)  # the gamma switch fully on
    base[..., 2] = -0.6  # gamma 0.5 - 0.9 (+ 0.3), beta 0.5: much of each task's scale stays
    shifted = actions_to_decision(base, state, base_name)
    zero = actions_to_decision(_with_column(base, 0.0), state, name)
    assert torch.equal(zero.weights, shifted.weights)
    assert torch.equal(zero.sampling, shifted.sampling)
    full = actions_to_decision(_with_column(base, 1.0), state, name)
    load = full.weights[0] * state.val_error[0]
    torch.testing.assert_close(load[1], 10 * load[[0, 2]].log().mean().exp())
    assert (shifted.weights[0, 1] * state.val_error[0, 1]) > load[1]  # the cap did cut
    assert torch.equal(full.weights[1], shifted.weights[1])  # every task a target
    constants = action_transform(name).constants()
    assert constants["auxiliary_cap"] == 10.0 and constants[f"{shift}_shift"] == GAMMA_SHIFT


def _start_latch_cases(latch: str, fallback: str, on_alpha: float):
    """``(got, expected, v8)`` for the start latch ``V8_TRANSFORM + latch`` on the two runs
    of :func:`_gmc_latch_problem`, in five cases: the column at ``LATCH_AT`` and at 0.49
    at the first decision, at 1 at the fourth and at ``LATCH_AT`` at the second, and at 0
    after a decision that took the fallback (normalisation ``on_alpha``). ``expected`` is
    the fallback ``V8_TRANSFORM + fallback`` at strength 1 where the latch is on, else v8."""
    signals, actions, v8, _ = _gmc_latch_problem()
    full = actions_to_decision(_with_column(actions, 1.0), signals, V8_TRANSFORM + fallback)
    fields = {f.name: getattr(signals, f.name) for f in dataclasses.fields(Signals)}
    cases = [(LATCH_AT, 0.0, 1, full), (0.49, 0.0, 1, v8), (1.0, 0.0, 4, v8)]
    cases += [(0.0, on_alpha, 4, full), (LATCH_AT, 0.0, 2, v8)]
    results = []
    for column, previous_alpha, decision, expected in cases:
        state = _latch_state(fields, v8, previous_alpha, decision)
        got = actions_to_decision(_with_column(actions, column), state, V8_TRANSFORM + latch)
        results.append((got, expected, v8))
    return results


def test_the_gmc_start_latch_closes_at_the_first_decision_or_never():
    """The defining property of ``..._gmcstart`` (on v8): the column is read at a run's
    first decision only. There, at or above ``LATCH_AT``, ``..._gmcfallback`` at strength 1
    exactly, below it v8 bit for bit; at a later decision the column cannot switch it on
    (v8), while a run that took the fallback (normalisation 1) stays on whatever the
    column says. A run with a regression auxiliary stays v8 throughout."""
    for got, expected, v8 in _start_latch_cases("_gmcstart", "_gmcfallback", 1.0):
        for key in ("weights", "sampling", "normalisation"):
            assert torch.equal(getattr(got, key)[0], getattr(expected, key)[0])
            assert torch.equal(getattr(got, key)[1], getattr(v8, key)[1])
    constants = action_transform(V8_TRANSFORM + "_gmcstart").constants()
    assert constants["fallback_latch_start_only"] == 1.0


@pytest.mark.parametrize("root, heuristic", [("sqrt", "sqrt-loss"), ("fourth", "fourth-root-loss")])
def test_a_root_loss_start_latch_takes_its_fallback_at_the_first_decision_or_never(root, heuristic):
    """``..._sqrtstart`` and ``..._fourthstart`` (on v8) read their column at a run's first
    decision only: there, at or above ``LATCH_AT``, the fallback at strength 1
    (``sqrt-loss``, ``fourth-root-loss``) beside any auxiliary, below it v8; later the
    column cannot switch it on, and a run whose previous decision took the fallback
    (normalisation 1/2, 3/4) stays on whatever the column says."""
    alpha = ROOT_LOSSES[heuristic]
    for got, expected, _ in _start_latch_cases(f"_{root}start", f"_{root}fallback", alpha):
        for key in ("weights", "sampling", "normalisation"):
            assert torch.equal(getattr(got, key), getattr(expected, key))


@pytest.mark.parametrize("s", FOURTH_ROOT_MIXES)
def test_the_fourth_root_mix_moves_v9_to_fourth_root_loss_in_log_space(s):
    """The defining property of ``..._fourthgeo33`` and ``..._fourthgeo15`` (on v9, RESULTS
    §40): at every decision each weight (and sampling probability) is v9's to the power
    ``1 - s`` times ``fourth-root-loss``'s (uniform) to the power ``s``, up to one factor
    per run, so a weight v9 sets to 0 stays 0, and the loss normalisation moves ``s`` of
    the way to 3/4: each task's step coefficient ``w_k / L_k^alpha`` interpolates in log
    space. v9's start latch reads the mixed normalisation of the previous decision: a run
    left off (``3/4 s``) stays off, one switched on (``1/2 + s/4``) stays on."""
    signals, actions, v8, _ = _gmc_latch_problem()
    fields = {f.name: getattr(signals, f.name) for f in dataclasses.fields(Signals)}
    name = V8_TRANSFORM + f"_sqrtstart_fourthgeo{round(100 * s)}"
    off, on = 0.75 * s, 0.5 + 0.25 * s
    for column, previous_alpha, decision, v9_on in [
        (LATCH_AT, 0.0, 1, True),
        (0.0, 0.0, 1, False),
        (1.0, off, 4, False),
        (0.0, on, 4, True),
    ]:
        state = _latch_state(fields, v8, previous_alpha, decision)
        acted = _with_column(actions, column)
        v9 = actions_to_decision(acted, state, V8_TRANSFORM + "_sqrtstart")
        got = actions_to_decision(acted, state, name)
        assert torch.equal(v9.normalisation, torch.full((2,), 0.5 if v9_on else 0.0))
        _assert_moved_to_fourth_root_loss(got, v9, torch.full((2,), s))
    assert action_transform(name).constants()["fourth_root_geometric_mix"] == s
    with pytest.raises(ValueError, match="for v9's latch"):  # off would read as on
        FourthRootMixTransform(action_transform(V8_TRANSFORM + "_sqrtstart"), 2 / 3)
    dropped = Decision(torch.tensor([[0.0, 2.0, 1.0, 1.0]]), torch.full((1, 4), 0.25))
    uniform = Decision(torch.ones(1, 4), torch.full((1, 4), 0.25))
    moved = geometric_mix(dropped, uniform, s, torch.ones(1, 4, dtype=torch.bool))
    assert moved.weights[0, 0] == 0 and moved.weights.mean() == pytest.approx(1.0)


def _latch_state(
    fields: dict, v8: Decision, previous_alpha: float, decision: int, scale: float = 1.0
) -> DecisionState:
    """The state of both runs at their ``decision``-th decision (1 at a run's first) after
    v8's decision trained at the loss normalisation ``previous_alpha`` and objective
    ``scale`` (what a latch reads)."""
    previous = Decision(
        v8.weights, v8.sampling, torch.full((2,), previous_alpha), torch.full((2,), scale)
    )
    return DecisionState(**{**fields, "decisions": torch.full((2,), decision)}, previous=previous)


def _assert_moved_to_fourth_root_loss(got: Decision, v9: Decision, s: torch.Tensor) -> None:
    """Run n of ``got`` is v9's decision moved ``s[n]`` of the way to ``fourth-root-loss``
    in log space: weights and sampling v9's to the power ``1 - s[n]`` up to one factor per
    run (a zero stays zero, the sums are kept), normalisation ``s[n]`` of the way to 3/4."""
    torch.testing.assert_close(
        got.normalisation, torch.lerp(v9.normalisation, torch.full_like(s, 0.75), s)
    )
    for key in ("weights", "sampling"):
        ours, theirs = getattr(got, key), getattr(v9, key)
        assert torch.equal(ours == 0, theirs == 0)
        ratio = (ours.log() - (1 - s[:, None]) * theirs.log()).where(theirs > 0, 0.0)
        spread = ratio.max(1).values - ratio.where(theirs > 0, math.inf).min(1).values
        torch.testing.assert_close(spread, torch.zeros_like(s), atol=1e-5, rtol=0)
        torch.testing.assert_close(ours.sum(1), theirs.sum(1))


def _assert_scheduled_mix(name: str, strengths: dict[float, float], on_alpha: float) -> None:
    """Under transform ``name`` each of two runs, at each fraction of the budget used in
    ``strengths`` (two runs at a time, at different points), decides as v9 moved that
    strength of the way to ``fourth-root-loss``; v9's latch reads "off" at a first
    decision and "on" after a decision trained at ``on_alpha``, as under v9 itself."""
    signals, actions, v8, _ = _gmc_latch_problem()
    fields = {f.name: getattr(signals, f.name) for f in dataclasses.fields(Signals)}
    points = list(strengths)
    for progress in zip(points, reversed(points), strict=True):
        fields["progress"] = torch.tensor(progress)
        for column, previous_alpha, decision in [(LATCH_AT, 0.0, 1), (1.0, on_alpha, 4)]:
            state = _latch_state(fields, v8, previous_alpha, decision)
            acted = _with_column(actions, column)
            v9 = actions_to_decision(acted, state, V8_TRANSFORM + "_sqrtstart")
            got = actions_to_decision(acted, state, name)
            s = torch.tensor([strengths[p] for p in progress])
            _assert_moved_to_fourth_root_loss(got, v9, s)
            assert torch.equal(v9.normalisation >= 0.5, got.normalisation >= 0.5)


@pytest.mark.parametrize(("start", "end"), FOURTH_ROOT_FADES)
def test_the_fading_mix_moves_v9_by_a_strength_that_falls_with_the_budget_used(start, end):
    """The defining property of ``..._fourthgeo33to15`` (on v9, RESULTS §41): at each
    decision the mix of ``..._fourthgeo*`` with strength ``start`` at a run's start, ``end``
    at its end and linear in the fraction of the budget used between, run by run; v9's
    latch still reads "off" and "on" correctly (both strengths are below 2/3)."""
    name = V8_TRANSFORM + f"_sqrtstart_fourthgeo{round(100 * start)}to{round(100 * end)}"
    strengths = {0.0: start, 0.25: start + (end - start) / 4, 0.5: (start + end) / 2, 1.0: end}
    _assert_scheduled_mix(name, strengths, on_alpha=0.75 * start)
    constants = action_transform(name).constants()
    assert (constants["fourth_root_geometric_mix"], constants["fourth_root_geometric_mix_end"]) == (
        start,
        end,
    )
    with pytest.raises(ValueError, match="for v9's latch"):
        FourthRootMixTransform(action_transform(V8_TRANSFORM + "_sqrtstart"), start, 0.7)


@pytest.mark.parametrize(("start", "peak", "end", "held"), FOURTH_ROOT_HUMPS)
def test_the_hump_moves_v9_by_a_strength_that_peaks_over_a_span_of_the_budget(
    start, peak, end, held
):
    """The defining property of ``..._fourthgeo33up50to15`` (on v9, RESULTS §43f) and
    ``..._fourthgeo33up50at30-70to15`` (§45): at each decision the mix of
    ``..._fourthgeo*`` with strength ``start`` at a run's start, ``peak`` from ``held[0]``
    to ``held[1]`` of its budget (half the budget for the first) and ``end`` at its end,
    linear in the fraction of the budget used between, run by run; v9's latch still reads
    "off" and "on" correctly."""
    start_pct, peak_pct, end_pct = (round(100 * value) for value in (start, peak, end))
    span = "" if held == (0.5, 0.5) else f"at{round(100 * held[0])}-{round(100 * held[1])}"
    name = V8_TRANSFORM + f"_sqrtstart_fourthgeo{start_pct}up{peak_pct}{span}to{end_pct}"
    rise, fall = held
    strengths = {
        0.0: start,
        rise / 2: (start + peak) / 2,
        0.9 * rise: start + 0.9 * (peak - start),
        rise: peak,
        (rise + fall) / 2: peak,
        fall + 0.1 * (1 - fall): peak + 0.1 * (end - peak),
        (fall + 1) / 2: (peak + end) / 2,
        1.0: end,
        1.5: end,  # past the budget: held at its end
    }
    _assert_scheduled_mix(name, strengths, on_alpha=0.75 * peak)
    constants = action_transform(name).constants()
    assert constants["fourth_root_geometric_mix_peak"] == peak
    assert (constants["fourth_root_geometric_mix"], constants["fourth_root_geometric_mix_end"]) == (
        start,
        end,
    )
    spread = (
        constants.get("fourth_root_geometric_mix_held_from", 0.5),
        constants.get("fourth_root_geometric_mix_held_until", 0.5),
    )
    assert spread == held
    v9_transform = action_transform(V8_TRANSFORM + "_sqrtstart")
    with pytest.raises(ValueError, match="for v9's latch"):
        FourthRootMixTransform(v9_transform, start, end, 0.7)
    with pytest.raises(ValueError, match="needs an end"):
        FourthRootMixTransform(v9_transform, start, peak=peak)
    with pytest.raises(ValueError, match="give peak too"):
        FourthRootMixTransform(v9_transform, start, end, held=held if span else (0.3, 0.7))
    with pytest.raises(ValueError, match="must be a span"):
        FourthRootMixTransform(v9_transform, start, end, peak, held=(0.7, 0.3))


def test_a_per_run_strength_mixes_each_run_as_its_own_number_would():
    """``geometric_mix`` with an (N,) strength: run n is mixed exactly as with the number
    ``strength[n]`` (weights, sampling, normalisation and scale), so a strength that
    varies by run or over a run (RESULTS §41) needs no second definition of the mix."""
    mask = torch.tensor([[True, True, True, False]] * 3)
    ours = Decision(
        torch.tensor([[0.5, 2.0, 0.5, 0.0], [1.0, 0.0, 2.0, 0.0], [3.0, 0.5, 0.5, 0.0]]),
        torch.tensor([[0.2, 0.5, 0.3, 0.0]] * 3),
        torch.tensor([0.0, 0.5, 0.2]),
        torch.tensor([1.0, 2.0, 0.5]),
    )
    toward = Decision(
        torch.tensor([[1.0, 1.0, 1.0, 0.0]] * 3),
        torch.tensor([[1 / 3, 1 / 3, 1 / 3, 0.0]] * 3),
        torch.full((3,), 0.75),
        torch.ones(3),
    )
    strengths = [0.0, 0.15, 0.5]
    together = geometric_mix(ours, toward, torch.tensor(strengths), mask)
    for n, strength in enumerate(strengths):
        alone = geometric_mix(ours, toward, strength, mask)
        for field in ("weights", "sampling", "normalisation", "scale"):
            torch.testing.assert_close(getattr(together, field)[n], getattr(alone, field)[n])
    torch.testing.assert_close(together.weights[0], ours.weights[0] / ours.weights[0, :3].mean())


def test_the_continuous_latch_holds_the_objectives_value_where_it_closes_mid_run():
    """The defining property of ``..._gmccont`` (on v8): it decides as ``..._gmclatch``,
    and where the latch closes after the first decision its ``scale`` makes the new
    objective's value ``scale * sum_k w_k`` (each normalised loss counts 1) equal to the
    previous one's, ``sum_k w_prev,k L_k``; once on it carries the previous scale; at a
    run's first decision, off, or beside a regression auxiliary it is 1."""
    signals, actions, v8, full = _gmc_latch_problem()
    fields = {f.name: getattr(signals, f.name) for f in dataclasses.fields(Signals)}

    def decide(name: str, column: float, alpha: float, scale: float, decision: int) -> Decision:
        state = _latch_state(fields, v8, alpha, decision, scale)
        return actions_to_decision(_with_column(actions, column), state, V8_TRANSFORM + name)

    closing = decide("_gmccont", 1.0, 0.0, 1.0, 3)
    latched = decide("_gmclatch", 1.0, 0.0, 1.0, 3)
    for key in ("weights", "sampling", "normalisation"):
        assert torch.equal(getattr(closing, key), getattr(latched, key))
    assert torch.equal(closing.weights[0], full.weights[0])  # gmc-fallback at strength 1
    before = (v8.weights[0] * signals.train_loss[0] * signals.mask[0]).sum()
    torch.testing.assert_close(closing.scale[0] * closing.weights[0].sum(), before)
    assert closing.scale[0] != 1.0 and closing.scale[1] == 1.0  # run 1 cannot act
    assert decide("_gmccont", 1.0, 1.0, 7.0, 3).scale.tolist() == [7.0, 1.0]  # carried
    assert decide("_gmccont", 1.0, 0.0, 1.0, 1).scale.tolist() == [1.0, 1.0]  # at the start
    assert decide("_gmccont", 0.2, 0.0, 1.0, 3).scale.tolist() == [1.0, 1.0]  # off
    assert latched.scale.tolist() == [1.0, 1.0]
    fields["train_loss"] = signals.train_loss.clone()
    fields["train_loss"][0, 0] = float("inf")  # a diverged run: no scale from its losses
    assert decide("_gmccont", 1.0, 0.0, 1.0, 3).scale.tolist() == [1.0, 1.0]
    assert action_transform(V8_TRANSFORM + "_gmccont").constants()["fallback_latch_continuous"]
