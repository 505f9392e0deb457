"""``load_controller``: a controller from a heuristic name, a policy file, or the shipped
default policy; ``controller_identity``: what such a name stands for today."""

from __future__ import annotations

from pathlib import Path

from curriculum_rl.controllers.base import Controller
from curriculum_rl.controllers.learned.artifact import read_metadata
from curriculum_rl.controllers.learned.controller import LearnedController
from curriculum_rl.controllers.registry import controller_names, make_controller
from curriculum_rl.resources import DEFAULT_POLICY, default_policy_path


def load_controller(name_or_path: str | Path | None = None) -> Controller:
    """A controller from a heuristic name, a policy file, or the shipped default.

    Args:
        name_or_path: ``None`` or ``"default"``: the shipped pretrained policy; a
            registered name (``uniform`` and the heuristics of
            :mod:`curriculum_rl.controllers`); or the path of a policy file written by
            ``curriculum-rl train`` (``NAME.json`` or ``NAME.pt``, or a folder holding
            ``policy.json``).

    Raises:
        ValueError: unknown name, or a policy file that is missing, corrupt, tampered with
            or incompatible
            (:class:`~curriculum_rl.controllers.learned.artifact.ArtifactError`).
    """
    path = _policy_path(name_or_path)
    if path is None:
        return make_controller(str(name_or_path))  # raises for an unknown name, listing them
    name = DEFAULT_POLICY if name_or_path is None or str(name_or_path) == DEFAULT_POLICY else None
    return LearnedController.load(path, name=name)


def controller_identity(name_or_path: str | Path | None = None) -> str:
    """What a controller's runs are made by, for telling stored runs apart: a heuristic's
    registered name (its code is this package's), or ``policy sha256:<hex> action <name>``
    for a policy: its weights and the action transform that turns its outputs into
    decisions (a file path or ``default`` may name another policy tomorrow, and the same
    weights under another transform decide otherwise). Reads only the policy's metadata;
    raises as :func:`load_controller` for a missing or corrupt file."""
    path = _policy_path(name_or_path)
    if path is None:
        return str(name_or_path)
    metadata = read_metadata(path)
    return f"policy sha256:{metadata['weights_sha256']} action {metadata['action']['transform']}"


def _policy_path(name_or_path: str | Path | None) -> Path | None:
    """The policy file ``name_or_path`` names, or ``None`` for a registered (or unknown)
    controller name."""
    if name_or_path is None or str(name_or_path) == DEFAULT_POLICY:
        path = default_policy_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"the shipped default policy {path} is missing from this installation; "
                "reinstall curriculum-rl or give a policy file or a heuristic name"
            )
        return path
    text = str(name_or_path)
    if text in controller_names():
        return None
    path = Path(text)
    if path.exists() or path.with_suffix(".json").is_file():
        return path
    return None
