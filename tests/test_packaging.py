"""The shipped data has one source: the top-level envs/ and agents/ (curriculum_rl/resources.py).

The package's ``data/envs`` and ``data/agents`` must hold exactly those files, byte for byte
(the policy weights included): through the symlinks in a checkout or an editable install,
as copies in a wheel.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from curriculum_rl import resources

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"envs": ROOT / "envs", "agents": ROOT / "agents"}


def _files(folder: Path) -> dict[str, bytes]:
    """Every file directly in ``folder`` (hidden ones aside, as package-data's globs skip
    them), name -> bytes."""
    return {
        p.name: p.read_bytes()
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith(".")
    }


def _assert_same(got: dict[str, bytes], expected: dict[str, bytes], where: str) -> None:
    """Same names, same bytes (named on failure rather than diffed: the weights are binary)."""
    assert sorted(got) == sorted(expected), where
    differ = [name for name in expected if got[name] != expected[name]]
    assert not differ, f"{where}: these files differ from their source: {differ}"


def test_source_folders_hold_the_shipped_data():
    assert {"train.toml", "heldout.toml"} <= set(_files(SOURCES["envs"]))
    assert {"default.toml", "default.json", "default.pt"} <= set(_files(SOURCES["agents"]))


def test_package_data_is_the_top_level_folders_byte_for_byte():
    packaged = {"envs": resources.packaged_envs_dir(), "agents": resources.packaged_agents_dir()}
    for name, folder in packaged.items():
        assert folder.parent == resources.packaged_data_dir()
        _assert_same(_files(folder), _files(SOURCES[name]), f"{folder} vs {SOURCES[name]}")
    named = {
        resources.default_policy_path(): "default.json",
        resources.default_policy_weights_path(): "default.pt",
        resources.default_training_config_path(): "default.toml",
    }
    for path, source in named.items():
        assert path.parent == resources.packaged_agents_dir()
        assert path.read_bytes() == (SOURCES["agents"] / source).read_bytes()


def test_a_checkout_links_its_data_rather_than_copying_it():
    package = Path(resources.__file__).resolve().parent
    if package != ROOT / "curriculum_rl":
        pytest.skip(f"curriculum_rl is installed from {package}, not from this checkout")
    for name, source in SOURCES.items():
        link = package / "data" / name
        # A committed copy would drift from the source (the problem this layout removes).
        assert link.is_symlink(), f"{link} must be a symlink to ../../{name}, not a copy"
        assert link.resolve() == source.resolve()
    assert sorted(p.name for p in (package / "data").iterdir()) == ["agents", "envs"]


def _copy_project(dest: Path) -> Path:
    """The files a build reads, copied with their symlinks, so the build writes nothing
    (build/, *.egg-info) into the working tree and finds no stale build/ there."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    for name in ("curriculum_rl", "envs", "agents"):
        shutil.copytree(
            ROOT / name,
            dest / name,
            symlinks=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
        )
    return dest


def _expected_data() -> dict[str, bytes]:
    """What ``curriculum_rl/data/`` must hold: ``envs/NAME`` and ``agents/NAME`` -> bytes."""
    return {
        f"{name}/{file}": content
        for name, folder in SOURCES.items()
        for file, content in _files(folder).items()
    }


@pytest.mark.slow  # builds a wheel
def test_a_built_wheel_carries_the_top_level_data(tmp_path):
    project = _copy_project(tmp_path / "project")
    out = tmp_path / "wheel"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", str(project)),
            *("--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("curriculum_rl-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        data = {
            name.removeprefix("curriculum_rl/data/"): archive.read(name)
            for name in archive.namelist()
            if name.startswith("curriculum_rl/data/") and not name.endswith("/")
        }
        assert "curriculum_rl/resources.py" in archive.namelist()
    _assert_same(data, _expected_data(), f"{wheel.name}: curriculum_rl/data/")


def test_a_built_sdist_carries_the_data_as_files(tmp_path):
    # The sdist (what `python -m build` turns into a wheel) holds the files, not the links.
    project = _copy_project(tmp_path / "project")
    code = "import sys, setuptools.build_meta as b; print(b.build_sdist(sys.argv[1]))"
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "sdist")],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sdist = tmp_path / "sdist" / result.stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if "/curriculum_rl/data/" in m.name]
        assert not [m.name for m in members if m.issym() or m.islnk()]
        data = {
            m.name.split("/curriculum_rl/data/", 1)[1]: archive.extractfile(m).read()
            for m in members
            if m.isfile()
        }
    _assert_same(data, _expected_data(), f"{sdist.name}: curriculum_rl/data/")
