"""Shared test helpers: signals made by the real tracker, so no test lists Signals' fields."""

from __future__ import annotations

import dataclasses

import torch

from curriculum_rl.trainer import Measurement, mean_log_loss
from curriculum_rl.trainer.signals import Signals, SignalTracker


def make_signals(
    mask: torch.Tensor, train_sizes: torch.Tensor | None = None, **values: torch.Tensor
) -> Signals:
    """Neutral signals (losses 1, orthonormal task gradients, no progress) of a run batch
    with valid tasks ``mask``, from a fresh :class:`SignalTracker`; ``values`` replace
    fields afterwards."""
    n, k = mask.shape
    ones = torch.ones(n, k)
    measurement = Measurement(
        train_loss=ones,
        val_loss=ones,
        grad_gram=torch.eye(k).expand(n, k, k).clone(),
        combined=mask.float(),
        mask=mask,
        objective=mask,
        diverged=torch.zeros(n, dtype=torch.bool),
        steps=torch.zeros(n, dtype=torch.long),
        j=mean_log_loss(ones, mask),
    )
    sizes = torch.ones(n, k) if train_sizes is None else train_sizes
    signals = SignalTracker(n, k).update(measurement, 100, sizes)
    return dataclasses.replace(signals, **values)
