"""Controller names -> factories (``curriculum-rl benchmark --controller NAME``)."""

from __future__ import annotations

from collections.abc import Callable

from curriculum_rl.controllers.base import Controller, Uniform

_REGISTRY: dict[str, Callable[[], Controller]] = {}


def register_controller(name: str, factory: Callable[[], Controller]) -> None:
    """Make ``name`` usable wherever a controller is named."""
    _REGISTRY[name] = factory


def controller_names() -> list[str]:
    return sorted(_REGISTRY)


def make_controller(name: str) -> Controller:
    """A fresh controller for a registered heuristic name."""
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown controller {name!r}; use one of: {', '.join(controller_names())} "
            "(or a path to a trained policy file)"
        )
    return _REGISTRY[name]()


register_controller("uniform", Uniform)
