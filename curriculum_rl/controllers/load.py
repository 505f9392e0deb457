"""``load_controller``: a controller from a heuristic name, a policy file, or the shipped
default policy."""

from __future__ import annotations

from pathlib import Path

from curriculum_rl.controllers.base import Controller
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
    if name_or_path is None or str(name_or_path) == DEFAULT_POLICY:
        path = default_policy_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"the shipped default policy {path} is missing from this installation; "
                "reinstall curriculum-rl or give a policy file or a heuristic name"
            )
        return LearnedController.load(path, name=DEFAULT_POLICY)
    text = str(name_or_path)
    if text in controller_names():
        return make_controller(text)
    path = Path(text)
    if path.exists() or path.with_suffix(".json").is_file():
        return LearnedController.load(path)
    return make_controller(text)  # raises, listing the known names
