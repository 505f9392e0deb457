"""Suite names -> suite objects, and resolution of a SPEC given on the command line."""

from __future__ import annotations

from collections.abc import Callable

from curriculum_rl.suites.base import Suite
from curriculum_rl.suites.synthetic import SyntheticSuite, default_settings

_REGISTRY: dict[str, Callable[[], Suite]] = {}


def register_suite(name: str, factory: Callable[[], Suite]) -> None:
    """Make ``name`` resolvable by :func:`resolve_suite` (and listed by ``suites``)."""
    _REGISTRY[name] = factory


def registered_suites() -> dict[str, Callable[[], Suite]]:
    return dict(_REGISTRY)


def resolve_suite(spec: str | Suite) -> Suite:
    """Return the suite that ``spec`` names: a registered name (``curriculum-rl suites``
    lists them) or a suite object (returned as it is)."""
    if isinstance(spec, Suite):
        return spec
    if spec in _REGISTRY:
        return _REGISTRY[spec]()
    raise ValueError(
        f"unknown suite {spec!r}; use a registered name ({', '.join(sorted(_REGISTRY))})"
    )


register_suite("synthetic", SyntheticSuite)
for _setting in default_settings():
    register_suite(
        f"synthetic-{_setting.name.replace('_', '-')}",
        lambda s=_setting: SyntheticSuite(name=f"synthetic-{s.name.replace('_', '-')}", settings=(s,)),
    )
