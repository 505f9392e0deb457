"""Apply a controller inside your own PyTorch training loop.

:class:`CurriculumSession` (the object your loop talks to: losses in, a weighted loss and,
every ``interval`` steps, task weights and sampling probabilities out; checkpointable,
device-agnostic, multi-process aware) and :class:`GradientProbe` (per-task gradient
alignment on one shared layer of your model). Only torch is needed; the framework
integrations (a task sampler, Lightning, Hugging Face) are in
:mod:`curriculum_rl.integrations`.
"""

from curriculum_rl.session.grads import GradientProbe
from curriculum_rl.session.session import CurriculumSession

__all__ = ["CurriculumSession", "GradientProbe"]
