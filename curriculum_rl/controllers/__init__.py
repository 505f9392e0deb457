"""Controllers: everything that sets per-task loss weights and sampling probabilities."""

from curriculum_rl.controllers.actions import actions_to_decision, decision_to_actions
from curriculum_rl.controllers.aggregation import AGGREGATORS, Aggregated, AggregatorHook
from curriculum_rl.controllers.bandits import TSCL, Exp3S
from curriculum_rl.controllers.base import (
    Controller,
    Decision,
    RunContext,
    Uniform,
    normalize_decision,
    uniform_decision,
)
from curriculum_rl.controllers.normalised import FourthRootLoss, SqrtLoss
from curriculum_rl.controllers.observation import FEATURES, NUM_FEATURES, build_observation
from curriculum_rl.controllers.registry import (
    controller_available,
    controller_names,
    make_controller,
    register_controller,
)
from curriculum_rl.controllers.sampling import (
    Annealed,
    EasyToHard,
    HardFirst,
    Proportional,
    RoundRobin,
    Temperature,
)
from curriculum_rl.controllers.static import StaticGrid, StaticWeights, tune_static_weights
from curriculum_rl.controllers.weighting import (
    DynamicWeightAverage,
    FastAdaptiveMultitask,
    GeometricMeanLoss,
    GradNorm,
    ImpartialLossWeighting,
    RandomLossWeighting,
    UncertaintyWeighting,
)

__all__ = [
    "AGGREGATORS",
    "FEATURES",
    "NUM_FEATURES",
    "TSCL",
    "Aggregated",
    "AggregatorHook",
    "Annealed",
    "Controller",
    "Decision",
    "DynamicWeightAverage",
    "EasyToHard",
    "Exp3S",
    "FastAdaptiveMultitask",
    "FourthRootLoss",
    "GeometricMeanLoss",
    "GradNorm",
    "HardFirst",
    "ImpartialLossWeighting",
    "Proportional",
    "RandomLossWeighting",
    "RoundRobin",
    "RunContext",
    "SqrtLoss",
    "StaticGrid",
    "StaticWeights",
    "Temperature",
    "UncertaintyWeighting",
    "Uniform",
    "actions_to_decision",
    "build_observation",
    "controller_available",
    "controller_names",
    "decision_to_actions",
    "make_controller",
    "normalize_decision",
    "register_controller",
    "tune_static_weights",
    "uniform_decision",
]
