"""curriculum-rl: a reinforcement-learned curriculum controller for multitask training.

The top level stays light (``import curriculum_rl`` imports neither torch nor SB3);
the entry points below load their modules on first use:

* :func:`load_controller` — a controller from a heuristic name, a policy file, or the
  shipped pretrained policy (no argument);
* :class:`CurriculumSession` — apply a controller inside your own training loop.

Importing the package registers the Gymnasium environment :data:`ENV_ID`, as Gymnasium 1.x
packages do (``import curriculum_rl; gymnasium.make("curriculum_rl/Multitask-v0")``;
Gymnasium dropped its plugin entry points in 1.0). The entry point is a string, so
registering imports only gymnasium (and numpy); the env's module, and torch, load at
``make``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
ENV_ID = "curriculum_rl/Multitask-v0"
"""The id of :class:`~curriculum_rl.env.CurriculumEnv` for ``gymnasium.make``."""


def _register_env() -> None:
    """Register :data:`ENV_ID` with Gymnasium, once; without gymnasium installed there is
    nothing to register (the controllers and the session do not need it)."""
    try:
        import gymnasium
    except ImportError:
        return
    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point="curriculum_rl.env.single:CurriculumEnv")


_register_env()

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from curriculum_rl.controllers.load import load_controller
    from curriculum_rl.session import CurriculumSession

_LAZY = {
    "load_controller": "curriculum_rl.controllers.load",
    "CurriculumSession": "curriculum_rl.session",
}

__all__ = ["ENV_ID", "CurriculumSession", "__version__", "load_controller"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'curriculum_rl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
