"""The learned policy as a :class:`~curriculum_rl.controllers.base.Controller`, and
:func:`load_controller`, which turns a name or a file into a controller.

:class:`LearnedController` runs the actor deterministically (the action mean): signals ->
observation (padded to the policy's ``K_max``) -> actor -> ``actions_to_decision``. It needs
torch only (no stable-baselines3), so applying a policy stays light.
"""

from __future__ import annotations

from pathlib import Path

import torch

from curriculum_rl.agents.artifact import PolicyArtifact, load_artifact
from curriculum_rl.agents.network import TaskSetActor
from curriculum_rl.controllers.actions import actions_to_decision
from curriculum_rl.controllers.base import Controller, Decision, RunContext, uniform_decision
from curriculum_rl.controllers.observation import build_observation
from curriculum_rl.trainer.signals import Signals

DEFAULT_POLICY = "default"
_PACKAGED = Path(__file__).resolve().parent.parent / "data" / "agents"


def default_policy_path() -> Path:
    """The shipped pretrained policy (``curriculum_rl/data/agents/default.json``)."""
    return _PACKAGED / f"{DEFAULT_POLICY}.json"


def pad_signals(signals: Signals, max_tasks: int) -> Signals:
    """The same signals with the task dimension padded to ``max_tasks`` (mask False).

    The observation's ``task_fraction`` is K / (task dimension), so a run batch with
    fewer slots than the policy's ``K_max`` must be padded to read as in training.
    """
    k = signals.max_tasks
    if k == max_tasks:
        return signals
    if k > max_tasks:
        raise ValueError(
            f"this policy was trained for at most {max_tasks} tasks, the run has {k} task "
            "slots; train a policy with a larger env.max_tasks"
        )
    extra = max_tasks - k
    padded = {}
    for name, value in signals.__dict__.items():
        if value.dim() >= 2 and value.shape[1] == k:
            fill = 1.0 if name in ("train_loss", "val_loss", "grad_norm", "train_sizes") else 0
            pad = [0, 0] * (value.dim() - 2) + [0, extra]
            if name == "grad_cos":  # (N, K, K): pad both task dimensions
                pad = [0, extra, 0, extra]
            value = torch.nn.functional.pad(value, pad, value=fill)
        padded[name] = value
    return Signals(**padded)


class LearnedController(Controller):
    """A trained task-set policy, acting deterministically.

    Args:
        actor: the policy network (see :mod:`curriculum_rl.agents.network`).
        max_tasks: the ``K_max`` it was trained with; runs may have any K <= K_max.
        name: shown in records and reports.
    """

    def __init__(self, actor: TaskSetActor, max_tasks: int, name: str = "learned") -> None:
        self.actor = actor.eval()
        self.max_tasks = max_tasks
        self.name = name
        self.previous: Decision | None = None

    @classmethod
    def from_artifact(cls, artifact: PolicyArtifact, name: str | None = None) -> LearnedController:
        label = name or (artifact.path.stem if artifact.path is not None else "learned")
        return cls(artifact.actor, artifact.max_tasks, name=label)

    @classmethod
    def load(cls, path: str | Path, name: str | None = None) -> LearnedController:
        """Load from a policy file (see :mod:`curriculum_rl.agents.artifact`)."""
        return cls.from_artifact(load_artifact(path), name)

    def reset(self, context: RunContext) -> None:
        if context.mask.shape[1] > self.max_tasks:
            raise ValueError(
                f"policy {self.name!r} was trained for at most {self.max_tasks} tasks, the "
                f"runs have {context.mask.shape[1]} task slots; train a policy with a larger "
                "env.max_tasks"
            )
        self.context = context
        self.previous = uniform_decision(context.mask)

    @torch.no_grad()
    def decide(self, signals: Signals) -> Decision:
        k = signals.max_tasks
        previous = self.previous
        if previous is None or previous.weights.shape != signals.mask.shape:
            previous = uniform_decision(signals.mask)
        extra = self.max_tasks - k
        padded = pad_signals(signals, self.max_tasks)  # raises if k > K_max
        prev = Decision(
            torch.nn.functional.pad(previous.weights, [0, extra]),
            torch.nn.functional.pad(previous.sampling, [0, extra]),
        )
        obs = build_observation(padded, prev)
        param = next(self.actor.parameters())
        actions = self.actor(obs.to(param.device, param.dtype)).to(signals.mask.device)
        decision = actions_to_decision(actions[:, :k], signals.mask)
        self.previous = decision
        return decision


def load_controller(name_or_path: str | Path | None = None) -> Controller:
    """A controller from a heuristic name, a policy file, or the shipped default.

    Args:
        name_or_path: ``None`` or ``"default"``: the shipped pretrained policy; a
            registered name (``uniform`` and the heuristics of
            :mod:`curriculum_rl.controllers`); or the path of a policy file written by
            ``curriculum-rl train`` (``NAME.json`` or ``NAME.pt``, or a folder holding
            ``policy.json``).

    Raises:
        ValueError: unknown name, or a policy file that is missing, corrupt, tampered with
            or incompatible (:class:`~curriculum_rl.agents.artifact.ArtifactError`).
    """
    import curriculum_rl.controllers  # noqa: F401 - registers the heuristics it imports
    from curriculum_rl.controllers.registry import controller_names, make_controller

    if name_or_path is None or str(name_or_path) == DEFAULT_POLICY:
        path = default_policy_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"the shipped default policy {path} is missing from this installation; "
                "reinstall curriculum-rl or give a policy file or a heuristic name"
            )
        return LearnedController.load(path, name=DEFAULT_POLICY)
    text = str(name_or_path)
    if text in controller_names():
        return make_controller(text)
    path = Path(text)
    if path.exists() or path.with_suffix(".json").is_file():
        return LearnedController.load(path)
    return make_controller(text)  # raises, listing the known names
