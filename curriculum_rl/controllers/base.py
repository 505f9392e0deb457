"""One interface for everything that sets task weights and sampling probabilities.

A controller is reset at the start of a batch of runs, then asked for a :class:`Decision`
at every decision point, given the :class:`~curriculum_rl.trainer.signals.Signals`.
Methods that must act inside every optimisation step (uncertainty weighting, GradNorm,
FAMO, gradient aggregators) also expose a :class:`~curriculum_rl.trainer.StepHook` as
``hook``; the trainer then lets the hook do each step's backward pass. The learned PPO
policy, every heuristic, the environment, the benchmark and a user's own loop all speak
this one interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from curriculum_rl.trainer import StepHook
from curriculum_rl.trainer.signals import Signals


@dataclass
class Decision:
    """Per-task loss weights (mean 1 over valid tasks) and sampling probabilities
    (sum 1 over valid tasks), both (N, K); padded tasks hold 0."""

    weights: torch.Tensor
    sampling: torch.Tensor


@dataclass
class RunContext:
    """What a controller knows when a batch of runs starts.

    Attributes:
        mask: (N, K) valid tasks. train_sizes: (N, K) training examples per task.
        budget: inner optimisation steps per run. interval: inner steps per decision.
        seeds: one seed per run (for controllers that draw random numbers).
    """

    mask: torch.Tensor
    train_sizes: torch.Tensor
    budget: int
    interval: int
    seeds: list[int]

    @property
    def num_decisions(self) -> int:
        return max(1, -(-self.budget // self.interval))


class Controller(ABC):
    """Base class: subclasses implement :meth:`decide`; stateful ones also :meth:`reset`."""

    name: str = "controller"

    @property
    def hook(self) -> StepHook | None:
        """The per-step backward hook, or ``None`` to use ``sum_k w_k L_k``."""
        return None

    def reset(self, context: RunContext) -> None:
        """Start a new batch of runs."""
        self.context = context

    @abstractmethod
    def decide(self, signals: Signals) -> Decision:
        """Weights and sampling for the next decision interval."""


def uniform_decision(mask: torch.Tensor) -> Decision:
    """Weight 1 and probability 1/K for every valid task."""
    valid = mask.float()
    return Decision(valid.clone(), valid / valid.sum(1, keepdim=True).clamp_min(1))


def normalize_decision(
    weights: torch.Tensor, sampling: torch.Tensor, mask: torch.Tensor
) -> Decision:
    """Scale weights to mean 1 and sampling to sum 1 over each run's valid tasks."""
    valid = mask.float()
    weights = weights * valid
    sampling = sampling * valid
    k = valid.sum(1, keepdim=True).clamp_min(1)
    weights = weights * k / weights.sum(1, keepdim=True).clamp_min(1e-12)
    sampling = sampling / sampling.sum(1, keepdim=True).clamp_min(1e-12)
    return Decision(weights, sampling)


class Uniform(Controller):
    """Equal weights, equal sampling: the reference every gain is measured against."""

    name = "uniform"

    def decide(self, signals: Signals) -> Decision:
        return uniform_decision(signals.mask)
