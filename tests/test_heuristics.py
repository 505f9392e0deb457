"""Heuristic schedules: each controller's defining property, tested in isolation on
hand-made signals and losses, plus every registered controller through ``run_controller``."""

from __future__ import annotations

import math

import helpers
import pytest
import torch

from curriculum_rl.controllers import (
    AGGREGATORS,
    TSCL,
    Aggregated,
    Annealed,
    DynamicWeightAverage,
    EasyToHard,
    Exp3S,
    FastAdaptiveMultitask,
    GeometricMeanLoss,
    GradNorm,
    HardFirst,
    ImpartialLossWeighting,
    Proportional,
    RandomLossWeighting,
    RoundRobin,
    RunContext,
    StaticGrid,
    StaticWeights,
    Temperature,
    UncertaintyWeighting,
    Uniform,
    controller_available,
    controller_names,
    make_controller,
    tune_static_weights,
)
from curriculum_rl.controllers.hooks import EPS, run_generator
from curriculum_rl.controllers.inverse_error import ErrorPower
from curriculum_rl.controllers.static import initial_val_losses
from curriculum_rl.runner import run_controller
from curriculum_rl.suites.synthetic import SyntheticSetting, SyntheticSuite
from curriculum_rl.trainer import BatchedMultitaskTrainer, StepContext, TrainerConfig
from curriculum_rl.trainer.signals import Signals

# Two runs: run 0 has 3 of 4 task slots, run 1 has 2 (the rest is padding).
MASK = torch.tensor([[True, True, True, False], [True, True, False, False]])
SIZES = torch.tensor([[1000.0, 100.0, 10.0, 0.0], [50.0, 200.0, 0.0, 0.0]])
TINY = TrainerConfig(batch_size=8, proj_dim=4, val_probe=4, device="cpu")


def make_context(mask=MASK, budget=100, interval=10, seeds=None) -> RunContext:
    seeds = list(range(mask.shape[0])) if seeds is None else seeds
    return RunContext(
        mask.clone(), SIZES[: mask.shape[0], : mask.shape[1]], budget, interval, seeds
    )


def make_signals(mask=MASK, **values) -> Signals:
    """Signals with neutral defaults (losses 1, no progress); ``values`` override fields."""
    n, k = mask.shape
    return helpers.make_signals(mask, SIZES[:n, :k], **values)


class _QuadraticNet:
    """A stand-in net whose last shared layer weight W feeds L_k = s_k |W|^2 f_k."""

    def __init__(self, runs: int) -> None:
        self.weight = torch.nn.Parameter(torch.ones(runs, 3, 2))

    def losses(self, scale: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        return scale * factor * (self.weight**2).flatten(1).sum(1, keepdim=True)


def step_context(mask=MASK, net=None, active=None) -> StepContext:
    """A StepContext for the loss-weighting hooks (all runs active unless told)."""
    net = net or _QuadraticNet(mask.shape[0])
    active = torch.ones(mask.shape[0], dtype=torch.bool) if active is None else active
    return StepContext([], [], mask, active, net.weight)


def hook_weights(controller, losses: torch.Tensor, mask=MASK, active=None) -> torch.Tensor:
    """One hook step on leaf losses; returns d objective / d L_k, the per-task weights."""
    leaf = losses.clone().requires_grad_(True)
    controller.hook.backward(leaf * mask, mask.float(), step_context(mask, active=active))
    return leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)


def assert_valid(decision, mask=MASK) -> None:
    k = mask.sum(1).float()
    assert torch.isfinite(decision.weights).all() and torch.isfinite(decision.sampling).all()
    assert (decision.weights[~mask] == 0).all() and (decision.sampling[~mask] == 0).all()
    assert (decision.weights >= 0).all() and (decision.sampling >= 0).all()
    assert torch.allclose(decision.weights.sum(1) / k, torch.ones_like(k), atol=1e-5)
    assert torch.allclose(decision.sampling.sum(1), torch.ones_like(k), atol=1e-5)


# ------------------------------------------------------------------ every decision
DECIDERS = [
    Uniform, Proportional, Temperature, Annealed, RoundRobin, EasyToHard, HardFirst, Exp3S,
    TSCL, DynamicWeightAverage, UncertaintyWeighting, FastAdaptiveMultitask,
    RandomLossWeighting, ImpartialLossWeighting, GeometricMeanLoss, GradNorm,
]  # fmt: skip


@pytest.mark.parametrize("cls", DECIDERS, ids=lambda c: c.name)
def test_decisions_are_valid_and_padded_tasks_get_zero(cls):
    controller = cls()
    controller.reset(make_context())
    gen = torch.Generator().manual_seed(0)
    log_val = torch.zeros(2, 4)
    for d in range(1, 8):
        log_val = log_val - 0.3 * torch.rand(2, 4, generator=gen)
        val = log_val.exp()
        signals = make_signals(
            train_loss=val * 1.1, val_loss=val, log_val_ratio=log_val,
            lp_slope=torch.randn(2, 4, generator=gen), progress=torch.full((2,), d / 8),
            decisions=torch.full((2,), d),
        )  # fmt: skip
        assert_valid(controller.decide(signals))
        if controller.hook is not None:
            weights = hook_weights(controller, val)
            assert (weights[~MASK] == 0).all() and torch.isfinite(weights).all()


# ------------------------------------------------------------------------ sampling
def test_temperature_alpha_zero_is_uniform_and_one_is_proportional():
    signals = make_signals()
    uniform = Temperature(alpha=0.0).decide(signals).sampling
    assert torch.allclose(uniform, MASK.float() / MASK.sum(1, keepdim=True))
    proportional = Temperature(alpha=1.0).decide(signals).sampling
    assert torch.allclose(proportional, SIZES / SIZES.sum(1, keepdim=True))
    assert torch.allclose(Proportional().decide(signals).sampling, proportional)
    xlmr = Temperature().decide(signals).sampling  # alpha = 0.3
    expected = SIZES.pow(0.3) * MASK
    assert torch.allclose(xlmr, expected / expected.sum(1, keepdim=True))


def test_annealed_alpha_follows_stickland_murray_schedule():
    controller = Annealed()
    controller.reset(make_context(budget=100, interval=10))  # E = 10 decisions
    for e in range(1, 11):
        alpha = 1 - 0.8 * (e - 1) / 9
        assert controller.alpha(torch.tensor([e])).item() == pytest.approx(alpha)
        sampling = controller.decide(make_signals(decisions=torch.full((2,), e))).sampling
        expected = SIZES.pow(alpha) * MASK
        assert torch.allclose(sampling, expected / expected.sum(1, keepdim=True), atol=1e-6)
    assert controller.alpha(torch.tensor([1, 10])).tolist() == pytest.approx([1.0, 0.2])


def test_round_robin_cycles_through_valid_tasks():
    controller = RoundRobin()
    chosen = []
    for d in range(1, 7):
        sampling = controller.decide(make_signals(decisions=torch.full((2,), d))).sampling
        assert ((sampling == 0) | (sampling == 1)).all()  # one task per interval
        chosen.append(sampling.argmax(1).tolist())
    assert [c[0] for c in chosen] == [0, 1, 2, 0, 1, 2]
    assert [c[1] for c in chosen] == [0, 1, 0, 1, 0, 1]


def test_pacing_admits_easiest_or_hardest_by_loss_ratio():
    mask = torch.ones(1, 4, dtype=torch.bool)
    ratio = torch.tensor([[-0.1, -2.0, 0.3, -0.5]])  # task 1 improved most: easiest
    for progress, count in ((0.0, 1), (0.25, 3), (0.5, 4), (0.9, 4)):
        # f(t) = 0.25 + 0.75 t / 0.5 -> admitted = ceil(4 f): 1, 3 (2.5 -> 3), 4, 4
        signals = make_signals(mask, log_val_ratio=ratio, progress=torch.tensor([progress]))
        easy = EasyToHard().decide(signals).sampling[0]
        hard = HardFirst().decide(signals).sampling[0]
        assert int((easy > 0).sum()) == count and int((hard > 0).sum()) == count
        easy_order, hard_order = [1, 3, 0, 2], [2, 0, 3, 1]
        assert set(torch.nonzero(easy).flatten().tolist()) == set(easy_order[:count])
        assert set(torch.nonzero(hard).flatten().tolist()) == set(hard_order[:count])
        assert torch.allclose(easy[easy > 0], torch.full((count,), 1 / count))


# ------------------------------------------------------------------------ weighting
def test_dwa_weights_follow_loss_ratio_formula():
    controller = DynamicWeightAverage(temperature=2.0)
    controller.reset(make_context())
    assert_valid(controller.decide(make_signals()))  # before any training: uniform
    first = torch.tensor([[2.0, 4.0, 1.0, 0.0], [3.0, 1.0, 0.0, 0.0]])
    second = torch.tensor([[1.0, 3.0, 1.5, 0.0], [3.0, 0.2, 0.0, 0.0]])
    for losses in (first, second):
        assert torch.allclose(hook_weights(controller, losses), MASK.float())  # uniform so far
        hook_weights(controller, losses)  # two steps per interval, same losses
        decision = controller.decide(make_signals())
    for n in range(2):
        k = int(MASK[n].sum())
        rates = second[n, :k] / first[n, :k]
        expected = k * torch.softmax(rates / 2.0, 0)
        assert torch.allclose(decision.weights[n, :k], expected, atol=1e-6)
        assert torch.allclose(hook_weights(controller, second)[n, :k], expected, atol=1e-6)


def test_geometric_mean_gradient_is_gradient_of_mean_log_loss():
    controller = GeometricMeanLoss()
    controller.reset(make_context())
    losses = torch.tensor([[0.5, 2.0, 8.0, 0.0], [3.0, 0.1, 0.0, 0.0]])
    weights = hook_weights(controller, losses)
    k = MASK.sum(1, keepdim=True).float()
    expected = torch.where(MASK, 1 / (k * losses.clamp_min(1e-12)), torch.zeros(()))
    assert torch.allclose(weights, expected)
    decision = controller.decide(make_signals(train_loss=losses + ~MASK))
    assert torch.allclose(decision.weights, expected * k / (expected.sum(1, keepdim=True)))


class _SumOfRoots:
    """A step hook minimising ``sum_k L_k^(1 - alpha) / (1 - alpha)`` by autograd
    (gradient ``sum_k grad L_k / L_k^alpha``), for checking a root loss against its
    definition."""

    def __init__(self, alpha: float) -> None:
        self.power = 1 - alpha

    def backward(self, task_losses, weights, context) -> None:
        roots = task_losses.clamp_min(EPS) ** self.power / self.power
        (roots * context.mask).sum().backward()


@pytest.mark.parametrize("name, alpha", helpers.ROOT_LOSSES.items())
def test_a_root_loss_steps_along_the_gradient_of_the_sum_of_root_losses(name, alpha):
    """The defining property: ``sqrt-loss``'s decision (uniform weights and sampling, loss
    normalisation 1/2) makes the trainer step along the gradient of ``sum_k sqrt(L_k)``,
    ``fourth-root-loss``'s (3/4) along that of ``sum_k L_k^(1/4)``, checked under SGD
    against the objective's autograd gradient on tasks whose output scales differ
    30-fold; the weighted sum (uniform) and the mean log loss differ."""
    setting = SyntheticSetting("spread", num_tasks=(3, 3), scale_spread=(30.0, 30.0))
    suite = SyntheticSuite(name="spread", settings=(setting,), n_train=128, hidden=(16,))
    instance = suite.sample(0)
    decided, by_roots, by_logs = (
        BatchedMultitaskTrainer([instance], [4], helpers.SGD) for _ in range(3)
    )
    decision = make_controller(name).decide(make_signals(mask=decided.mask))
    assert (decision.normalisation == alpha).all()
    torch.testing.assert_close(decision.weights, torch.ones(1, 3))
    torch.testing.assert_close(decision.sampling, torch.full((1, 3), 1 / 3))
    decided.set_schedule(decision.weights, decision.sampling, decision.normalisation)
    by_roots.set_schedule(decision.weights, decision.sampling)
    by_logs.set_schedule(decision.weights, decision.sampling, torch.ones(1))
    decided.train(3)
    by_roots.train(3, _SumOfRoots(alpha))
    by_logs.train(3)
    torch.testing.assert_close(decided.flat_params, by_roots.flat_params, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(by_logs.flat_params, by_roots.flat_params, rtol=1e-3, atol=1e-4)


def test_uncertainty_log_variances_move_to_log_loss():
    controller = UncertaintyWeighting(lr=0.05)
    controller.reset(make_context())
    losses = torch.tensor([[0.5, 2.0, 8.0, 0.0], [3.0, 0.1, 0.0, 0.0]])
    assert torch.allclose(hook_weights(controller, losses), 0.5 * MASK.float(), atol=0.05)
    for _ in range(400):
        hook_weights(controller, losses)
    s = controller.log_variances
    assert torch.allclose(s[MASK], losses[MASK].log(), atol=0.05)
    assert (s[~MASK] == 0).all()
    # The optimum weights each loss by 1/(2 L): the scaled losses are all 1/2.
    assert torch.allclose(
        hook_weights(controller, losses)[MASK] * losses[MASK], torch.tensor(0.5), atol=0.03
    )


def test_imtl_l_makes_scaled_losses_equal_to_one():
    controller = ImpartialLossWeighting(lr=0.05)
    controller.reset(make_context())
    losses = torch.tensor([[0.5, 2.0, 8.0, 0.0], [3.0, 0.1, 0.0, 0.0]])
    for _ in range(400):
        hook_weights(controller, losses)
    scaled = controller.log_scales.exp() * losses
    assert torch.allclose(scaled[MASK], torch.ones(int(MASK.sum())), atol=0.05)
    assert (controller.log_scales[~MASK] == 0).all()


def test_famo_update_is_convex_in_log_gradients_and_favours_lagging_task():
    mask = torch.ones(1, 2, dtype=torch.bool)
    controller = FastAdaptiveMultitask()
    controller.reset(make_context(mask))
    # Uniform z at the start: coefficients c z_k / L_k sum to 1 and are ∝ 1/L_k.
    weights = hook_weights(controller, torch.tensor([[1.0, 4.0]]), mask)
    assert torch.allclose(weights, torch.tensor([[0.8, 0.2]]), atol=1e-6)
    # Task 0's loss stays put, task 1's falls 10% per step: FAMO shifts z to task 0.
    for t in range(30):
        hook_weights(controller, torch.tensor([[1.0, 0.9**t]]), mask)
    z = controller.decide(make_signals(mask, train_loss=torch.ones(1, 2))).weights
    assert z[0, 0] > 1.2 * z[0, 1]


def test_random_weighting_is_seeded_softmax_of_normals():
    def weights_sequence(seeds, mask=MASK, steps=3):
        controller = RandomLossWeighting()
        controller.reset(make_context(mask, seeds=seeds))
        return [hook_weights(controller, torch.ones(mask.shape), mask) for _ in range(steps)]

    first = weights_sequence([5, 6])
    for step, weights in enumerate(first):
        assert (weights[~MASK] == 0).all()
        for n, seed in enumerate([5, 6]):
            gen = run_generator(seed, RandomLossWeighting.salt)
            for _ in range(step + 1):
                z = torch.randn(int(MASK[n].sum()), generator=gen)
            expected = len(z) * torch.softmax(z, 0)
            assert torch.allclose(weights[n, MASK[n]], expected)
    again = weights_sequence([5, 6])
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    other = weights_sequence([7, 6])
    assert not torch.equal(other[0][0], first[0][0]) and torch.equal(other[0][1], first[0][1])


def _run_gradnorm(losses_at, steps=400):
    """GradNorm weights after ``steps`` hook calls on losses ``losses_at(t, net)``."""
    mask = torch.ones(1, 2, dtype=torch.bool)
    controller = GradNorm(alpha=1.5, lr=0.025)
    controller.reset(make_context(mask))
    net = _QuadraticNet(1)
    for t in range(steps):
        controller.hook.backward(losses_at(t, net), mask.float(), step_context(mask, net))
    return controller.task_weights[0]


def test_gradnorm_equalises_gradient_norms_at_equal_training_rates():
    # ||grad_W L_k|| ∝ s_k and L_k / L_k(0) is the same: GradNorm drives w_k s_k equal.
    scale = torch.tensor([[1.0, 4.0]])
    w = _run_gradnorm(lambda t, net: net.losses(scale, torch.ones(1, 2)))
    assert w.sum().item() == pytest.approx(2.0, abs=1e-5)
    assert w[0] / w[1] == pytest.approx(4.0, rel=0.15)


def test_gradnorm_upweights_the_task_that_trains_slower():
    # Equal gradient norms; a constant offset makes task 1's loss fall to 1/4 of its start
    # while task 0's stays: r = (1.6, 0.4). The targets Gbar r^alpha sum to more than
    # sum_k G_k, so not all can be met under the mean-1 constraint: the faster task's
    # weight settles on its target w_1 = 0.4^1.5 and the slower task takes the rest.
    def losses_at(t, net):
        offset = torch.tensor([[3.0, 3.0 if t == 0 else 0.0]]) * 6
        return net.losses(torch.ones(1, 2), torch.ones(1, 2)) + offset

    w = _run_gradnorm(losses_at, steps=600)
    assert w[1].item() == pytest.approx(0.4**1.5, rel=0.15)
    assert w[0].item() == pytest.approx(2 - 0.4**1.5, rel=0.05)


def test_loss_weighting_hooks_keep_runs_independent():
    for cls in (DynamicWeightAverage, GeometricMeanLoss, FastAdaptiveMultitask, RandomLossWeighting,
                UncertaintyWeighting, ImpartialLossWeighting):  # fmt: skip
        results = []
        for other in (1.0, 50.0):
            controller = cls()
            controller.reset(make_context())
            losses = torch.tensor([[0.5, 2.0, 8.0, 0.0], [other, 0.1, 0.0, 0.0]])
            for _ in range(3):
                weights = hook_weights(controller, losses)
            results.append(weights[0])
        assert torch.equal(results[0], results[1]), cls.name


def test_diverged_run_does_not_poison_hooks():
    losses = torch.tensor([[0.5, 2.0, 8.0, 0.0], [0.0, 0.0, 0.0, 0.0]])  # run 1 diverged
    diverged = torch.tensor([True, False])  # the trainer's StepContext.active
    for cls in DECIDERS:
        controller = cls()
        controller.reset(make_context())
        if controller.hook is None:
            continue
        for _ in range(3):
            weights = hook_weights(controller, losses, active=diverged)
        assert torch.isfinite(weights).all(), cls.name
        assert_valid(controller.decide(make_signals(train_loss=losses + 1)))
    for cls, state in (
        (UncertaintyWeighting, "log_variances"),
        (ImpartialLossWeighting, "log_scales"),
    ):
        controller = cls(lr=0.1)
        controller.reset(make_context())
        hook_weights(controller, losses, active=diverged)
        assert (getattr(controller, state)[1] == 0).all() and (
            getattr(controller, state)[0] != 0
        ).any()


LEARNED_STATE = {UncertaintyWeighting: "log_variances", ImpartialLossWeighting: "log_scales"}


def test_hooks_follow_the_trainers_active_runs_not_the_loss_values():
    """Run 1 is inactive but has non-zero losses: no hook learns from it or weights it.
    Run 1 is active with every loss exactly 0: it is weighted and learned from."""
    losses = torch.tensor([[0.5, 2.0, 8.0, 0.0], [3.0, 0.1, 0.0, 0.0]])
    zero_run = losses * torch.tensor([[1.0], [0.0]])
    only_run_0 = torch.tensor([True, False])
    for cls in (DynamicWeightAverage, RandomLossWeighting):
        for inputs, active in ((losses, only_run_0), (zero_run, None)):
            controller = cls()
            controller.reset(make_context())
            weights = hook_weights(controller, inputs, active=active)
            assert (weights[1, MASK[1]] > 0).all() == (active is None), cls.name
    for cls, state in LEARNED_STATE.items():
        for inputs, active in ((losses, only_run_0), (zero_run, None)):
            controller = cls()
            controller.reset(make_context())
            for _ in range(3):
                hook_weights(controller, inputs, active=active)
            moved = getattr(controller, state) != 0
            assert moved[0, MASK[0]].all() and not moved[~MASK].any(), cls.name
            assert moved[1, MASK[1]].all() == (active is None), (cls.name, active)
    gradnorm = GradNorm()
    gradnorm.reset(make_context())
    hook_weights(gradnorm, losses, active=only_run_0)
    assert gradnorm.hook.has_initial.tolist() == [True, False]
    hook_weights(gradnorm, zero_run)
    assert gradnorm.hook.has_initial.tolist() == [True, True]
    assert (gradnorm.hook.initial[1, MASK[1]] == EPS).all()  # its loss at start: 0


class _RecordingHook:
    """Passes the trainer's losses (times ``scale``) to ``inner`` and keeps each
    step's ``context.active``."""

    def __init__(self, inner, scale: float = 1.0) -> None:
        self.inner, self.scale, self.active = inner, scale, []

    def backward(self, task_losses, weights, context):
        self.active.append(context.active.tolist())
        self.inner.backward(task_losses * self.scale, weights, context)


def _train_beside_a_diverged_run(controller, scale: float = 1.0) -> _RecordingHook:
    """Three steps of a real trainer whose run 1 has diverged, through ``controller``'s
    hook (losses times ``scale``); every step must pass run 0 alone as active."""
    trainer = BatchedMultitaskTrainer(tiny_instances(), [0, 1], TINY)
    trainer.diverged[1] = True
    controller.reset(make_context(trainer.mask, seeds=[0, 1]))
    hook = _RecordingHook(controller.hook, scale)
    trainer.train(3, hook)
    assert hook.active == [[True, False]] * 3
    return hook


@pytest.mark.parametrize("cls", list(LEARNED_STATE), ids=lambda c: c.name)
def test_trainer_passes_its_active_runs_to_the_hook(cls):
    """In a real trainer, a diverged run's learned scales never move; an active run whose
    losses are all exactly 0 (scaled to 0 here) still learns its scales."""
    for scale in (1.0, 0.0):
        controller = cls()
        _train_beside_a_diverged_run(controller, scale)
        moved = getattr(controller, LEARNED_STATE[cls]) != 0
        assert moved[0].any() and not moved[1].any(), (cls.name, scale)


def test_gradnorm_measures_on_the_last_shared_weight_of_active_runs_only():
    controller = GradNorm()
    _train_beside_a_diverged_run(controller)
    weights = controller.task_weights
    assert controller.hook.has_initial.tolist() == [True, False]
    assert not torch.equal(weights[0], controller.context.mask[0].float())
    assert torch.equal(weights[1], controller.context.mask[1].float())


# -------------------------------------------------------------------------- bandits
def test_exp3s_keeps_every_probability_above_its_floor():
    # A huge rate and no share make softmax(w) one-hot: only the floor keeps the others.
    controller = Exp3S(epsilon=0.05, eta=100.0, share=0.0)
    controller.reset(make_context(budget=300, interval=10))
    log_val = torch.zeros(2, 4)
    for d in range(1, 30):
        log_val[:, 0] -= 1.0  # task 0 keeps making progress, the others none
        signals = make_signals(val_loss=log_val.exp(), decisions=torch.full((2,), d))
        sampling = controller.decide(signals).sampling
        floor = 0.05 / MASK.sum(1, keepdim=True)
        assert (sampling[MASK] >= (floor.expand_as(MASK)[MASK] - 1e-7)).all()
    assert (sampling.argmax(1) == 0).all()
    assert sampling[0, 1].item() == pytest.approx(0.05 / 3, rel=0.01)  # the floor binds


def test_exp3s_moves_sampling_towards_progressing_task():
    controller = Exp3S()
    controller.reset(make_context(budget=300, interval=10))
    log_val = torch.zeros(2, 4)
    for _ in range(30):
        log_val[:, 1] -= 0.2
        log_val[:, 0] -= 0.01
        sampling = controller.decide(make_signals(val_loss=log_val.exp())).sampling
    assert (sampling.argmax(1) == 1).all() and (sampling[:, 1] > 0.6).all()


def test_tscl_samples_largest_absolute_slope_with_exploration():
    slopes = torch.tensor([[-0.1, 0.3, -0.2, 9.0], [-0.5, 0.1, 0.0, 0.0]])  # slot 3 padded
    sampling = TSCL(epsilon=0.1).decide(make_signals(lp_slope=slopes)).sampling
    assert sampling[0].tolist() == pytest.approx([0.1 / 3, 0.9 + 0.1 / 3, 0.1 / 3, 0.0])
    assert sampling[1].tolist() == pytest.approx([0.95, 0.05, 0.0, 0.0])
    flat = TSCL().decide(make_signals()).sampling  # no information yet: uniform
    assert torch.allclose(flat, MASK.float() / MASK.sum(1, keepdim=True))


# ---------------------------------------------------------------------- aggregators
def tiny_instances(num_tasks=((3, 3), (2, 2)), seed=0):
    return [
        SyntheticSuite(
            settings=(SyntheticSetting(num_tasks=k, scale_spread=(1.0, 20.0)),),
            in_dim=4, n_train=32, n_val=8, n_test=8, hidden=(8,),
        ).sample(seed + i)
        for i, k in enumerate(num_tasks)
    ]  # fmt: skip


class _CheckedHook:
    """Runs the controller's hook, then checks each run's shared gradient against the
    aggregator applied to a Jacobian built run by run, independently of the hook."""

    def __init__(self, controller: Aggregated, spec_build):
        self.inner, self.build, self.checked = controller.hook, spec_build, 0

    def backward(self, task_losses, weights, context):
        mask, shared = context.mask, context.shared_params
        states = [g.get_state() for g in self.inner.generators]
        expected = []
        for n in range(mask.shape[0]):
            rows = []
            for k in torch.nonzero(mask[n]).flatten().tolist():
                grads = torch.autograd.grad(task_losses[n, k], shared, retain_graph=True)
                rows.append(torch.cat([g[n].flatten() for g in grads]))
            gen = torch.Generator().set_state(states[n])
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(torch.randint(2**62, (1,), generator=gen)))
                expected.append((self.build(len(rows))(torch.stack(rows)), torch.stack(rows)))
        self.inner.backward(task_losses, weights, context)
        for n, (direction, jacobian) in enumerate(expected):
            got = torch.cat([p.grad[n].flatten() for p in shared])
            assert torch.allclose(got, direction, atol=1e-5, rtol=1e-4)
            self.checked += 1
            if self.build is AGGREGATORS["mgda"].build:
                # MGDA's min-norm direction conflicts with no task gradient.
                assert (jacobian @ direction >= -1e-6).all()
        assert all(p.grad is not None for p in context.head_params)


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
def test_aggregator_hook_aggregates_each_runs_jacobian(name):
    spec = AGGREGATORS[name]
    if spec.missing():
        pytest.skip(f"{name} needs {spec.missing()}: pip install 'curriculum-rl[aggregators]'")
    controller = Aggregated(name)
    instances = tiny_instances()
    trainer = BatchedMultitaskTrainer(instances, [0, 1], TINY)
    controller.reset(make_context(trainer.mask, seeds=[0, 1]))
    hook = _CheckedHook(controller, spec.build)
    trainer.train(2, hook)
    assert hook.checked == 4


def test_optional_aggregator_without_extra_says_how_to_install():
    missing = [n for n, s in AGGREGATORS.items() if s.missing()]
    if not missing:
        pytest.skip("every optional aggregator is installed here")
    assert not controller_available(missing[0]) and missing[0] in controller_names()
    assert missing[0] not in controller_names(available_only=True)
    with pytest.raises(ImportError, match=r"curriculum-rl\[aggregators\]"):
        make_controller(missing[0])


# --------------------------------------------------------------------------- static
def test_static_weights_are_fixed_per_run_and_checked():
    controller = StaticWeights([[1.0, 2.0, 3.0], [3.0, 1.0]])
    controller.reset(make_context())
    for _ in range(2):
        decision = controller.decide(make_signals())
        assert_valid(decision)
        assert decision.weights[0, :3].tolist() == pytest.approx([0.5, 1.0, 1.5])
        assert decision.weights[1, :2].tolist() == pytest.approx([1.5, 0.5])
    with pytest.raises(ValueError, match="run 1 has 2 tasks but 3 weights"):
        StaticWeights([1.0, 2.0, 3.0]).reset(make_context())


def test_tune_static_weights_picks_the_best_candidate_on_validation():
    instance = tiny_instances(((2, 2),), seed=4)[0]
    seeds, budget, interval = [0], 20, 10
    grid = StaticGrid(gammas=(0.0, 1.0), factors=(0.25, 4.0), rounds=1)
    (best,) = tune_static_weights(
        [instance], seeds, budget, config=TINY, grid=grid, criterion="loss"
    )
    assert len(best) == 2 and sum(best) == pytest.approx(2.0)

    def val_j(weights):
        (record,) = run_controller(
            [instance], seeds, StaticWeights(weights), budget, interval, TINY
        )
        return record.j_curve[-1]

    # Recompute the stated grid: the pick must be a candidate, and no candidate better.
    start = initial_val_losses(instance, seeds, TINY)
    family = [(start.pow(-g) * 2 / start.pow(-g).sum()).tolist() for g in grid.gammas]
    base = family[min(range(2), key=lambda i: val_j(family[i]))]
    ups = [[base[0] * f, base[1]] for f in grid.factors]
    ups += [[base[0], base[1] * f] for f in grid.factors]
    candidates = family + [[2 * w / sum(u) for w in u] for u in ups]
    assert any(best == pytest.approx(c, rel=1e-5) for c in candidates)
    assert val_j(best) <= min(val_j(c) for c in candidates) + 1e-4


def _mixed_kind_instance(seed=0):
    """Three tasks, classification beside regression: validation loss and error disagree."""
    setting = SyntheticSetting(
        num_tasks=(3, 3), scale_spread=(1.0, 20.0), classification=(0.5, 0.7),
        classes=(2, 5), easy_tasks=(1, 1),
    )  # fmt: skip
    suite = SyntheticSuite(
        settings=(setting,), in_dim=4, n_train=32, n_val=8, n_test=8, hidden=(8,)
    )
    return suite.sample(seed)


def test_tune_static_weights_on_validation_error_picks_the_best_candidate_by_error():
    """The default criterion scores candidates by the mean log validation error of the
    target tasks (computed here from the trainer's measurement, not by the tuner's code),
    and on a suite with classification tasks it picks differently from the loss."""
    instance, seeds, budget = _mixed_kind_instance(), [0], 20
    grid = StaticGrid(gammas=(0.0, 1.0), factors=(0.25, 4.0), rounds=1)
    (best,) = tune_static_weights([instance], seeds, budget, config=TINY, grid=grid)
    (by_loss,) = tune_static_weights(
        [instance], seeds, budget, config=TINY, grid=grid, criterion="loss"
    )
    assert best != pytest.approx(by_loss, rel=1e-3)

    def val_error(weights):
        trainer = BatchedMultitaskTrainer([instance], seeds, TINY)
        trainer.set_schedule(torch.tensor([weights]), trainer.mask.float())
        trainer.train(budget)
        m = trainer.measure()
        return m.val_error[m.objective].log().mean().item()

    start = initial_val_losses(instance, seeds, TINY)
    family = [(start.pow(-g) * 3 / start.pow(-g).sum()).tolist() for g in grid.gammas]
    base = family[min(range(2), key=lambda i: val_error(family[i]))]
    moves = []
    for k in range(3):
        for factor in grid.factors:
            vector = [w * (factor if i == k else 1.0) for i, w in enumerate(base)]
            moves.append([3 * w / sum(vector) for w in vector])
    candidates = family + moves
    assert any(best == pytest.approx(c, rel=1e-5) for c in candidates)
    assert val_error(best) <= min(val_error(c) for c in candidates) + 1e-4
    with pytest.raises(ValueError, match="criterion must be one of"):
        tune_static_weights([instance], seeds, budget, config=TINY, criterion="accuracy")


def test_tune_static_weights_later_rounds_take_the_best_strictly_better_move():
    """Greedy coordinate search: round 2 starts from round 1's pick and moves to its best
    one-task re-weighting only if that is strictly better on validation."""
    instance = tiny_instances(((3, 3),), seed=1)[0]
    seeds, budget, interval = [0], 20, 10
    grid = StaticGrid(gammas=(0.0,), factors=(0.25, 4.0), rounds=1)
    (first,) = tune_static_weights(
        [instance], seeds, budget, config=TINY, grid=grid, criterion="loss"
    )
    second_grid = StaticGrid((0.0,), (0.25, 4.0), rounds=2)
    (second,) = tune_static_weights(
        [instance], seeds, budget, config=TINY, grid=second_grid, criterion="loss"
    )

    def val_j(weights):
        (record,) = run_controller(
            [instance], seeds, StaticWeights(weights), budget, interval, TINY
        )
        return record.j_curve[-1]

    moves = []
    for k in range(3):
        for factor in grid.factors:
            vector = [w * (factor if i == k else 1.0) for i, w in enumerate(first)]
            moves.append([3 * w / sum(vector) for w in vector])
    scores = [val_j(m) for m in moves]
    best = min(range(len(moves)), key=lambda i: scores[i])
    assert scores[best] < val_j(first) - 1e-4, "this instance must leave room for round 2"
    assert second == pytest.approx(moves[best], rel=1e-5)


# ---------------------------------------------------------------------- integration
# Solver-based aggregators take seconds per run: their end-to-end run is in the slow tier
# (their defining properties are tested above in the default run).
_SLOW_SOLVERS = {"cagrad", "nash-mtl"}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.slow) if n in _SLOW_SOLVERS else n
        for n in controller_names()
    ],
)
def test_every_registered_controller_runs_end_to_end(name):
    if not controller_available(name):
        pytest.skip(f"{name} needs an optional extra: pip install 'curriculum-rl[aggregators]'")
    instances = tiny_instances()
    records = run_controller(
        instances, [0, 1], make_controller(name), budget=100, interval=20, config=TINY
    )
    for record in records:
        assert not record.diverged
        assert all(math.isfinite(j) for j in record.j_curve)
        assert math.isfinite(record.final_test_j) and math.isfinite(record.best_test_j)
        k = len(record.tasks)
        for weights, sampling in zip(record.weights, record.sampling, strict=True):
            assert sum(weights) / k == pytest.approx(1.0, abs=1e-5)
            assert sum(sampling) == pytest.approx(1.0, abs=1e-5)
            assert min(weights) >= 0 and min(sampling) >= 0


def test_inverse_error_weights_equalise_weighted_errors():
    """The defining property: w_k E_k is the same for every valid task of a run."""
    errors = torch.tensor([[1e-2, 1.0, 1e3, 1.0], [0.5, 0.05, 1.0, 1.0]])
    signals = make_signals(val_error=errors)
    decision = make_controller("inverse-error").decide(signals)
    for run in range(2):
        k = int(MASK[run].sum())
        product = decision.weights[run, :k] * errors[run, :k]
        torch.testing.assert_close(product, product.mean().expand(k))
        assert decision.weights[run, :k].mean() == pytest.approx(1.0)
    assert (decision.weights[~MASK] == 0).all()
    torch.testing.assert_close(decision.sampling, MASK.float() / MASK.sum(1, keepdim=True))
    half = ErrorPower(0.5).decide(signals)  # the family: w_k ∝ E_k^-gamma
    ratio = half.weights[0, 0] / half.weights[0, 2]
    torch.testing.assert_close(ratio, (errors[0, 2] / errors[0, 0]) ** 0.5)


def test_initial_error_weights_are_the_inverse_start_errors_whatever_the_progress():
    """The defining property: w_k ∝ 1 / E0_k, the same at every decision of a run: two
    states with the same start errors and different current errors get the same weights."""
    start = torch.tensor([[100.0, 1.0, 0.01, 1.0], [2.0, 1.0, 1.0, 1.0]])
    decisions = [
        make_controller("initial-error").decide(
            make_signals(val_error=now, log_error_ratio=(now / start).log())
        )
        for now in (start * 0.5, start * torch.tensor([[0.9, 0.01, 0.3, 1.0]]))
    ]
    w = decisions[0].weights[0]
    torch.testing.assert_close(w[1] / w[0], torch.tensor(100.0))
    torch.testing.assert_close(w[2] / w[1], torch.tensor(100.0))
    torch.testing.assert_close(decisions[1].weights, decisions[0].weights)
    torch.testing.assert_close(decisions[0].weights[1, :2].mean(), torch.tensor(1.0))


def test_scale_normalised_weights_are_the_inverse_geometric_mean_of_start_and_now():
    """The defining property: w_k ∝ (E_k E0_k)^-1/2, so two tasks equally far along
    (same E / E0) get weights in the inverse ratio of their scales, and a task 50x
    further along than another of the same scale gets only √50 ≈ 7x its weight."""
    start = torch.tensor([[100.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    now = torch.tensor([[50.0, 0.5, 0.01, 1.0], [1.0, 1.0, 1.0, 1.0]])
    signals = make_signals(val_error=now, log_error_ratio=(now / start).log())
    decision = make_controller("scale-normalised").decide(signals)
    w = decision.weights[0]
    torch.testing.assert_close(w[0] / w[1], torch.tensor(0.01))
    torch.testing.assert_close(w[2] / w[1], torch.tensor(50**0.5))
    torch.testing.assert_close(decision.weights[1], MASK[1].float())
    torch.testing.assert_close(decision.sampling, MASK.float() / MASK.sum(1, keepdim=True))
