"""MNIST-1D: tasks on the 40-sample 1D digit signals of the ``mnist1d`` package.

The signals come from the package's *local* generator, ``mnist1d.data.make_dataset``,
with its default arguments (``get_dataset_args()``) except the seed and the number of
samples. ``get_dataset`` is never called: it downloads a pickle by default and writes
files to the working directory. Tasks differ in kind, difficulty and noise:

==================  ==============  =====  ============================================
task                kind            out    what / constant-predictor baseline
==================  ==============  =====  ============================================
``class``           classification  10     the digit; ~10% accuracy
``class_shifted``   classification  10     the digit, under an extra random circular
                                           shift and extra white noise (harder); ~10%
``low_high``        classification  2      digit >= 5 (a coarse grouping); ~50%
``template_area``   regression      1      area under the digit's clean template (a
                                           class statistic); MSE ~1 (standardized)
``energy``          regression      1      log mean square of the signal (a property
                                           of the input, not of the class); MSE ~1
==================  ==============  =====  ============================================

All tasks share one pool of generated signals, split into train/val/test by the seed.
Generation takes about a second; instances are cached in-process by seed.
"""

from __future__ import annotations

import random
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

MNIST1D_TASKS: tuple[TaskSpec, ...] = (
    TaskSpec("class", "classification", 10, "accuracy"),
    TaskSpec("class_shifted", "classification", 10, "accuracy"),
    TaskSpec("low_high", "classification", 2, "accuracy"),
    TaskSpec("template_area", "regression", 1, "mse"),
    TaskSpec("energy", "regression", 1, "mse"),
)
"""Every task the suite offers, in its default order."""

SIGNAL_LENGTH = 40
SPLITS = ("train", "val", "test")


@lru_cache(maxsize=16)
def generate_signals(seed: int, num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """``num_samples`` signals (n, 40) and digit labels from mnist1d's local generator.

    ``make_dataset`` reseeds the *global* ``random`` and ``numpy.random`` state; both are
    restored afterwards so that generating a suite never perturbs the caller's streams.
    """
    from mnist1d.data import get_dataset_args, make_dataset  # slow import (matplotlib)

    args = get_dataset_args()
    args.seed = seed
    args.num_samples = num_samples
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x = np.concatenate([data["x"], data["x_test"]]).astype(np.float32)
    y = np.concatenate([data["y"], data["y_test"]]).astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _template_areas() -> np.ndarray:
    """Area under each digit's clean template, in label order."""
    from mnist1d.data import get_templates

    return get_templates()["x"].sum(axis=1)


@dataclass(frozen=True)
class Mnist1dSuite:
    """Tasks on MNIST-1D signals (see the module docstring).

    Attributes:
        tasks: task names to include (any subset of :data:`MNIST1D_TASKS`); ``None``
            for all.
        num_samples: signals generated per instance (a multiple of 10 is used).
        val_fraction, test_fraction: share of the signals in each held-out split.
        extra_shift: largest extra circular shift (samples) of ``class_shifted``.
        extra_noise: std of the extra white noise of ``class_shifted`` (signals have
            std 1).
        hidden: widths of the shared MLP trunk.
        auxiliary: task names that only help and do not count in the score; ``None``:
            none (every task is a target).
    """

    name: str = "mnist1d"
    tasks: tuple[str, ...] | None = None
    num_samples: int = 4000
    val_fraction: float = 0.15
    test_fraction: float = 0.25
    extra_shift: int = 8
    extra_noise: float = 0.5
    hidden: tuple[int, ...] = (128, 64)
    auxiliary: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.describe()  # fail early on a bad task name or auxiliary choice
        if self.num_samples < 30:
            raise ValueError(f"suite {self.name!r}: num_samples must be >= 30")
        if self.extra_shift < 0 or self.extra_noise < 0:
            raise ValueError(f"suite {self.name!r}: extra_shift and extra_noise must be >= 0")
        split_sizes(self.num_samples, self.val_fraction, self.test_fraction)

    def describe(self) -> list[TaskSpec]:
        specs = select_tasks(self.name, MNIST1D_TASKS, self.tasks)
        return mark_auxiliary(self.name, specs, self.auxiliary)

    def sample(self, seed: int) -> SuiteInstance:
        rng = np.random.default_rng(seed)
        x, labels = generate_signals(int(rng.integers(2**31)), self.num_samples)
        n_train, n_val, _ = split_sizes(len(x), self.val_fraction, self.test_fraction)
        order = rng.permutation(len(x))
        rows = {"train": order[:n_train], "val": order[n_train : n_train + n_val]}
        rows["test"] = order[n_train + n_val :]
        inputs = {"plain": x, "shifted": self._perturb(x, rng)}
        targets = _targets(x, labels, rows["train"])
        specs = self.describe()
        data = [self._task_data(spec.name, inputs, targets, rows) for spec in specs]
        return SuiteInstance(
            name=self.name,
            tasks=specs,
            data=data,
            body=MLPBody(SIGNAL_LENGTH, self.hidden),
            input_shape=(SIGNAL_LENGTH,),
            info={"seed": seed, "num_samples": len(x), "split": [len(r) for r in rows.values()]},
        )

    def _perturb(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Each signal rolled by its own random shift, plus white noise."""
        shifts = rng.integers(-self.extra_shift, self.extra_shift + 1, size=len(x))
        cols = (np.arange(x.shape[1])[None, :] - shifts[:, None]) % x.shape[1]
        rolled = np.take_along_axis(x, cols, axis=1)
        return (rolled + self.extra_noise * rng.standard_normal(x.shape)).astype(np.float32)

    @staticmethod
    def _task_data(name: str, inputs: dict, targets: dict, rows: dict) -> TaskData:
        x = inputs["shifted" if name == "class_shifted" else "plain"]
        y = targets[name]
        pieces = []
        for split in SPLITS:
            r = rows[split]
            pieces += [
                torch.as_tensor(x[r]),
                as_regression(y[r]) if y.dtype.kind == "f" else as_classes(y[r]),
            ]
        return TaskData(*pieces)


def _targets(x: np.ndarray, labels: np.ndarray, train_rows: np.ndarray) -> dict[str, np.ndarray]:
    """Every task's targets for every signal; regression targets z-scored on train rows."""
    energy = np.log(np.mean(x.astype(np.float64) ** 2, axis=1))
    return {
        "class": labels,
        "class_shifted": labels,
        "low_high": (labels >= 5).astype(np.int64),
        "template_area": standardize(_template_areas()[labels], train_rows),
        "energy": standardize(energy, train_rows),
    }
