"""Controllers: everything that sets per-task loss weights and sampling probabilities."""

from curriculum_rl.controllers.actions import actions_to_decision, decision_to_actions
from curriculum_rl.controllers.base import (
    Controller,
    Decision,
    RunContext,
    Uniform,
    normalize_decision,
    uniform_decision,
)
from curriculum_rl.controllers.observation import FEATURES, NUM_FEATURES, build_observation

__all__ = [
    "FEATURES",
    "NUM_FEATURES",
    "Controller",
    "Decision",
    "RunContext",
    "Uniform",
    "actions_to_decision",
    "build_observation",
    "decision_to_actions",
    "normalize_decision",
    "uniform_decision",
]
