"""The learned policy as a :class:`~curriculum_rl.controllers.base.Controller`.

:class:`LearnedController` runs the actor deterministically (the action mean) on the
observation that the decision loop built (:meth:`DecisionState.observation`, padded to the
policy's ``K_max``), then maps the actions to a decision with ``actions_to_decision``:
the same observation and the same transform as in training. It needs torch only (no
stable-baselines3, no gymnasium), so applying a policy stays light.
"""

from __future__ import annotations

from pathlib import Path

import torch

from curriculum_rl.controllers.actions import actions_to_decision
from curriculum_rl.controllers.base import Controller, DecisionState, RunContext
from curriculum_rl.controllers.decision import Decision
from curriculum_rl.controllers.learned.artifact import PolicyArtifact, load_artifact
from curriculum_rl.controllers.learned.network import TaskSetActor


class LearnedController(Controller):
    """A trained task-set policy, acting deterministically.

    Args:
        actor: the policy network (see :mod:`curriculum_rl.controllers.learned.network`).
        max_tasks: the ``K_max`` it was trained with; runs may have any K <= K_max.
        name: shown in records and reports.
    """

    def __init__(self, actor: TaskSetActor, max_tasks: int, name: str = "learned") -> None:
        self.actor = actor.eval()
        self.max_tasks = max_tasks
        self.name = name

    @classmethod
    def from_artifact(cls, artifact: PolicyArtifact, name: str | None = None) -> LearnedController:
        label = name or (artifact.path.stem if artifact.path is not None else "learned")
        return cls(artifact.actor, artifact.max_tasks, name=label)

    @classmethod
    def load(cls, path: str | Path, name: str | None = None) -> LearnedController:
        """Load from a policy file (see :mod:`curriculum_rl.controllers.learned.artifact`)."""
        return cls.from_artifact(load_artifact(path), name)

    def reset(self, context: RunContext) -> None:
        if context.mask.shape[1] > self.max_tasks:
            raise ValueError(
                f"policy {self.name!r} was trained for at most {self.max_tasks} tasks, the "
                f"runs have {context.mask.shape[1]} task slots; train a policy with a larger "
                "env.max_tasks"
            )
        super().reset(context)

    @torch.no_grad()
    def decide(self, signals: DecisionState) -> Decision:
        if not isinstance(signals, DecisionState):
            raise TypeError(
                "a learned policy reads the observation of a DecisionState; drive it through "
                "curriculum_rl.loop.DecisionLoop (run_controller, the environments and "
                "CurriculumSession do)"
            )
        obs = signals.observation(self.max_tasks)
        param = next(self.actor.parameters())
        actions = self.actor(obs.to(param.device, param.dtype)).to(signals.mask.device)
        return actions_to_decision(actions[:, : signals.max_tasks], signals.mask)
