"""The learned policy as a :class:`~curriculum_rl.controllers.base.Controller`.

:class:`LearnedController` runs the actor deterministically (the action mean), once per
run, on the observation that the decision loop built (:meth:`DecisionState.observation`,
padded to the policy's ``K_max``, or wider for a run with more tasks), then maps the
actions to a decision with the action transform the policy was trained with: the same
observation and the same transform as in training. It needs torch only (no
stable-baselines3, no gymnasium), so applying a policy stays light.
"""

from __future__ import annotations

from pathlib import Path

import torch

from curriculum_rl.controllers.actions import DEFAULT_TRANSFORM, action_transform
from curriculum_rl.controllers.base import Controller, DecisionState
from curriculum_rl.controllers.decision import Decision
from curriculum_rl.controllers.learned.artifact import PolicyArtifact, load_artifact
from curriculum_rl.controllers.learned.network import TaskSetActor


class LearnedController(Controller):
    """A trained task-set policy, acting deterministically.

    Args:
        actor: the policy network (see :mod:`curriculum_rl.controllers.learned.network`).
        max_tasks: the ``K_max`` it was trained with (observations are padded to it);
            runs may have any number of tasks.
        action: the action transform it was trained with.
        name: shown in records and reports.
    """

    def __init__(
        self,
        actor: TaskSetActor,
        max_tasks: int,
        action: str = DEFAULT_TRANSFORM,
        name: str = "learned",
    ) -> None:
        self.actor = actor.eval()
        self.max_tasks = max_tasks
        self.transform = action_transform(action)
        if actor.config.action_dim != self.transform.dim:
            raise ValueError(
                f"the actor emits {actor.config.action_dim} numbers per task, the {action!r} "
                f"transform reads {self.transform.dim}"
            )
        self.name = name

    @classmethod
    def from_artifact(cls, artifact: PolicyArtifact, name: str | None = None) -> LearnedController:
        label = name or (artifact.path.stem if artifact.path is not None else "learned")
        return cls(artifact.actor, artifact.max_tasks, artifact.action, name=label)

    @classmethod
    def load(cls, path: str | Path, name: str | None = None) -> LearnedController:
        """Load from a policy file (see :mod:`curriculum_rl.controllers.learned.artifact`)."""
        return cls.from_artifact(load_artifact(path), name)

    @torch.no_grad()
    def decide(self, signals: DecisionState) -> Decision:
        if not isinstance(signals, DecisionState):
            raise TypeError(
                "a learned policy reads the observation of a DecisionState; drive it through "
                "curriculum_rl.loop.DecisionLoop (run_controller, the environments and "
                "CurriculumSession do)"
            )
        obs = signals.observation(max(self.max_tasks, signals.max_tasks))
        param = next(self.actor.parameters())
        obs = obs.to(param.device, param.dtype)
        actions = per_run_actions(self.actor, obs).to(signals.mask.device)
        return self.transform.decision(actions[:, : signals.max_tasks], signals)


def per_run_actions(actor: torch.nn.Module, obs: torch.Tensor) -> torch.Tensor:
    """The actor's actions for observations (N, K, F), one pass per run. A matrix product
    can round a row differently by its place among the rows it multiplies, so one batched
    pass would make a run's decisions (and, once training amplifies the round-off, its
    numbers) depend on the runs beside it."""
    return torch.cat([actor(run[None]) for run in obs])
