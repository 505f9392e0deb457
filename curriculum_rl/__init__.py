"""curriculum-rl: a reinforcement-learned curriculum controller for multitask training.

The top level stays light (``import curriculum_rl`` imports neither torch nor SB3);
the entry points below load their modules on first use:

* :func:`load_controller` — a controller from a heuristic name, a policy file, or the
  shipped pretrained policy (no argument);
* :class:`CurriculumSession` — apply a controller inside your own training loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from curriculum_rl.controllers.load import load_controller
    from curriculum_rl.session import CurriculumSession

_LAZY = {
    "load_controller": "curriculum_rl.controllers.load",
    "CurriculumSession": "curriculum_rl.session",
}

__all__ = ["CurriculumSession", "__version__", "load_controller"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'curriculum_rl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
