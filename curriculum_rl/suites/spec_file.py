"""Suites declared in TOML files (``envs/*.toml``); the format is documented in docs/suites.md.

A file holds either one suite, as a ``[suite]`` table, or several, as ``[suites.NAME]``
tables. Each table names a ``kind`` and sets that suite's constructor arguments::

    [suite]
    kind = "synthetic"          # synthetic | digits | mnist1d | sequence | factory
    name = "synthetic-train"
    n_train = 1024
    [[suite.settings]]          # synthetic only; omit for the default mix
    name = "scales"
    scale_spread = [30.0, 300.0]

Keys are checked against the constructor's fields, with their types: an unknown key or a
value of the wrong type is a ``ValueError`` naming the file, the table and the key. A
path ``envs/NAME.toml`` is looked up relative to the working directory first, then in the
copies shipped inside the package (``curriculum_rl/data/envs``).
"""

from __future__ import annotations

import dataclasses
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from curriculum_rl.suites.base import Suite
from curriculum_rl.suites.digits import DigitsSuite
from curriculum_rl.suites.mnist1d import Mnist1dSuite
from curriculum_rl.suites.sequence import SequenceSuite
from curriculum_rl.suites.synthetic import SyntheticSuite

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SUITE_KINDS: dict[str, type] = {
    "synthetic": SyntheticSuite,
    "digits": DigitsSuite,
    "mnist1d": Mnist1dSuite,
    "sequence": SequenceSuite,
}
"""``kind`` values of a suite table -> the dataclass its other keys configure. The extra
kind ``"factory"`` takes one key, ``factory = "package.module:fn"`` or ``"file.py:fn"``
(a relative file path is relative to the TOML file)."""


def packaged_envs_dir() -> Path:
    """The folder of TOML specs shipped inside the package."""
    # Relative to this file rather than importlib.resources: it works the same for a
    # source checkout, an editable install and a wheel.
    return Path(__file__).resolve().parent.parent / "data" / "envs"


def find_spec_file(path: str | Path) -> Path:
    """The TOML file ``path`` names: as given (relative to the working directory), else
    the packaged copy of the same file name (``envs/train.toml`` -> the shipped one)."""
    given = Path(path)
    if given.is_file():
        return given
    packaged = packaged_envs_dir() / given.name
    if given.suffix == ".toml" and packaged.is_file():
        return packaged
    shipped = sorted(p.name for p in packaged_envs_dir().glob("*.toml"))
    raise FileNotFoundError(
        f"suite file {str(path)!r} not found (looked in {Path.cwd()} and in the packaged "
        f"envs: {', '.join(shipped) or 'none'}); check the path"
    )


def read_spec_tables(path: str | Path) -> tuple[Path, dict[str, dict]]:
    """Parse a spec file; return its location and its suite tables by name, in file order."""
    found = find_spec_file(path)
    try:
        doc = tomllib.loads(found.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{found}: not valid TOML ({err})") from err
    unknown = sorted(set(doc) - {"suite", "suites"})
    if unknown:
        raise ValueError(
            f"{found}: unknown top-level key {unknown[0]!r}; use a [suite] table or "
            "[suites.NAME] tables"
        )
    if ("suite" in doc) == ("suites" in doc):
        raise ValueError(f"{found}: give exactly one of a [suite] table or [suites.NAME] tables")
    if "suite" in doc:
        table = _expect_table(doc["suite"], f"{found}: [suite]")
        return found, {str(table.get("name", found.stem)): table}
    suites = _expect_table(doc["suites"], f"{found}: [suites]")
    if not suites:
        raise ValueError(f"{found}: [suites] holds no suite tables")
    return found, {
        name: _expect_table(t, f"{found}: [suites.{name}]") for name, t in suites.items()
    }


def load_suites(path: str | Path) -> dict[str, Suite]:
    """Every suite a spec file declares, by name, in file order."""
    found, tables = read_spec_tables(path)
    return {
        name: suite_from_table(table, name, f"{found}: suite {name!r}", found.parent)
        for name, table in tables.items()
    }


def load_suite_file(spec: str | Path) -> Suite:
    """The one suite of ``spec``: ``file.toml`` (a file holding one suite) or
    ``file.toml#NAME`` (suite ``NAME`` of a file holding several)."""
    path, _, wanted = str(spec).partition("#")
    found, tables = read_spec_tables(path)
    if not wanted:
        if len(tables) > 1:
            raise ValueError(
                f"{found} declares {len(tables)} suites ({', '.join(tables)}); pick one with "
                f"{path}#NAME"
            )
        wanted = next(iter(tables))
    if wanted not in tables:
        raise ValueError(f"{found} declares no suite {wanted!r}; it has {', '.join(tables)}")
    return suite_from_table(tables[wanted], wanted, f"{found}: suite {wanted!r}", found.parent)


def suite_from_table(table: dict, name: str, where: str, base_dir: Path) -> Suite:
    """Build the suite one TOML table describes (``where`` prefixes error messages)."""
    table = dict(table)
    kind = table.pop("kind", None)
    if kind == "factory":
        return _factory_suite(table, where, base_dir)
    if kind not in SUITE_KINDS:
        raise ValueError(
            f"{where}: kind must be one of {', '.join([*SUITE_KINDS, 'factory'])}, got {kind!r}"
        )
    table.setdefault("name", name)
    return build_dataclass(SUITE_KINDS[kind], table, where)


def _factory_suite(table: dict, where: str, base_dir: Path) -> Suite:
    from curriculum_rl.suites.registry import load_factory  # the registry imports us

    # No `name` key: the suite keeps the name its factory gives it (the table name is
    # still what selects it, as file.toml#NAME).
    unknown = sorted(set(table) - {"factory"})
    if unknown or not isinstance(table.get("factory"), str):
        bad = unknown[0] if unknown else "factory"
        raise ValueError(
            f"{where}: kind 'factory' takes only factory = 'module:fn' or 'file.py:fn'; "
            f"bad key {bad!r}"
        )
    target, _, attr = table["factory"].rpartition(":")
    if target.endswith(".py") and not Path(target).is_absolute():
        target = str(base_dir / target)
    return load_factory(f"{target}:{attr}")


def build_dataclass(cls: type, table: dict, where: str) -> Any:
    """``cls(**table)`` after checking every key against ``cls``'s fields and its type
    hints (TOML arrays become tuples; nested dataclasses are built from tables)."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = get_type_hints(cls)
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ValueError(
            f"{where}: unknown key {unknown[0]!r} for {cls.__name__}; valid keys: "
            f"{', '.join(fields)}"
        )
    kwargs = {key: _convert(value, hints[key], f"{where}: {key}") for key, value in table.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{where}: {err}") from err


def _convert(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against ``hint`` and convert it (lists -> tuples, int -> float)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _convert(value, option, where)
            except ValueError as err:
                errors.append(str(err))
        raise ValueError(errors[0])
    if origin is tuple:
        return _convert_tuple(value, get_args(hint), where)
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, _expect_table(value, where), where)
    check = _SCALARS.get(hint)
    if check is None:
        return value
    ok, converted = check(value)
    if not ok:
        raise ValueError(f"{where} must be {_describe(hint)}, got {value!r}")
    return converted


def _convert_tuple(value: Any, args: tuple, where: str) -> tuple:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{where} must be an array, got {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if len(value) != len(args):
        raise ValueError(f"{where} must be an array of {len(args)} values, got {value!r}")
    return tuple(
        _convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# A scalar type -> (accepts?, converted value). bool is excluded from the numbers because
# TOML's `true` would otherwise pass as 1.
_SCALARS: dict[Any, Callable[[Any], tuple[bool, Any]]] = {
    int: lambda v: (isinstance(v, int) and not isinstance(v, bool), v),
    float: lambda v: (_is_number(v), float(v) if _is_number(v) else v),
    str: lambda v: (isinstance(v, str), v),
    bool: lambda v: (isinstance(v, bool), v),
}


def _describe(hint: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}[hint]


def _expect_table(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a table, got {value!r}")
    return value
