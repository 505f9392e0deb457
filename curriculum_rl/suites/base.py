"""The task-suite protocol: what a multitask problem hands to the trainer.

A *suite* is a seeded recipe (``Suite.sample(seed)``) that yields a concrete
``SuiteInstance``: K tasks over one shared input space, each with train/val/test
tensors, a loss kind and a metric with its direction, plus the trunk (shared body)
suited to the inputs. Everything is plain torch tensors, so a user's own suite is a
function returning a ``SuiteInstance`` (see README, "Your own suite").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

TaskKind = Literal["regression", "classification", "tagging"]

# Loss per kind: regression -> mean squared error over the outputs; classification ->
# cross-entropy over `out_dim` classes; tagging -> per-token cross-entropy (sequence bodies).
METRICS: dict[str, bool] = {"mse": False, "accuracy": True, "token_accuracy": True}
"""Known metric names and whether higher is better."""


@dataclass(frozen=True)
class TaskSpec:
    """One task of a suite.

    Attributes:
        name: unique within the suite.
        kind: ``"regression"`` (targets ``(n, out_dim)`` float), ``"classification"``
            (targets ``(n,)`` int class ids in ``[0, out_dim)``) or ``"tagging"``
            (targets ``(n, L)`` int class ids, one per token of a sequence body).
        out_dim: regression outputs or number of classes.
        metric: one of :data:`METRICS` (``mse`` for regression, ``accuracy`` for
            classification, ``token_accuracy`` for tagging).
        auxiliary: ``True`` for a task that is trained only to help the others (more
            data, a related signal) and does not count in the score: J, the reward and
            the trainer's default objective read the *target* tasks, those with
            ``auxiliary=False`` (the default, so every task is a target unless marked).
            An instance keeps at least one target task.
    """

    name: str
    kind: TaskKind
    out_dim: int
    metric: str
    auxiliary: bool = False

    def __post_init__(self) -> None:
        expected = {"regression": "mse", "classification": "accuracy", "tagging": "token_accuracy"}
        if self.kind not in expected:
            raise ValueError(
                f"task {self.name!r}: unknown kind {self.kind!r}; use one of {sorted(expected)}"
            )
        if self.metric != expected[self.kind]:
            raise ValueError(
                f"task {self.name!r}: metric {self.metric!r} does not fit kind {self.kind!r}; "
                f"use {expected[self.kind]!r}"
            )
        if self.out_dim < 1 or (self.kind != "regression" and self.out_dim < 2):
            raise ValueError(f"task {self.name!r}: out_dim={self.out_dim} is too small")
        if not isinstance(self.auxiliary, bool):
            raise ValueError(f"task {self.name!r}: auxiliary must be True or False")

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.metric]

    @property
    def is_target(self) -> bool:
        """Whether the task counts in the score (the opposite of ``auxiliary``)."""
        return not self.auxiliary


@dataclass
class TaskData:
    """Train/val/test tensors of one task; inputs share the suite's input shape.

    Each field may be given as a torch tensor or as anything numpy reads as a numeric
    array (a numpy array, as scikit-learn hands out, a nested list, a pandas frame): it
    is stored as a tensor with the same dtype (copied only when numpy must, e.g. for a
    reversed view). Anything else raises ``ValueError`` naming the field, as the suite's
    other checks do.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def __post_init__(self) -> None:
        for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            setattr(self, name, _as_tensor(getattr(self, name), name))

    def splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return {
            "train": (self.x_train, self.y_train),
            "val": (self.x_val, self.y_val),
            "test": (self.x_test, self.y_test),
        }


def _as_tensor(value: object, field: str) -> torch.Tensor:
    """``value`` as a tensor: tensors as they are, numeric array-likes through numpy."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (str, bytes, dict)) or value is None:
        raise ValueError(_array_expected(field, value))
    try:
        array = np.ascontiguousarray(value)
    except (TypeError, ValueError) as err:  # ragged lists, objects numpy cannot read
        raise ValueError(f"{_array_expected(field, value)} ({err})") from err
    if array.dtype.kind not in "biuf":  # bool, int, unsigned, float; not objects or text
        raise ValueError(f"{_array_expected(field, value)}; numpy reads it as dtype {array.dtype}")
    return torch.from_numpy(array)


def _array_expected(field: str, value: object) -> str:
    return (
        f"TaskData.{field} must be a torch tensor or a numeric array (numpy array, nested "
        f"list), got {type(value).__name__}"
    )


@dataclass(frozen=True)
class MLPBody:
    """A ReLU MLP over flat inputs; the trainer runs it as batched matmuls (fast path)."""

    in_dim: int
    hidden: tuple[int, ...] = (64, 64)

    @property
    def out_dim(self) -> int:
        return self.hidden[-1] if self.hidden else self.in_dim


@dataclass(frozen=True)
class ModuleBody:
    """Any ``nn.Module`` body, built by ``factory()``; the trainer stacks N copies and
    evaluates them with ``torch.func.vmap``. It maps an input batch ``(B, *input_shape)``
    to features ``(B, out_dim)`` or, for sequence bodies, per-token features
    ``(B, L, out_dim)``. It must be vmap-compatible (no in-place ops on inputs, no
    data-dependent control flow)."""

    factory: Callable[[], nn.Module]
    out_dim: int


Body = MLPBody | ModuleBody


@dataclass
class SuiteInstance:
    """A concrete multitask problem: what one training run consumes.

    Attributes:
        name: suite name (for reports).
        tasks: the K task specs.
        data: one :class:`TaskData` per task, in the same order.
        body: the shared trunk suited to the inputs. The trainer adds one shared linear
            projection on top (the *last shared layer*, on which gradient alignment is
            measured) and one head per task.
        input_shape: shape of one input example (without the batch dimension).
        info: free-form description of how the instance was generated (knob values).
    """

    name: str
    tasks: list[TaskSpec]
    data: list[TaskData]
    body: Body
    input_shape: tuple[int, ...]
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    @property
    def target_tasks(self) -> list[int]:
        """Indices of the tasks that count in the score (the non-auxiliary ones): the
        trainer's objective unless a run names its own ``objective_tasks``."""
        return [i for i, t in enumerate(self.tasks) if t.is_target]

    def validate(self) -> None:
        """Raise ``ValueError`` naming the problem if the instance is inconsistent."""
        if not self.tasks:
            raise ValueError(f"suite {self.name!r} has no tasks")
        if len(self.tasks) != len(self.data):
            raise ValueError(
                f"suite {self.name!r}: {len(self.tasks)} task specs but {len(self.data)} "
                "data entries; give one TaskData per TaskSpec"
            )
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"suite {self.name!r}: task names must be unique, got {names}")
        if not any(t.is_target for t in self.tasks):
            raise ValueError(
                f"suite {self.name!r}: every task ({', '.join(names)}) is auxiliary, so "
                "nothing would count in the score; mark at least one task as a target "
                "(TaskSpec(..., auxiliary=False), the default)"
            )
        for spec, data in zip(self.tasks, self.data, strict=True):
            for split, (x, y) in data.splits().items():
                self._validate_split(spec, split, x, y)

    def _validate_split(self, spec: TaskSpec, split: str, x: torch.Tensor, y: torch.Tensor) -> None:
        where = f"suite {self.name!r}, task {spec.name!r}, {split} split"
        if len(x) == 0:
            raise ValueError(f"{where}: no examples")
        if len(x) != len(y):
            raise ValueError(f"{where}: {len(x)} inputs but {len(y)} targets")
        if tuple(x.shape[1:]) != tuple(self.input_shape):
            raise ValueError(
                f"{where}: input shape {tuple(x.shape[1:])} differs from the suite's "
                f"input_shape {tuple(self.input_shape)}"
            )
        if not torch.isfinite(x.float()).all() or not torch.isfinite(y.float()).all():
            raise ValueError(f"{where}: contains NaN or inf")
        if spec.kind == "regression":
            if y.dim() != 2 or y.shape[1] != spec.out_dim:
                hint = " (for 1-D targets, y.reshape(-1, 1))" if y.dim() == 1 else ""
                raise ValueError(
                    f"{where}: regression targets must be (n, {spec.out_dim}), got "
                    f"{tuple(y.shape)}{hint}"
                )
        else:
            want = 1 if spec.kind == "classification" else 2
            if y.dim() != want or y.dtype.is_floating_point:
                raise ValueError(
                    f"{where}: {spec.kind} targets must be an integer tensor of rank {want}"
                )
            if y.min() < 0 or y.max() >= spec.out_dim:
                raise ValueError(f"{where}: class ids must lie in [0, {spec.out_dim})")


@runtime_checkable
class Suite(Protocol):
    """A seeded recipe of suite instances (a fixed data set, or a distribution)."""

    name: str

    def sample(self, seed: int) -> SuiteInstance:
        """Return the instance for ``seed``; the same seed gives the same instance."""
        ...

    def describe(self) -> list[TaskSpec]:
        """The tasks an instance has (for ``curriculum-rl suites``); for a distribution
        with a varying number of tasks, those of a representative instance."""
        ...
