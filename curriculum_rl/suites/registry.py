"""Suite names -> suite objects, and resolution of a SPEC given on the command line.

A SPEC is one of (tried in this order):

* a suite object (returned as it is);
* a registered name (``curriculum-rl suites`` lists them);
* a TOML spec file, ``envs/NAME.toml`` or ``envs/NAME.toml#SUITE`` (see
  :mod:`curriculum_rl.suites.spec_file`);
* ``path/to/file.py:factory`` or ``package.module:factory``: the user's own code. The file
  is imported and ``factory`` is called without arguments; it may also *be* a suite or a
  suite instance. Importing runs that code: that is the contract of a factory spec.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from curriculum_rl.suites.base import Suite, SuiteInstance, TaskSpec
from curriculum_rl.suites.digits import DigitsSuite
from curriculum_rl.suites.digits_conv import DigitsConvSuite
from curriculum_rl.suites.mnist1d import Mnist1dSuite
from curriculum_rl.suites.near_zero import NearZeroSuite
from curriculum_rl.suites.scales import ScalesSuite
from curriculum_rl.suites.sequence import SequenceSuite
from curriculum_rl.suites.sequence_family import SequenceFamilySuite
from curriculum_rl.suites.synthetic import SyntheticSuite, default_settings
from curriculum_rl.suites.tabular import TabularSuite
from curriculum_rl.suites.teacher import TeacherAuxSuite
from curriculum_rl.suites.tokens import TokensSuite
from curriculum_rl.suites.tokens_family import TokensFamilySuite

_REGISTRY: dict[str, Callable[[], Suite]] = {}


def register_suite(name: str, factory: Callable[[], Suite]) -> None:
    """Make ``name`` resolvable by :func:`resolve_suite` (and listed by ``suites``)."""
    _REGISTRY[name] = factory


def registered_suites() -> dict[str, Callable[[], Suite]]:
    return dict(_REGISTRY)


@dataclass(frozen=True)
class FixedSuite:
    """A suite made of one fixed :class:`SuiteInstance` (what a factory returning a bare
    instance becomes). Every seed gives the same data; the seed of a run still sets its
    initialisation and batch order."""

    instance: SuiteInstance

    @property
    def name(self) -> str:
        return self.instance.name

    def sample(self, seed: int) -> SuiteInstance:
        return self.instance

    def describe(self) -> list[TaskSpec]:
        return list(self.instance.tasks)


def resolve_suite(spec: str | Path | Suite) -> Suite:
    """Return the one suite that ``spec`` names (see the module docstring for the forms).

    Raises ``ValueError`` (or ``FileNotFoundError`` for a missing file) naming the problem
    and the fix.
    """
    if _is_suite(spec):
        return spec
    text = str(spec)
    if text in _REGISTRY:
        return _REGISTRY[text]()
    if text.partition("#")[0].endswith(".toml"):
        from curriculum_rl.suites.spec_file import load_suite_file

        return load_suite_file(text)
    if ":" in text:
        return load_factory(text)
    raise ValueError(
        f"unknown suite {text!r}; use a registered name ({', '.join(sorted(_REGISTRY))}), "
        "an envs/*.toml file, package.module:factory or path/to/file.py:factory"
    )


def resolve_suites(spec: str | Path | Suite) -> list[Suite]:
    """Like :func:`resolve_suite`, but a TOML file declaring several suites (without a
    ``#SUITE`` selector) gives all of them, in file order (``envs/heldout.toml``)."""
    text = str(spec) if not _is_suite(spec) else ""
    if text.endswith(".toml") and text not in _REGISTRY:
        from curriculum_rl.suites.spec_file import load_suites

        return list(load_suites(text).values())
    return [resolve_suite(spec)]


def load_factory(spec: str) -> Suite:
    """The suite of ``package.module:attr`` or ``path/to/file.py:attr``.

    ``attr`` may be a suite, a :class:`SuiteInstance`, or a callable taking no arguments
    that returns either (a suite class counts: it is called with its defaults). A bare
    instance is wrapped in a :class:`FixedSuite`.
    """
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ValueError(
            f"suite spec {spec!r} must look like package.module:factory or file.py:factory"
        )
    module = _load_file(target) if target.endswith(".py") else _import_module(target)
    if not hasattr(module, attr):
        public = sorted(n for n in vars(module) if not n.startswith("_"))
        raise ValueError(
            f"{target} has no attribute {attr!r}; fix the name after ':' "
            f"(it defines: {', '.join(public) or 'nothing public'})"
        )
    return _as_suite(getattr(module, attr), spec)


def _is_suite(obj: Any) -> bool:
    # A suite *class* also carries name/sample/describe attributes: only instances count.
    return not isinstance(obj, type) and isinstance(obj, Suite)


def _as_suite(obj: Any, spec: str) -> Suite:
    if isinstance(obj, SuiteInstance):
        return FixedSuite(obj)
    if _is_suite(obj):
        return obj
    if not callable(obj):
        raise ValueError(
            f"{spec} is a value of type {type(obj).__name__}; it must be a Suite, a "
            "SuiteInstance or a function returning one"
        )
    _check_no_arguments(obj, spec)
    made = obj()
    if isinstance(made, SuiteInstance):
        return FixedSuite(made)
    if _is_suite(made):
        return made
    raise ValueError(
        f"factory {spec} returned a value of type {type(made).__name__}; it must return a "
        "Suite (with name, sample(seed) and describe()) or a SuiteInstance"
    )


def _check_no_arguments(fn: Callable, spec: str) -> None:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: just try the call
        return
    required = [
        p.name
        for p in signature.parameters.values()
        if p.default is p.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if required:
        raise ValueError(
            f"factory {spec} needs arguments ({', '.join(required)}); it is called without "
            "any, so give them defaults or wrap it in a function that takes none"
        )


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        raise ValueError(
            f"cannot import module {name!r} ({err}); install it or put its folder on "
            "PYTHONPATH, or give a file path ending in .py"
        ) from err


def _load_file(path: str) -> ModuleType:
    """Import a Python file by path, once per process (so repeated resolution returns the
    same classes and factories, and their instances can share one batched trainer)."""
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise FileNotFoundError(
            f"suite file {path!r} not found (resolved to {file}); check the path"
        )
    digest = hashlib.sha1(str(file).encode()).hexdigest()[:12]
    name = f"curriculum_rl_user_suite_{file.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    loader_spec = importlib.util.spec_from_file_location(name, file)
    if loader_spec is None or loader_spec.loader is None:
        raise ValueError(f"cannot load {file} as a Python module")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        loader_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


register_suite("synthetic", SyntheticSuite)
for _setting in default_settings():
    register_suite(
        f"synthetic-{_setting.name.replace('_', '-')}",
        lambda s=_setting: SyntheticSuite(
            name=f"synthetic-{s.name.replace('_', '-')}", settings=(s,)
        ),
    )
register_suite("digits", DigitsSuite)
register_suite("mnist1d", Mnist1dSuite)
register_suite("sequence", SequenceSuite)
register_suite("sequence-family", SequenceFamilySuite)
# The test tier (envs/test.toml) uses these suites with their defaults.
register_suite("wine", lambda: TabularSuite(dataset="wine"))
register_suite("breast-cancer", lambda: TabularSuite(dataset="breast_cancer"))
register_suite("diabetes", lambda: TabularSuite(dataset="diabetes"))
register_suite("digits-conv", DigitsConvSuite)
register_suite("tokens", TokensSuite)
register_suite("tokens-family", TokensFamilySuite)
register_suite("gradnorm-scales", ScalesSuite)
register_suite("near-zero", NearZeroSuite)
register_suite("teacher-aux", TeacherAuxSuite)
