"""Controller names -> factories (``curriculum-rl benchmark --controller NAME``).

Every heuristic schedule that can be built without arguments is registered here. The
static-weights baseline needs tuning on the instances first
(:func:`curriculum_rl.controllers.static.tune_static_weights`), so it is not a name.
Aggregators whose solvers are optional extras stay listed; building one without its
extra raises an ``ImportError`` that names the install command
(``controller_names(available_only=True)`` leaves them out).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from curriculum_rl.controllers.aggregation import AGGREGATORS, Aggregated
from curriculum_rl.controllers.auxiliary import GradientSimilarity
from curriculum_rl.controllers.bandits import TSCL, Exp3S
from curriculum_rl.controllers.base import Controller, Uniform
from curriculum_rl.controllers.inverse_error import ErrorPower, inverse_error
from curriculum_rl.controllers.normalised import FourthRootLoss, SqrtLoss
from curriculum_rl.controllers.sampling import (
    Annealed,
    EasyToHard,
    HardFirst,
    Proportional,
    RoundRobin,
    Temperature,
)
from curriculum_rl.controllers.weighting import (
    DynamicWeightAverage,
    FastAdaptiveMultitask,
    GeometricMeanLoss,
    GradNorm,
    ImpartialLossWeighting,
    RandomLossWeighting,
    UncertaintyWeighting,
)

_REGISTRY: dict[str, Callable[[], Controller]] = {}
_MISSING: dict[str, Callable[[], list[str]]] = {}


def register_controller(
    name: str, factory: Callable[[], Controller], missing: Callable[[], list[str]] | None = None
) -> None:
    """Make ``name`` usable wherever a controller is named; ``missing`` (optional) lists
    the modules the controller still needs in this environment."""
    _REGISTRY[name] = factory
    if missing is not None:
        _MISSING[name] = missing


def controller_available(name: str) -> bool:
    """True when ``name`` is registered and everything it needs is installed."""
    return name in _REGISTRY and not (name in _MISSING and _MISSING[name]())


def controller_names(available_only: bool = False) -> list[str]:
    """Registered names, sorted; with ``available_only``, only those buildable here."""
    return sorted(n for n in _REGISTRY if not available_only or controller_available(n))


def make_controller(name: str) -> Controller:
    """A fresh controller for a registered heuristic name."""
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown controller {name!r}; use one of: {', '.join(controller_names())} "
            "(or a path to a trained policy file)"
        )
    return _REGISTRY[name]()


_scale_normalised = partial(ErrorPower, 0.5, 0.5, "scale-normalised")

_HEURISTICS: dict[str, Callable[[], Controller]] = {
    # sampling schedules
    "uniform": Uniform,
    "proportional": Proportional,
    "temperature": Temperature,
    "annealed": Annealed,
    "round-robin": RoundRobin,
    "easy-to-hard": EasyToHard,
    "hard-first": HardFirst,
    # per-step loss weighting
    "dwa": DynamicWeightAverage,
    "uw": UncertaintyWeighting,
    "famo": FastAdaptiveMultitask,
    "rlw": RandomLossWeighting,
    "imtl-l": ImpartialLossWeighting,
    "geometric-mean": GeometricMeanLoss,
    "sqrt-loss": SqrtLoss,
    "fourth-root-loss": FourthRootLoss,
    "gradnorm": GradNorm,
    "inverse-error": inverse_error,
    "initial-error": partial(ErrorPower, 0.0, 1.0, "initial-error"),
    "scale-normalised": _scale_normalised,
    # auxiliary tasks gated by their gradient's cosine with the targets' (Du et al. 2018)
    "gradient-similarity": lambda: GradientSimilarity(Uniform(), "gradient-similarity"),
    "scale-normalised-gs": lambda: GradientSimilarity(_scale_normalised(), "scale-normalised-gs"),
    # bandits on learning progress
    "exp3s": Exp3S,
    "tscl": TSCL,
}

for _name, _factory in _HEURISTICS.items():
    register_controller(_name, _factory)
for _name, _spec in AGGREGATORS.items():
    register_controller(_name, partial(Aggregated, _name), _spec.missing)
