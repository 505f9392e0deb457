"""Gradient-similarity gating of auxiliaries (Du et al. 2018) against its defining property:
an auxiliary's weight is its base weight times max(0, cos(g_aux, g_targets))."""

from __future__ import annotations

import helpers
import pytest
import torch

from curriculum_rl.controllers.auxiliary import GradientSimilarity, auxiliary_alignment
from curriculum_rl.controllers.base import RunContext, Uniform
from curriculum_rl.controllers.inverse_error import ErrorPower
from curriculum_rl.controllers.registry import make_controller
from curriculum_rl.runner import run_controller
from curriculum_rl.suites.synthetic import SyntheticSetting, SyntheticSuite
from curriculum_rl.trainer import TrainerConfig

MASK = torch.tensor([[True, True, True, True, False]])
TARGETS = torch.tensor([[True, True, False, False, False]])
# Targets 0 and 1 read orthogonal directions; auxiliary 2 half agrees with their sum,
# auxiliary 3 opposes it.
GRADIENTS = torch.tensor(
    [[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [2.0, 0.0, 2.0], [-1.0, -1.0, 0.0], [0.0, 0.0, 0.0]]]
)


def signals_from(gradients: torch.Tensor, objective=TARGETS, mask=MASK, **values):
    return helpers.with_gradients(
        helpers.make_signals(mask), gradients, objective=objective & mask, **values
    )


def decide(controller, signals):
    controller.reset(RunContext(MASK, torch.ones(1, 5), 100, 10, [0]))
    return controller.decide(signals)


def test_each_auxiliary_is_weighted_by_its_positive_cosine_with_the_targets():
    decision = decide(GradientSimilarity(Uniform(), "gs"), signals_from(GRADIENTS))
    w = decision.weights[0]
    # cos(g2, g0 + g1) = 2 / (sqrt(8) sqrt(2)) = 1/2; cos(g3, g0 + g1) = -1.
    assert w[2] / w[0] == pytest.approx(0.5)
    assert w[3] == 0 and w[4] == 0
    assert w[0] == pytest.approx(w[1].item())
    assert w[:4].sum() == pytest.approx(4.0)  # mean 1 over the valid tasks
    assert torch.equal(decision.sampling, Uniform().decide(signals_from(GRADIENTS)).sampling)


def test_the_target_gradient_uses_the_base_rules_weights():
    signals = signals_from(GRADIENTS)
    heavy_first = torch.tensor([[3.0, 1.0, 1.0, 1.0, 0.0]])
    cos = auxiliary_alignment(signals, heavy_first)[0]
    target = 3 * GRADIENTS[0, 0] + GRADIENTS[0, 1]
    expected = torch.nn.functional.cosine_similarity(GRADIENTS[0, 2], target, dim=0)
    assert cos[2].item() == pytest.approx(expected.item(), rel=1e-6)


def test_without_auxiliaries_or_gradients_the_base_rule_stands():
    base = ErrorPower(0.5, 0.5, "scale-normalised")
    errors = torch.tensor([[4.0, 1.0, 0.25, 9.0, 1.0]])
    all_targets = signals_from(GRADIENTS, objective=MASK, val_error=errors)
    gated = decide(GradientSimilarity(base, "sn-gs"), all_targets)
    torch.testing.assert_close(gated.weights, decide(base, all_targets).weights)
    unmeasured = signals_from(torch.zeros_like(GRADIENTS), val_error=errors)
    gated = decide(GradientSimilarity(base, "sn-gs"), unmeasured)
    torch.testing.assert_close(gated.weights, decide(base, unmeasured).weights)


def test_registered_names_build_the_two_members():
    signals = signals_from(GRADIENTS, val_error=torch.tensor([[4.0, 1.0, 0.25, 9.0, 1.0]]))
    for name, base in [
        ("gradient-similarity", Uniform()),
        ("scale-normalised-gs", ErrorPower(0.5, 0.5, "scale-normalised")),
    ]:
        expected = decide(GradientSimilarity(base, name), signals).weights
        torch.testing.assert_close(decide(make_controller(name), signals).weights, expected)


def test_a_run_never_weights_an_auxiliary_above_the_targets():
    """On uniform, targets share one weight and each auxiliary gets it times a cosine <= 1;
    before any gradient is measured (the first decision) the weights are uniform."""
    setting = SyntheticSetting(
        "aux", num_tasks=(5, 5), auxiliary=(3, 3), helpful=(0.34, 0.34),
        auxiliary_raw_scale=(30.0, 30.0),
    )  # fmt: skip
    suite = SyntheticSuite(name="aux", settings=(setting,), n_train=256, n_val=64, n_test=64)
    instance = suite.sample(0)
    config = TrainerConfig(batch_size=16, device="cpu")
    (record,) = run_controller(
        [instance], [0], make_controller("gradient-similarity"), 60, 10, config
    )
    weights = torch.tensor(record.weights)
    targets = torch.tensor(record.targets)
    torch.testing.assert_close(weights[0], torch.ones(5))
    target_weights = weights[1:, targets]
    assert torch.allclose(target_weights, target_weights[:, :1].expand_as(target_weights))
    assert (weights[1:, ~targets] <= target_weights[:, :1] + 1e-6).all()
    assert (weights[1:, ~targets] < target_weights[:, :1] - 1e-3).any()
