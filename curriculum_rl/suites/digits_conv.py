"""Digits-conv: single scikit-learn 8x8 digits as images, on a small convolutional trunk.

Each example is one digit of ``sklearn.datasets.load_digits`` as a ``(1, 8, 8)`` image in
[0, 1]; the trunk is a :class:`DigitsCNN` (two convolutions and a linear layer) handed to
the trainer as a ``ModuleBody``. The tasks read the same image at different levels, on
different scales; regression targets stay in the data set's units (pixels of 0-16), not
standardised:

==============  ==============  ===  ==================================================
task            kind            out  what (scale of the raw target: mean, variance)
==============  ==============  ===  ==================================================
``class``       classification  10   the digit; ~10% for a constant guess
``ink``         regression      1    ink density: the mean raw pixel value (4.9, 0.29)
``mirror``      regression      1    left-right asymmetry: mean absolute difference
                                     between the image and its mirror (3.6, 1.1)
``top_heavy``   classification  2    more ink in the top half than the bottom; ~55%
``row_peak``    classification  8    the row with the most ink; *auxiliary* by default:
                                     a layout signal that serves the others, not scored
==============  ==============  ===  ==================================================

The tasks differ from those of the ``digits`` validation suite (pairs of digits on an
MLP). Every seed draws its own train/val/test split of the 1797 images (60/15/25%);
``load_digits`` ships with scikit-learn and never downloads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from curriculum_rl.suites.base import ModuleBody, SuiteInstance, TaskData, TaskSpec
from curriculum_rl.suites.digits import load_digit_images
from curriculum_rl.suites.selection import (
    as_classes,
    as_regression,
    mark_auxiliary,
    select_tasks,
    split_rows,
)

DIGITS_CONV_TASKS: tuple[TaskSpec, ...] = (
    TaskSpec("class", "classification", 10, "accuracy"),
    TaskSpec("ink", "regression", 1, "mse"),
    TaskSpec("mirror", "regression", 1, "mse"),
    TaskSpec("top_heavy", "classification", 2, "accuracy"),
    TaskSpec("row_peak", "classification", 8, "accuracy", auxiliary=True),
)
"""Every task the suite offers, in its default order, with the default auxiliary flags."""

SPLITS = ("train", "val", "test")


class DigitsCNN(nn.Module):
    """(B, 1, 8, 8) images -> (B, out_dim) features: conv 3x3, strided conv 3x3 (8x8 ->
    4x4), linear. Plain ops only, so N copies run under ``torch.func.vmap``."""

    def __init__(self, channels: int = 8, out_dim: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1)
        self.fc = nn.Linear(2 * channels * 16, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv1(x))
        h = torch.relu(self.conv2(h))
        return torch.relu(self.fc(h.flatten(1)))


@dataclass(frozen=True)
class DigitsCNNFactory:
    """Builds a :class:`DigitsCNN`; a frozen dataclass so equal settings give equal bodies
    (the trainer batches only runs whose bodies compare equal)."""

    channels: int = 8
    out_dim: int = 64

    def __call__(self) -> nn.Module:
        return DigitsCNN(self.channels, self.out_dim)


@dataclass(frozen=True)
class DigitsConvSuite:
    """Single digits as images on a convolutional trunk (module docstring).

    Attributes:
        tasks: task names to include (any subset of :data:`DIGITS_CONV_TASKS`, in the
            given order); ``None`` for all.
        auxiliary: task names that only help (not scored); ``None`` keeps the default
            (``row_peak``), ``[]`` makes every task a target.
        val_fraction, test_fraction: share of the 1797 images per held-out split.
        channels: width of the first convolution (the second has twice as many).
        out_dim: width of the trunk's features.
    """

    name: str = "digits-conv"
    tasks: tuple[str, ...] | None = None
    auxiliary: tuple[str, ...] | None = None
    val_fraction: float = 0.15
    test_fraction: float = 0.25
    channels: int = 8
    out_dim: int = 64

    def __post_init__(self) -> None:
        if self.channels < 1 or self.out_dim < 1:
            raise ValueError(f"suite {self.name!r}: channels and out_dim must be >= 1")
        self.describe()  # fail early on a bad task name or auxiliary choice
        split_rows(1797, self.val_fraction, self.test_fraction, np.random.default_rng(0))

    def describe(self) -> list[TaskSpec]:
        specs = select_tasks(self.name, DIGITS_CONV_TASKS, self.tasks)
        return mark_auxiliary(self.name, specs, self.auxiliary)

    def sample(self, seed: int) -> SuiteInstance:
        images, labels = load_digit_images()
        rows = split_rows(
            len(images), self.val_fraction, self.test_fraction, np.random.default_rng(seed)
        )
        x = torch.tensor(images).unsqueeze(1)  # (n, 1, 8, 8) in [0, 1], a writable copy
        targets = _targets(images * 16.0, labels)  # raw pixel units, as the data set has them
        specs = self.describe()
        data = [
            TaskData(*(t for s in SPLITS for t in (x[rows[s]], targets[spec.name][rows[s]])))
            for spec in specs
        ]
        return SuiteInstance(
            name=self.name,
            tasks=specs,
            data=data,
            body=ModuleBody(DigitsCNNFactory(self.channels, self.out_dim), self.out_dim),
            input_shape=(1, 8, 8),
            info={"seed": seed, "images": {s: len(rows[s]) for s in SPLITS}},
        )


def _targets(raw: np.ndarray, labels: np.ndarray) -> dict[str, torch.Tensor]:
    """Every task's targets for every image, from raw (0-16) pixel values."""
    top, bottom = raw[:, :4].sum((1, 2)), raw[:, 4:].sum((1, 2))
    return {
        "class": as_classes(labels),
        "ink": as_regression(raw.mean((1, 2))),
        "mirror": as_regression(np.abs(raw - raw[:, :, ::-1]).mean((1, 2))),
        "top_heavy": as_classes(top > bottom),
        "row_peak": as_classes(raw.sum(2).argmax(1)),
    }
