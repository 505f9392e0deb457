"""The action transform: policy outputs in [-1, 1] -> weights and sampling probabilities.

Per task the policy emits two numbers ``(a_w, a_s)`` in [-1, 1]. Over the valid tasks of a
run (K of them):

    weights  = K * softmax(WEIGHT_SCALE * a_w)                      (mean 1)
    sampling = (1 - SAMPLING_FLOOR) * softmax(SAMPLING_SCALE * a_s) + SAMPLING_FLOOR / K

An all-zero action is uniform weighting and sampling. ``WEIGHT_SCALE = 5`` lets two
weights differ by up to e^10 ~ 2e4, enough to equalise tasks whose losses differ by the
square of a 100x output scale; sampling ratios stay below e^4 ~ 55 and the floor keeps
every task above ``SAMPLING_FLOOR / K`` so none starves.
"""

from __future__ import annotations

import torch

from curriculum_rl.controllers.base import Decision

WEIGHT_SCALE = 5.0
SAMPLING_SCALE = 2.0
SAMPLING_FLOOR = 0.1


def _masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits.masked_fill(~mask, float("-inf")), dim=1).nan_to_num(0.0) * mask


def actions_to_decision(actions: torch.Tensor, mask: torch.Tensor) -> Decision:
    """Map actions (N, K, 2) in [-1, 1] to a :class:`Decision` (padded tasks get 0)."""
    actions = torch.as_tensor(actions, dtype=torch.float32, device=mask.device)
    if actions.dim() != 3 or actions.shape[:2] != mask.shape or actions.shape[2] != 2:
        raise ValueError(f"actions must have shape {(*mask.shape, 2)}, got {tuple(actions.shape)}")
    actions = actions.nan_to_num(0.0).clamp(-1, 1)
    k = mask.sum(1, keepdim=True).clamp_min(1).float()
    weights = k * _masked_softmax(WEIGHT_SCALE * actions[..., 0], mask)
    soft = _masked_softmax(SAMPLING_SCALE * actions[..., 1], mask)
    sampling = ((1 - SAMPLING_FLOOR) * soft + SAMPLING_FLOOR / k) * mask
    return Decision(weights, sampling)


def emphasis_divergence(decision: Decision, mask: torch.Tensor) -> torch.Tensor:
    """KL(uniform || q) per run, (N,): how far a decision's effective per-task emphasis is
    from uniform training. ``q_k`` is proportional to ``w_k p_k`` (a task's share of the
    weighted loss: its weight times its share of the batch) over the valid tasks. 0 for
    uniform weighting and sampling; it grows with the log of how much a task is starved
    (a task at 1/r of its uniform share adds log(r) / K)."""
    emphasis = decision.weights * decision.sampling * mask
    q = emphasis / emphasis.sum(1, keepdim=True).clamp_min(1e-12)
    k = mask.sum(1).clamp_min(1).float()
    log_q = torch.where(mask, q.clamp_min(1e-12).log(), torch.zeros_like(q))
    return -k.log() - log_q.sum(1) / k


def decision_to_actions(decision: Decision, mask: torch.Tensor) -> torch.Tensor:
    """The action that reproduces ``decision`` as closely as [-1, 1] allows (inverse
    transform; logits are centred over the valid tasks, then clipped)."""
    k = mask.sum(1, keepdim=True).clamp_min(1).float()

    def centred_log(x: torch.Tensor) -> torch.Tensor:
        logs = x.clamp_min(1e-12).log() * mask
        return (logs - logs.sum(1, keepdim=True) / k) * mask

    soft = ((decision.sampling - SAMPLING_FLOOR / k) / (1 - SAMPLING_FLOOR)).clamp_min(1e-6)
    a_w = centred_log(decision.weights) / WEIGHT_SCALE
    a_s = centred_log(soft) / SAMPLING_SCALE
    return torch.stack([a_w, a_s], dim=-1).clamp(-1, 1)
