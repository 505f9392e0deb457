"""Suites declared in TOML files (``envs/*.toml``); the format is documented in docs/suites.md.

A file holds either one suite, as a ``[suite]`` table, or several, as ``[suites.NAME]``
tables. Each table names a ``kind`` and sets that suite's constructor arguments::

    [suite]
    kind = "synthetic"          # synthetic | sequence | sequence-family | ... | factory
    name = "synthetic-train"
    n_train = 1024
    [[suite.settings]]          # synthetic only; omit for the default mix
    name = "scales"
    scale_spread = [30.0, 300.0]

Keys are checked against the constructor's fields, with their types: an unknown key or a
value of the wrong type is a ``ValueError`` naming the file, the table and the key. A
path ``envs/NAME.toml`` is looked up relative to the working directory first, then in the
package's data (``curriculum_rl/data/envs``, the repository's ``envs/``; see
:mod:`curriculum_rl.resources`).
"""

from __future__ import annotations

from pathlib import Path

from curriculum_rl.resources import packaged_envs_dir
from curriculum_rl.suites.base import Suite
from curriculum_rl.suites.digits import DigitsSuite
from curriculum_rl.suites.digits_conv import DigitsConvSuite
from curriculum_rl.suites.mnist1d import Mnist1dSuite
from curriculum_rl.suites.near_zero import NearZeroSuite
from curriculum_rl.suites.scales import ScalesSuite
from curriculum_rl.suites.sequence import SequenceSuite
from curriculum_rl.suites.sequence_family import SequenceFamilySuite
from curriculum_rl.suites.synthetic import SyntheticSuite
from curriculum_rl.suites.tabular import TabularSuite
from curriculum_rl.suites.teacher import TeacherAuxSuite
from curriculum_rl.suites.tokens import TokensSuite
from curriculum_rl.suites.tokens_family import TokensFamilySuite
from curriculum_rl.typed_config import build_dataclass, expect_table, read_toml

SUITE_KINDS: dict[str, type] = {
    "synthetic": SyntheticSuite,
    "digits": DigitsSuite,
    "mnist1d": Mnist1dSuite,
    "sequence": SequenceSuite,
    "sequence-family": SequenceFamilySuite,
    "tabular": TabularSuite,
    "digits-conv": DigitsConvSuite,
    "tokens": TokensSuite,
    "tokens-family": TokensFamilySuite,
    "gradnorm-scales": ScalesSuite,
    "near-zero": NearZeroSuite,
    "teacher-aux": TeacherAuxSuite,
}
"""``kind`` values of a suite table -> the dataclass its other keys configure. The extra
kind ``"factory"`` takes one key, ``factory = "package.module:fn"`` or ``"file.py:fn"``
(a relative file path is relative to the TOML file)."""


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
    doc = read_toml(found)
    unknown = sorted(set(doc) - {"suite", "suites"})
    if unknown:
        raise ValueError(
            f"{found}: unknown top-level key {unknown[0]!r}; use a [suite] table or "
            "[suites.NAME] tables"
        )
    if ("suite" in doc) == ("suites" in doc):
        raise ValueError(f"{found}: give exactly one of a [suite] table or [suites.NAME] tables")
    if "suite" in doc:
        table = expect_table(doc["suite"], f"{found}: [suite]")
        return found, {str(table.get("name", found.stem)): table}
    suites = expect_table(doc["suites"], f"{found}: [suites]")
    if not suites:
        raise ValueError(f"{found}: [suites] holds no suite tables")
    return found, {name: expect_table(t, f"{found}: [suites.{name}]") for name, t in suites.items()}


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
