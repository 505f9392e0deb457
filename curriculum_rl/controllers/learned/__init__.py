"""The learned policy at inference: the task-set network (:mod:`.network`), the safe
policy file (:mod:`.artifact`) and the controller that runs it (:mod:`.controller`).
Torch only: training with stable-baselines3 lives in :mod:`curriculum_rl.agents`."""

from curriculum_rl.controllers.learned.artifact import (
    ArtifactError,
    PolicyArtifact,
    load_artifact,
    save_artifact,
)
from curriculum_rl.controllers.learned.controller import LearnedController
from curriculum_rl.controllers.learned.network import NetworkConfig, TaskSetActor

__all__ = [
    "ArtifactError",
    "LearnedController",
    "NetworkConfig",
    "PolicyArtifact",
    "TaskSetActor",
    "load_artifact",
    "save_artifact",
]
