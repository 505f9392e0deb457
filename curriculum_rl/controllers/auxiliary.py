"""Reweighting auxiliary tasks: a gate from gradient similarity, and a cap on load.

Du, Czarnecki, Jayakumar, Farajtabar, Pascanu and Lakshminarayanan (2018), "Adapting
auxiliary losses using gradient similarity" (arXiv:1812.02224): an auxiliary loss helps
the main task only while its gradient points the same way, so its weight is
``max(0, cos(g_aux, g_main))``. With several target tasks, ``g_main`` here is the target
tasks' combined gradient under the base rule's weights, ``g_T = sum_t w_t g_t``; its
cosine with each auxiliary follows from the Gram matrix of per-task gradients on the last
shared layer that the trainer already measures over each interval
(:attr:`~curriculum_rl.trainer.signals.Signals.grad_norm`, ``grad_cos``), at no extra cost.

Target tasks keep the base rule's weights; each auxiliary's weight is its base weight
times that positive cosine (weights are then rescaled to mean 1, sampling is the base
rule's). Where no gradient was measured yet (the first decision), the base weights stand.
A suite without auxiliaries gets exactly the base rule. The learned policy's gated action
transforms (``error_power_gated``, ``error_power_gate``,
:mod:`curriculum_rl.controllers.actions`) apply the same gate to the decision their actions
mean.

Measured (benchmarks/RESULTS.md §18): the gate helps where auxiliaries pull against the
targets, and hurts badly where one small, noisy target makes every cosine small, so the
helpful auxiliaries are switched off too.

:func:`cap_auxiliaries` instead cuts only the auxiliaries whose weighted error outweighs
the targets' (raw-scale ones), leaving the rest of the decision as it was (§22b); with
``scale="start"`` it cuts those whose weight, relative to their starting scale, outweighs
the targets' (easy ones that a rule following the current error keeps raising, §26g).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import torch

from curriculum_rl.controllers.base import Controller, DecisionState, RunContext
from curriculum_rl.controllers.decision import Decision, normalize_decision, scale_weights
from curriculum_rl.trainer.objective import floored_log
from curriculum_rl.trainer.signals import Signals, runwise_matvec


def positive_part(cos: torch.Tensor) -> torch.Tensor:
    """Du et al.'s weighted gate: ``max(0, cos)``."""
    return cos.clamp_min(0)


def gate_auxiliaries(
    decision: Decision,
    signals: Signals,
    gate_of: Callable[[torch.Tensor], torch.Tensor] = positive_part,
) -> Decision:
    """``decision`` with each auxiliary's weight times ``gate_of(cos(g_aux, g_targets))``
    (by default ``max(0, cos)``), the targets' gradient weighted by the decision's own
    weights (module docstring); weights rescaled to mean 1, sampling unchanged."""
    cos = auxiliary_alignment(signals, decision.weights)
    gated = signals.mask & ~signals.objective & ~cos.isnan()
    gate = torch.where(gated, gate_of(cos.nan_to_num(0.0)), torch.ones_like(cos))
    return scale_weights(decision, signals.mask, gate)


CAP_SCALES = ("current", "start")


def check_cap_scale(scale: str) -> None:
    """``ValueError`` naming the valid values unless ``scale`` is one of ``CAP_SCALES``."""
    if scale not in CAP_SCALES:
        raise ValueError(f"scale must be 'current' or 'start', got {scale!r}")


def cap_auxiliaries(
    decision: Decision,
    signals: Signals,
    strength: torch.Tensor,
    headroom: float = 1.0,
    scale: str = "current",
) -> Decision:
    """``decision`` with each auxiliary's weighted error ``w_k E_k`` cut down towards
    ``headroom`` times the target tasks' level, the geometric mean of their ``w_t E_t``:
    an auxiliary above it is multiplied by ``(cap / (w_k E_k))^strength`` (``strength``
    (N,) in [0, 1]; 1 caps it, 0 leaves it), one at or below it keeps its weight. Targets
    keep their weights relative to each other; weights rescaled to mean 1, sampling
    unchanged.

    Why: an auxiliary only matters through what it does for the targets, and at raw
    scale its loss can outweigh theirs by orders of magnitude under a rule that divides
    out only part of each task's scale (benchmarks/RESULTS.md §21: a 10^-4-scale target
    beside auxiliaries 10^9 larger). The cap divides out the rest of such an auxiliary's
    scale and leaves auxiliaries that do not dominate (helpful ones at the targets'
    scale) alone. ``E`` is the validation error that scales the ``error_*`` rules.

    ``scale="start"`` measures the load by each task's error at the first decision
    instead, ``w_k E0_k``: the weight relative to the task's starting scale. Under a rule
    that follows the current error, an auxiliary that fits to near-zero error gains weight
    as it goes while ``w_k E_k`` stays level, so the first cap never binds; this one
    holds such an auxiliary to the targets' weight once its scale is divided out
    (benchmarks/RESULTS.md §26g: a noisy target starved beside near-zero auxiliaries)."""
    check_cap_scale(scale)
    mask, targets = signals.mask, (signals.mask & signals.objective).float()
    if scale == "current":
        log_load = floored_log(decision.weights * signals.val_error)
    else:
        log_load = floored_log(decision.weights) + signals.log_error_start.nan_to_num(0.0, 0.0, 0.0)
    level = (log_load * targets).sum(1) / targets.sum(1).clamp_min(1) + math.log(headroom)
    excess = (log_load - level[:, None]).clamp_min(0)
    capped = mask & ~signals.objective & (targets.sum(1, keepdim=True) > 0)
    cut = torch.exp(-strength[:, None] * excess)
    return scale_weights(decision, signals.mask, torch.where(capped, cut, torch.ones_like(cut)))


def regression_auxiliaries(signals: Signals) -> torch.Tensor:
    """(N, K) the valid auxiliary tasks that are regressions (not classification or
    tagging)."""
    return signals.mask & ~signals.objective & ~signals.classify


def no_regression_auxiliary(signals: Signals) -> torch.Tensor:
    """(N,) the runs without a regression auxiliary, where ``..._gmcfallback`` may act:
    beside one, ``geometric-mean``'s direction lost most on the training problems
    (benchmarks/RESULTS.md §34b)."""
    return ~regression_auxiliaries(signals).any(1)


def drop_auxiliaries(
    decision: Decision,
    signals: Signals,
    strength: torch.Tensor,
    floor: float,
    regression_only: bool = False,
) -> Decision:
    """``decision`` with every auxiliary's weight times ``1 - strength`` and its sampling
    probability moved that far towards ``floor / K`` (``strength`` (N,) in [0, 1]); targets
    keep their weights and sampling relative to each other, weights are rescaled to mean 1
    and sampling to sum 1. At strength 1 the auxiliaries get weight 0 and the floor share of
    each batch (still measured, no longer trained): the targets-only schedule that tuned
    static weights approach where auxiliaries hurt the targets (benchmarks/RESULTS.md §31).
    With ``regression_only`` only regression auxiliaries are dropped: classification and
    tagging auxiliaries carried the targets where dropping every auxiliary lost most (§31).
    A run without both a target and an auxiliary to drop keeps the base decision."""
    mask, objective = signals.mask, signals.objective
    auxiliary = regression_auxiliaries(signals) if regression_only else mask & ~objective
    both = (mask & objective).any(1) & auxiliary.any(1)
    s = torch.where(both, strength, torch.zeros_like(strength))[:, None]
    kept = torch.where(auxiliary, 1 - s, torch.ones_like(decision.weights))
    share = floor / mask.sum(1, keepdim=True).clamp_min(1).float()
    moved = torch.where(auxiliary, torch.lerp(decision.sampling, share, s), decision.sampling)
    rescaled = normalize_decision(decision.weights * kept, moved, mask)
    changed = s > 0  # the other runs keep the base decision bit for bit (no round-off)
    return replace(
        decision,
        weights=torch.where(changed, rescaled.weights, decision.weights),
        sampling=torch.where(changed, rescaled.sampling, decision.sampling),
    )


def auxiliary_alignment(signals: Signals, weights: torch.Tensor) -> torch.Tensor:
    """(N, K) cosine of each task's gradient with the target tasks' gradient weighted by
    ``weights``; NaN where either gradient is zero (not measured)."""
    norm = signals.grad_norm
    gram = signals.grad_cos * norm[:, :, None] * norm[:, None, :]
    targets = weights * (signals.objective & signals.mask).float()
    dot = runwise_matvec(gram, targets)
    target_norm = (targets * dot).sum(-1).clamp_min(0).sqrt()
    denominator = norm * target_norm[:, None]
    return torch.where(denominator > 0, dot / denominator.clamp_min(1e-30), float("nan"))


class GradientSimilarity(Controller):
    """A base rule with each auxiliary weighted by ``max(0, cos(g_aux, g_targets))``
    (module docstring); ``gate_of`` replaces that map of the cosine (the variants of
    benchmarks/gate_variants.py)."""

    def __init__(
        self,
        base: Controller,
        name: str,
        gate_of: Callable[[torch.Tensor], torch.Tensor] = positive_part,
    ) -> None:
        self.base = base
        self.name = name
        self.gate_of = gate_of

    def reset(self, context: RunContext) -> None:
        super().reset(context)
        self.base.reset(context)

    def decide(self, signals: DecisionState) -> Decision:
        return gate_auxiliaries(self.base.decide(signals), signals, self.gate_of)
