"""Where the data shipped inside the package lives: the one definition of those paths.

The repository's top-level ``envs/`` (suite specs) and ``agents/`` (training configs and
the shipped policy, ``default.json`` + ``default.pt``) are the only source of that data.
``curriculum_rl/data/envs`` and ``curriculum_rl/data/agents`` are symlinks to them
(``../../envs``, ``../../agents``), so:

* a source checkout and an editable install (``pip install -e .``) read the top-level
  files through the links;
* a wheel or sdist build (``pip install .``) follows the links and packs real copies of
  those files under ``curriculum_rl/data/`` (``[tool.setuptools.package-data]``).

tests/test_packaging.py checks both: the package's data resolves to the top-level files,
and a freshly built wheel holds them byte for byte.

Stdlib only, importing nothing else from ``curriculum_rl``: it is the lowest layer of the
import-linter contract in pyproject.toml, so every module may use it. Paths are relative to
this file rather than :mod:`importlib.resources`: that works the same for a checkout, an
editable install and a wheel, and gives real files (torch and tomllib read them).
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_POLICY = "default"
"""The name of the shipped pretrained policy (``agents/default.json`` + ``.pt``)."""

DEFAULT_TRAINING_CONFIG = "default.toml"
"""The training config read when none is given (``agents/default.toml``)."""

_DATA = Path(__file__).resolve().parent / "data"


def packaged_data_dir() -> Path:
    """The package's data folder (``curriculum_rl/data``), holding ``envs/`` and ``agents/``."""
    return _DATA


def packaged_envs_dir() -> Path:
    """The shipped suite specs (``envs/*.toml``)."""
    return _DATA / "envs"


def packaged_agents_dir() -> Path:
    """The shipped training configs and policy (``agents/``)."""
    return _DATA / "agents"


def default_policy_path() -> Path:
    """The shipped pretrained policy's metadata (``agents/default.json``); its weights are
    :func:`default_policy_weights_path`, beside it."""
    return packaged_agents_dir() / f"{DEFAULT_POLICY}.json"


def default_policy_weights_path() -> Path:
    """The shipped pretrained policy's weights (``agents/default.pt``)."""
    return packaged_agents_dir() / f"{DEFAULT_POLICY}.pt"


def default_training_config_path() -> Path:
    """The shipped training config (``agents/default.toml``)."""
    return packaged_agents_dir() / DEFAULT_TRAINING_CONFIG
