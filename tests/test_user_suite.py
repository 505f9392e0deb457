"""User-defined suites: factory specs (file and module), TOML spec files, and their errors."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest

from curriculum_rl.controllers import Uniform
from curriculum_rl.runner import run_controller
from curriculum_rl.suites.digits import DigitsSuite
from curriculum_rl.suites.registry import FixedSuite, resolve_suite, resolve_suites
from curriculum_rl.suites.sequence import SequenceSuite
from curriculum_rl.suites.spec_file import load_suites
from curriculum_rl.suites.synthetic import SyntheticSetting, SyntheticSuite
from curriculum_rl.trainer import TrainerConfig

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "my_suite.py"
CONFIG = TrainerConfig(device="cpu", lr=3e-3)


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


# ---------------------------------------------------------------- factory specs
def test_example_suite_from_file_runs_in_the_trainer(monkeypatch):
    monkeypatch.chdir(ROOT)  # the documented spec is relative to the repository root
    suite = resolve_suite("examples/my_suite.py:factory")
    assert [t.name for t in suite.describe()] == ["shape", "frequency", "amplitude"]
    small = type(suite)(n_train=300, n_val=60, n_test=120)
    instances = [small.sample(0), small.sample(1)]
    records = run_controller(instances, [0, 1], Uniform(), budget=40, interval=20, config=CONFIG)
    for record in records:
        assert not record.diverged
        assert all(math.isfinite(m) for m in record.final_test_metric)
    # Loading the file again reuses the module: bodies compare equal and can share a trainer.
    assert resolve_suite(f"{EXAMPLE}:factory").sample(0).body == instances[0].body


def test_factory_returning_an_instance_becomes_a_fixed_suite():
    suite = resolve_suite(f"{EXAMPLE}:fixed_instance")
    assert isinstance(suite, FixedSuite) and suite.name == "waves"
    assert suite.sample(0) is suite.sample(1)
    (record,) = run_controller([suite.sample(0)], [0], Uniform(), 20, 10, CONFIG)
    assert len(record.final_test_metric) == 3


def test_package_module_factory(tmp_path, monkeypatch):
    write(
        tmp_path / "my_pkg_suites.py",
        """
        from curriculum_rl.suites.sequence import SequenceSuite

        def tiny():
            return SequenceSuite(tasks=("count", "prev_token"), n_train=200, n_val=40, n_test=80)
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = resolve_suite("my_pkg_suites:tiny")
    (record,) = run_controller([suite.sample(0)], [0], Uniform(), 20, 10, CONFIG)
    assert record.tasks == ["count", "prev_token"]
    assert isinstance(resolve_suite("curriculum_rl.suites.digits:DigitsSuite"), DigitsSuite)


@pytest.mark.parametrize(
    ("body", "spec", "error", "match"),
    [
        ("", "missing.py:f", FileNotFoundError, "not found"),
        ("def g(): pass", "u.py:f", ValueError, "no attribute 'f'.*defines: g"),
        (
            "def f(): return 3",
            "u.py:f",
            ValueError,
            "returned a value of type int; it must return a Suite",
        ),
        ("def f(n): pass", "u.py:f", ValueError, r"needs arguments \(n\)"),
        ("f = 3", "u.py:f", ValueError, "is a value of type int; it must be a Suite"),
        ("", "no_such_module_xyz:f", ValueError, "cannot import module"),
        ("", "u.py", ValueError, "unknown suite"),
    ],
)
def test_factory_errors_name_the_problem(tmp_path, monkeypatch, body, spec, error, match):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "u.py", body)  # each case has its own tmp_path: no module reuse
    with pytest.raises(error, match=match):
        resolve_suite(spec)


# ---------------------------------------------------------------- TOML spec files
def test_toml_suite_loads_with_settings_and_trains(tmp_path):
    path = write(
        tmp_path / "mine.toml",
        """
        [suite]
        kind = "synthetic"
        name = "mine"
        n_train = 64
        n_val = 32
        n_test = 64
        hidden = [16]
        [[suite.settings]]
        name = "two"
        num_tasks = [2, 2]
        scale_spread = [10, 10]
        """,
    )
    suite = resolve_suite(str(path))
    assert suite == SyntheticSuite(
        name="mine",
        n_train=64,
        n_val=32,
        n_test=64,
        hidden=(16,),
        settings=(SyntheticSetting("two", num_tasks=(2, 2), scale_spread=(10.0, 10.0)),),
    )
    (record,) = run_controller([suite.sample(0)], [0], Uniform(), 10, 5, CONFIG)
    assert len(record.tasks) == 2


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ('kind = "digits"\nn_trian = 5', "unknown key 'n_trian'; did you mean 'n_train'"),
        (
            'kind = "synthetic"\n[[suite.settings]]\nrelatedniss = [0, 1]',
            "unknown key 'relatedniss'",
        ),
        ('kind = "digits"\nn_train = "many"', "n_train must be an integer"),
        ('kind = "digits"\ntasks = ["left", "up"]', "no task 'up'; valid tasks"),
        (
            'kind = "synthetic"\n[[suite.settings]]\nnum_tasks = [2]',
            "num_tasks must be an array of 2",
        ),
        ('kind = "images"', "kind must be one of synthetic, digits"),
        ('kind = "synthetic"\n[[suite.settings]]\nconflict = [0.5, 2.0]', "conflict must lie in"),
        ('kind = "factory"\nfactory = "m:f"\nname = "x"', "bad key 'name'"),
    ],
)
def test_toml_errors_name_the_key(tmp_path, table, match):
    path = tmp_path / "bad.toml"
    path.write_text("[suite]\n" + table + "\n")
    with pytest.raises(ValueError, match=match) as err:
        resolve_suite(str(path))
    assert "bad.toml" in str(err.value)


def test_toml_with_several_suites_and_a_factory_kind(tmp_path):
    (tmp_path / "sub").mkdir()
    write(
        tmp_path / "sub" / "made.py",
        """
        from curriculum_rl.suites.digits import DigitsSuite

        def make():
            return DigitsSuite(name="made", tasks=("right",))
        """,
    )
    path = write(
        tmp_path / "several.toml",
        f"""
        [suites.seq]
        kind = "sequence"
        tasks = ["motif"]
        [suites.waves]
        kind = "factory"
        factory = "{EXAMPLE.as_posix()}:factory"
        [suites.relative]
        kind = "factory"
        factory = "sub/made.py:make"   # relative to this file, not to the working directory
        """,
    )
    assert [s.name for s in resolve_suites(str(path))] == ["seq", "waves", "made"]
    assert resolve_suite(f"{path}#seq") == SequenceSuite(name="seq", tasks=("motif",))
    with pytest.raises(ValueError, match="declares 3 suites"):
        resolve_suite(str(path))
    with pytest.raises(ValueError, match="no suite 'nope'"):
        resolve_suite(f"{path}#nope")


def test_shipped_env_files(tmp_path, monkeypatch):
    # That the packaged files equal envs/ byte for byte: tests/test_packaging.py.
    monkeypatch.chdir(tmp_path)  # no envs/ here: the packaged copies answer
    assert resolve_suite("envs/train.toml") == SyntheticSuite()  # mirrors default_settings()
    heldout = load_suites("envs/heldout.toml")
    assert {"digits", "mnist1d", "sequence"} <= set(heldout)
    assert all(
        s.name.startswith("synthetic") for n, s in heldout.items() if n.startswith("synthetic")
    )
    for suite in heldout.values():  # every held-out suite fits a policy with K_max = 8
        assert 1 <= len(suite.describe()) <= 8
    assert len(resolve_suite("envs/heldout-many-tasks.toml").sample(0).tasks) >= 10
    wide = resolve_suite("envs/heldout-wide.toml")  # beyond the training K_max of 12
    assert all(16 <= len(wide.sample(seed).tasks) <= 24 for seed in range(4))
