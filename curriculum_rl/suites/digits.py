"""Digits: a MultiMNIST-style composite of scikit-learn's bundled 8x8 digits.

Each example shows two digits side by side (an 8x16 image, flattened to 128 floats in
[0, 1]). The tasks read the same pair differently, so some share features and some
compete for them:

========================  ==============  =====  ===============================
task                      kind            out    constant-predictor baseline
========================  ==============  =====  ===============================
``left``                  classification  10     ~10% accuracy
``right``                 classification  10     ~10% accuracy
``sum_parity``            classification  2      ~50% accuracy (XOR of parities)
``left_greater``          classification  2      ~55% accuracy (left > right: 45%)
``sum``                   regression      1      MSE ~1 (target standardized)
========================  ==============  =====  ===============================

``left`` and ``right`` want features from different halves of the image; ``sum_parity``
needs both digits and a nonlinear combination; ``sum`` and ``left_greater`` want an
ordinal code of each digit, not the one-hot-like code the classifiers prefer.

The 1797 source images are split into train/val/test *before* pairs are composed, so no
source image of a test pair was seen in training. Everything is drawn from the seed;
``load_digits`` ships with scikit-learn and never downloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from curriculum_rl.suites.base import MLPBody, SuiteInstance, TaskData, TaskSpec
from curriculum_rl.suites.selection import (
    as_classes,
    as_regression,
    mark_auxiliary,
    select_tasks,
    split_sizes,
    standardize,
)

DIGITS_TASKS: tuple[TaskSpec, ...] = (
    TaskSpec("left", "classification", 10, "accuracy"),
    TaskSpec("right", "classification", 10, "accuracy"),
    TaskSpec("sum_parity", "classification", 2, "accuracy"),
    TaskSpec("left_greater", "classification", 2, "accuracy"),
    TaskSpec("sum", "regression", 1, "mse"),
)
"""Every task the suite offers, in its default order."""

SPLITS = ("train", "val", "test")


@lru_cache(maxsize=1)
def load_digit_images() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 bundled 8x8 images scaled to [0, 1], and their labels (read once)."""
    from sklearn.datasets import load_digits  # local import: sklearn is slow to import

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    images.setflags(write=False)
    labels = bunch.target.astype(np.int64)
    labels.setflags(write=False)
    return images, labels


@dataclass(frozen=True)
class DigitsSuite:
    """Pairs of scikit-learn digits with related and conflicting tasks (module docstring).

    Attributes:
        tasks: task names to include (any subset of :data:`DIGITS_TASKS`, in the given
            order); ``None`` for all.
        n_train, n_val, n_test: pairs per split (the same pairs serve every task).
        val_fraction, test_fraction: share of the *source images* held out per split.
        hidden: widths of the shared MLP trunk.
        auxiliary: task names that only help and do not count in the score; ``None``:
            none (every task is a target).
    """

    name: str = "digits"
    tasks: tuple[str, ...] | None = None
    n_train: int = 4000
    n_val: int = 500
    n_test: int = 1000
    val_fraction: float = 0.15
    test_fraction: float = 0.25
    hidden: tuple[int, ...] = (128, 64)
    auxiliary: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.describe()  # fail early on a bad task name or auxiliary choice
        if min(self.n_train, self.n_val, self.n_test) < 1:
            raise ValueError(f"suite {self.name!r}: n_train, n_val, n_test must be >= 1")
        split_sizes(1797, self.val_fraction, self.test_fraction)

    def describe(self) -> list[TaskSpec]:
        specs = select_tasks(self.name, DIGITS_TASKS, self.tasks)
        return mark_auxiliary(self.name, specs, self.auxiliary)

    def sample(self, seed: int) -> SuiteInstance:
        images, labels = load_digit_images()
        rng = np.random.default_rng(seed)
        pools = self._split_images(len(images), rng)
        counts = {"train": self.n_train, "val": self.n_val, "test": self.n_test}
        pairs = {s: rng.choice(pools[s], size=(counts[s], 2), replace=True) for s in SPLITS}
        x = {s: _compose(images, pairs[s]) for s in SPLITS}
        targets = _targets(labels, pairs)
        specs = self.describe()
        data = [
            TaskData(*(t for s in SPLITS for t in (x[s], targets[spec.name][s]))) for spec in specs
        ]
        return SuiteInstance(
            name=self.name,
            tasks=specs,
            data=data,
            body=MLPBody(128, self.hidden),
            input_shape=(128,),
            info={
                "seed": seed,
                "pairs": counts,
                "source_images": {s: len(pools[s]) for s in SPLITS},
            },
        )

    def _split_images(self, total: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n_train, n_val, _ = split_sizes(total, self.val_fraction, self.test_fraction)
        order = rng.permutation(total)
        return {
            "train": order[:n_train],
            "val": order[n_train : n_train + n_val],
            "test": order[n_train + n_val :],
        }


def _compose(images: np.ndarray, pairs: np.ndarray) -> torch.Tensor:
    """(n, 2) image ids -> (n, 128) float tensor: left and right digit side by side."""
    side_by_side = np.concatenate([images[pairs[:, 0]], images[pairs[:, 1]]], axis=2)
    return torch.as_tensor(side_by_side.reshape(len(pairs), 128))


def _targets(labels: np.ndarray, pairs: dict[str, np.ndarray]) -> dict[str, dict]:
    """Every task's targets per split; ``sum`` is standardized with train statistics."""
    left = {s: labels[p[:, 0]] for s, p in pairs.items()}
    right = {s: labels[p[:, 1]] for s, p in pairs.items()}
    sums = np.concatenate([left[s] + right[s] for s in SPLITS]).astype(np.float64)
    bounds = np.cumsum([0] + [len(pairs[s]) for s in SPLITS])
    z = standardize(sums, np.arange(bounds[1]))
    return {
        "left": {s: as_classes(left[s]) for s in SPLITS},
        "right": {s: as_classes(right[s]) for s in SPLITS},
        "sum_parity": {s: as_classes((left[s] + right[s]) % 2) for s in SPLITS},
        "left_greater": {s: as_classes(left[s] > right[s]) for s in SPLITS},
        "sum": {s: as_regression(z[bounds[i] : bounds[i + 1]]) for i, s in enumerate(SPLITS)},
    }
