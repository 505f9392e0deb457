"""The one typed config loader: TOML tables -> dataclasses, checked against type hints.

Suite spec files (``envs/*.toml``) and training configs (``agents/*.toml``) are both read
through :func:`build_dataclass`: every key must be a field of the dataclass, every value
must fit the field's type hint (nested dataclasses come from sub-tables; arrays become
tuples or lists as the hint says; tables fill ``dict[str, X]`` fields; an int is accepted
where a float is expected; TOML ``true`` is never a number), and the dataclass's own
``__post_init__`` checks ranges. An error names the file, the table, the key and, for a
misspelt key, the closest valid one.
Stdlib only: the lowest layer, so the suites may use it.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; ``ValueError`` naming the file when it is not valid TOML."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML ({err})") from err
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a UTF-8 text file ({err})") from err


def expect_table(value: Any, where: str) -> dict:
    """``value`` if it is a TOML table, else a ``ValueError`` naming ``where``."""
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a table, got {value!r}")
    return value


def build_dataclass(cls: type, table: dict, where: str) -> Any:
    """``cls(**table)`` after checking every key against ``cls``'s fields and type hints.

    Args:
        where: how errors name this table, e.g. ``"agents/x.toml: [ppo]"``.
    """
    table = expect_table(table, where)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    hints = typing.get_type_hints(cls)
    for key in table:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            suggestion = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"{where}: unknown key {key!r}{suggestion} (valid keys: {', '.join(names)})"
            )
    kwargs = {key: convert(value, hints[key], f"{where}: {key}") for key, value in table.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{where}: {err}") from err


def convert(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against the type ``hint`` and convert it; ``ValueError`` if it
    does not fit."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(value, typing.get_args(hint), where)
    if hint is type(None):
        if value is not None:
            raise ValueError(f"{where} must be empty (None), got {value!r}")
        return None
    if origin is tuple:
        return _convert_tuple(value, typing.get_args(hint), where)
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where} must be an array, got {value!r}")
        (inner,) = typing.get_args(hint)
        return [convert(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        key_hint, inner = typing.get_args(hint)
        table = expect_table(value, where)
        return {
            convert(k, key_hint, where): convert(v, inner, f"{where}.{k}") for k, v in table.items()
        }
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        return build_dataclass(hint, value, where)
    check = _SCALARS.get(hint)
    if check is None:
        if isinstance(hint, type) and not isinstance(value, hint):
            raise ValueError(f"{where} must be a {hint.__name__}, got {value!r}")
        return value
    ok, converted = check(value)
    if not ok:
        raise ValueError(f"{where} must be {_DESCRIBE[hint]}, got {value!r}")
    return converted


def _convert_union(value: Any, options: tuple, where: str) -> Any:
    errors = []
    for option in options:
        try:
            return convert(value, option, where)
        except ValueError as err:
            errors.append(str(err))
    real = [e for o, e in zip(options, errors, strict=True) if o is not type(None)]
    raise ValueError(real[0] if real else errors[0])


def _convert_tuple(value: Any, args: tuple, where: str) -> tuple:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{where} must be an array, got {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if len(value) != len(args):
        raise ValueError(f"{where} must be an array of {len(args)} values, got {value!r}")
    return tuple(
        convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
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
_DESCRIBE = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def differing_settings(there: dict, here: dict) -> list[tuple[str, Any, Any]]:
    """``(key, value there, value here)`` for each setting that differs between two
    (nested) tables, keys dotted (``trainer.lr``) and sorted, ``"absent"`` where one side
    lacks the key: what an error about mismatched settings should name, and no more."""
    first, second = _flat(there), _flat(here)
    return [
        (key, first.get(key, "absent"), second.get(key, "absent"))
        for key in sorted(set(first) | set(second))
        if first.get(key, "absent") != second.get(key, "absent")
    ]


def _flat(table: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
