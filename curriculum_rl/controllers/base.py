"""One interface for everything that sets task weights and sampling probabilities.

A controller is reset at the start of a batch of runs, then asked for a
:class:`~curriculum_rl.controllers.decision.Decision` at every decision point, given the
:class:`DecisionState`: the runs' :class:`~curriculum_rl.trainer.signals.Signals` plus
the decision in force and the observation built from both. The one decision loop
(:class:`curriculum_rl.loop.DecisionLoop`) makes that state, for the environment, the
benchmark's runner and a user's own loop alike. Methods that must act inside every
optimisation step (uncertainty weighting, GradNorm, FAMO, gradient aggregators) also
expose a :class:`~curriculum_rl.trainer.StepHook` as ``hook``; the trainer then lets the
hook do each step's backward pass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch

from curriculum_rl.controllers.decision import Decision, normalize_decision, uniform_decision
from curriculum_rl.controllers.observation import build_observation
from curriculum_rl.trainer import StepHook
from curriculum_rl.trainer.signals import Signals

__all__ = [
    "Controller",
    "Decision",
    "DecisionState",
    "RunContext",
    "Uniform",
    "normalize_decision",
    "uniform_decision",
]


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


@dataclass
class DecisionState(Signals):
    """What a controller reads at a decision: the signals, and ``previous``, the decision
    the last interval trained with (uniform at a run's first decision).

    :meth:`observation` is the policy's input, built from both, so every controller and
    the environment read the same table.
    """

    previous: Decision
    _observations: dict[int, torch.Tensor] = field(default_factory=dict, repr=False, compare=False)

    def observation(self, max_tasks: int | None = None) -> torch.Tensor:
        """(N, max_tasks, F) observation (see :mod:`curriculum_rl.controllers.observation`);
        computed once per width."""
        width = self.max_tasks if max_tasks is None else max_tasks
        if width not in self._observations:
            self._observations[width] = build_observation(self, self.previous, width)
        return self._observations[width]


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
    def decide(self, signals: DecisionState) -> Decision:
        """Weights and sampling for the next decision interval."""


class Uniform(Controller):
    """Equal weights, equal sampling: the reference every gain is measured against."""

    name = "uniform"

    def decide(self, signals: DecisionState) -> Decision:
        return uniform_decision(signals.mask)
