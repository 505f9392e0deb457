"""A decision: per-task loss weights and sampling probabilities for a batch of runs."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Decision:
    """Per-task loss weights (mean 1 over valid tasks) and sampling probabilities
    (sum 1 over valid tasks), both (N, K); padded tasks hold 0."""

    weights: torch.Tensor
    sampling: torch.Tensor


def uniform_decision(mask: torch.Tensor) -> Decision:
    """Weight 1 and probability 1/K for every valid task."""
    valid = mask.float()
    return Decision(valid.clone(), valid / valid.sum(1, keepdim=True).clamp_min(1))


def normalize_decision(
    weights: torch.Tensor, sampling: torch.Tensor, mask: torch.Tensor
) -> Decision:
    """Scale weights to mean 1 and sampling to sum 1 over each run's valid tasks."""
    sampling = sampling * mask.float()
    sampling = sampling / sampling.sum(1, keepdim=True).clamp_min(1e-12)
    return Decision(mean_one_weights(weights, mask), sampling)


def mean_one_weights(weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N, K) ``weights`` scaled to mean 1 over each run's valid tasks, 0 on padded ones."""
    valid = mask.float()
    weights = weights * valid
    k = valid.sum(1, keepdim=True).clamp_min(1)
    return weights * k / weights.sum(1, keepdim=True).clamp_min(1e-12)
