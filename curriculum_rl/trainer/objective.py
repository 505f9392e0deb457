"""J, the quantity the reward and the checkpoint rule read: the mean over the objective
(target) tasks of log loss, per run. One definition for the trainer's validation probe,
the test split and a user's own losses."""

from __future__ import annotations

import math

import torch

EPS = 1e-12


def mean_log_loss(losses: torch.Tensor, objective: torch.Tensor) -> torch.Tensor:
    """(N,) mean over each run's objective tasks of ``log loss``; ``losses`` and
    ``objective`` are (N, K). A non-finite loss of an objective task makes J ``+inf``
    (a failed run); other tasks (auxiliaries, padding, NaN there included) are ignored."""
    logs = losses.clamp_min(EPS).log().nan_to_num(math.inf)
    logs = torch.where(objective, logs, torch.zeros_like(logs))
    return logs.sum(1) / objective.sum(1).clamp_min(1)
