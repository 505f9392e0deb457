"""J, the quantity the reward and the checkpoint rule read: the mean over the objective
(target) tasks of log loss, per run. One definition for the trainer's validation probe,
the test split and a user's own losses; and its metric-side twin, the same mean of log
validation *error*, which the reward and static-weight tuning read by default."""

from __future__ import annotations

import math
from typing import Protocol

import torch

EPS = 1e-12


def loss_normaliser(task_losses: torch.Tensor, normalisation: torch.Tensor) -> torch.Tensor:
    """``sg(L_k)^-alpha``: the detached factor by which a step's objective divides each
    task's loss (``task_losses`` (..., K), ``normalisation`` alpha (...,)). At alpha = 1 the
    gradient of ``sum_k w_k L_k / sg(L_k)`` is ``sum_k w_k grad L_k / L_k``, that of
    ``sum_k w_k log L_k``: each task's step is relative to its own scale (Chennupati et al.
    2019's geometric-mean loss with weights).

    A loss at or below ``EPS`` (a task that drew no example this step, or one fitted to
    float precision) gets factor 0 where alpha > 0, as ``log max(L, EPS)`` has gradient 0
    there. Not ``EPS^-alpha``: a cross-entropy whose float32 value rounds to exactly 0
    still has a gradient, which that factor would multiply by up to 1e12 and so wreck
    Adam's second moments (benchmarks/RESULTS.md §37e). At alpha = 0 the factor is 1."""
    losses, alpha = task_losses.detach(), normalisation.unsqueeze(-1)
    factor = losses.clamp_min(EPS).pow(-alpha)
    return torch.where((losses <= EPS) & (alpha > 0), torch.zeros_like(factor), factor)


def floored_log(values: torch.Tensor) -> torch.Tensor:
    """``log`` of ``values`` floored at ``EPS``, with non-finite results (NaN entries,
    padded slots) read as 0: the log losses and errors that signals and rules compare."""
    return values.clamp_min(EPS).log().nan_to_num(0.0, 0.0, 0.0)


def mean_log_loss(losses: torch.Tensor, objective: torch.Tensor) -> torch.Tensor:
    """(N,) mean over each run's objective tasks of ``log loss``; ``losses`` and
    ``objective`` are (N, K). A non-finite loss of an objective task makes J ``+inf``
    (a failed run); other tasks (auxiliaries, padding, NaN there included) are ignored."""
    logs = losses.clamp_min(EPS).log().nan_to_num(math.inf)
    logs = torch.where(objective, logs, torch.zeros_like(logs))
    return logs.sum(1) / objective.sum(1).clamp_min(1)


CRITERIA = ("error", "loss")


class ValidationMeasure(Protocol):
    """What :func:`validation_potential` reads: a trainer ``Measurement`` or a
    ``DecisionState``."""

    val_loss: torch.Tensor
    val_error: torch.Tensor | None
    objective: torch.Tensor


def validation_values(measured: ValidationMeasure, criterion: str) -> torch.Tensor:
    """(N, K) per-task validation *error* (``"error"``: MSE for regression, the floored
    soft error for classification, the validation twin of G_m) or validation loss
    (``"loss"``); the loss where no error was measured. Lower is better."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    use_loss = criterion == "loss" or measured.val_error is None
    return measured.val_loss if use_loss else measured.val_error


def validation_potential(measured: ValidationMeasure, criterion: str) -> torch.Tensor:
    """(N,) mean over each run's target tasks of the log of :func:`validation_values`
    (``"loss"``: J). Lower is better."""
    return mean_log_loss(validation_values(measured, criterion), measured.objective)
