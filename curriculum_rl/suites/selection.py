"""Small helpers shared by the built-in data suites: task subsets, splits, targets, draws."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from curriculum_rl.suites.base import TaskData, TaskSpec


def select_tasks(
    suite: str, catalogue: Sequence[TaskSpec], wanted: Sequence[str] | None
) -> list[TaskSpec]:
    """The specs named in ``wanted`` (in that order), or the whole catalogue for ``None``.

    Raises ``ValueError`` listing the valid names on an unknown, repeated or empty choice,
    so a typo in a TOML file or on the command line says what would have worked.
    """
    by_name = {spec.name: spec for spec in catalogue}
    if wanted is None:
        return list(catalogue)
    if isinstance(wanted, str):  # a bare string would silently iterate over characters
        wanted = (wanted,)
    valid = ", ".join(by_name)
    if not wanted:
        raise ValueError(f"suite {suite!r}: choose at least one task ({valid})")
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        raise ValueError(f"suite {suite!r} has no task {unknown[0]!r}; valid tasks: {valid}")
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"suite {suite!r}: tasks {list(wanted)} name a task twice")
    return [by_name[name] for name in wanted]


def mark_auxiliary(
    suite: str, specs: Sequence[TaskSpec], auxiliary: Sequence[str] | None
) -> list[TaskSpec]:
    """``specs`` with their auxiliary flags set from ``auxiliary``.

    ``None`` keeps the flags the catalogue gives (the suite's default auxiliaries); a
    sequence of names makes exactly those tasks auxiliary and every other one a target
    (``()`` for all targets). Raises ``ValueError`` on a name that is not among ``specs``,
    or when no target task would remain, since then nothing counts in the score.
    """
    if auxiliary is not None:
        if isinstance(auxiliary, str):  # a bare string would iterate over characters
            auxiliary = (auxiliary,)
        names = [spec.name for spec in specs]
        unknown = [name for name in auxiliary if name not in names]
        if unknown:
            raise ValueError(
                f"suite {suite!r}: auxiliary task {unknown[0]!r} is not among its tasks "
                f"({', '.join(names)})"
            )
        specs = [dataclasses.replace(s, auxiliary=s.name in auxiliary) for s in specs]
    if not any(spec.is_target for spec in specs):
        raise ValueError(
            f"suite {suite!r}: every chosen task is auxiliary, so nothing would count in the "
            "score; keep a target task in `tasks` or name fewer tasks in `auxiliary`"
        )
    return list(specs)


def split_sizes(total: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """Train/val/test counts of ``total`` items; each split keeps at least one item."""
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            "val_fraction and test_fraction must lie in (0, 1) and sum to less than 1, got "
            f"{val_fraction} and {test_fraction}"
        )
    n_val = max(1, round(total * val_fraction))
    n_test = max(1, round(total * test_fraction))
    n_train = total - n_val - n_test
    if n_train < 1:
        raise ValueError(f"{total} items are too few to split into train/val/test")
    return n_train, n_val, n_test


def standardize(values: np.ndarray, train_rows: np.ndarray) -> np.ndarray:
    """Z-score with the statistics of the training rows only (no leak from val/test)."""
    ref = values[train_rows]
    return (values - ref.mean()) / max(float(ref.std()), 1e-8)


def standardize_columns(values: np.ndarray, train_rows: np.ndarray) -> np.ndarray:
    """Z-score every column of ``(n, d)`` inputs with the training rows' statistics (a
    constant column becomes 0), as float32."""
    ref = values[train_rows]
    std = ref.std(0)
    std = np.where(std > 1e-8, std, 1.0)
    return ((values - ref.mean(0)) / std).astype(np.float32)


def split_rows(
    total: int, val_fraction: float, test_fraction: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """A random partition of ``range(total)`` into train/val/test row indices."""
    n_train, n_val, _ = split_sizes(total, val_fraction, test_fraction)
    order = rng.permutation(total)
    return {
        "train": order[:n_train],
        "val": order[n_train : n_train + n_val],
        "test": order[n_train + n_val :],
    }


def as_regression(values: np.ndarray) -> torch.Tensor:
    """(n,) floats -> (n, 1) float32 regression targets (a copy: sources may be read-only)."""
    return torch.tensor(np.asarray(values, dtype=np.float32)).reshape(-1, 1)


def split_task_data(
    x: torch.Tensor, y: np.ndarray, rows: dict[str, np.ndarray], spec: TaskSpec
) -> TaskData:
    """A task's :class:`TaskData` from inputs ``x``, numpy targets ``y`` (converted for
    the task's kind) and each split's row indices ``rows``."""
    convert = as_regression if spec.kind == "regression" else as_classes
    splits = ("train", "val", "test")
    return TaskData(*(t for s in splits for t in (x[rows[s]], convert(y[rows[s]]))))


def as_classes(values: np.ndarray) -> torch.Tensor:
    """Integer class ids (any shape) -> int64 targets (a copy: sources may be read-only)."""
    return torch.tensor(np.asarray(values, dtype=np.int64))


def draw_count(bounds: tuple[int, int], rng: np.random.Generator, cap: int | None = None) -> int:
    """A count uniform in the inclusive ``bounds`` (one draw of ``rng``), at most ``cap``."""
    count = int(rng.integers(bounds[0], bounds[1] + 1))
    return count if cap is None else min(count, cap)
