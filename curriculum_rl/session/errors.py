"""The task error a session hands its controller, by the trainer's rule.

Besides each task's loss, the learned policy reads its validation *error*: the
observation's ``is_classification``, ``log_error_centred`` and ``log_error_ratio``, and the
``error_power`` and ``loss_power`` actions, which weigh tasks by powers of ``E_k`` (and of
its value at the first decision). In training, ``E_k`` is
:func:`~curriculum_rl.trainer.trainer.soft_error` of the probe's per-example losses: the
MSE for regression, the add-one smoothed soft error (from ``1 - exp(-CE)``) for
classification and tagging. Read as regression, a classification task's error would be its
cross-entropy, unbounded, and the policy would weigh it as it never did in training. So a
session knows each task's kind (``task_kinds``) and applies the same rule to what your
loop hands it:

* per-example losses with task ids (``session.loss(losses, task_ids)``) and no validation
  losses: the rule itself on the interval's examples, per task (each example's
  :func:`~curriculum_rl.trainer.trainer.example_error` summed on the device, then
  :func:`~curriculum_rl.trainer.trainer.smoothed_error` with the task's count);
* per-task mean losses (``val_losses``, ``train_losses``, or ``session.loss(per_task)``):
  the rule on ``V`` examples that each have the mean loss, ``V`` being the validation count
  you give (``val_counts``) or :data:`DEFAULT_VAL_COUNT`, the probe size the policies were
  trained with. Exact for regression; for classification ``1 - exp(-mean CE)`` is an upper
  bound on the mean of ``1 - exp(-CE)`` (Jensen), tight when the examples' losses are alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from curriculum_rl.trainer import TrainerConfig
from curriculum_rl.trainer.trainer import KIND_CODE, example_error, smoothed_error

DEFAULT_VAL_COUNT = TrainerConfig().val_probe
"""Examples assumed behind a per-task mean loss when no count is given: the validation
probe's size per task in the runs the policies learned from."""


def parse_task_kinds(kinds: Sequence[str] | None, num_tasks: int) -> list[str]:
    """One kind per task, each ``"regression"``, ``"classification"`` or ``"tagging"``
    (all regression when ``None``); ``ValueError`` naming the fix otherwise."""
    if kinds is None:
        return ["regression"] * num_tasks
    if isinstance(kinds, str):
        raise ValueError(
            f"task_kinds takes one kind per task, e.g. [{kinds!r}] * {num_tasks}; got the "
            f"string {kinds!r}"
        )
    kinds = list(kinds)
    if len(kinds) != num_tasks:
        raise ValueError(f"task_kinds has {len(kinds)} kinds for {num_tasks} tasks; give one each")
    unknown = [kind for kind in kinds if kind not in KIND_CODE]
    if unknown:
        raise ValueError(
            f"unknown task kinds {unknown}; each must be one of {', '.join(KIND_CODE)}"
        )
    return kinds


def classify_mask(kinds: Sequence[str]) -> torch.Tensor:
    """(1, K) True for classification and tagging tasks, as the trainer's ``classify``."""
    return torch.tensor([[KIND_CODE[kind] > 0 for kind in kinds]])


def kind_codes(kinds: Sequence[str]) -> torch.Tensor:
    """(K,) the trainer's kind codes, for checkpoints."""
    return torch.tensor([KIND_CODE[kind] for kind in kinds])


def mean_loss_error(
    mean: torch.Tensor, count: int | torch.Tensor, classify: torch.Tensor
) -> torch.Tensor:
    """(K,) the error of per-task mean losses, each taken as ``count`` examples at the
    mean (module docstring)."""
    return smoothed_error(example_error(mean, classify), count, classify)


def interval_error(
    error_sums: torch.Tensor, examples: torch.Tensor, classify: torch.Tensor
) -> torch.Tensor:
    """(K,) the error of the examples whose :func:`example_error` sums to ``error_sums``
    per task: the trainer's :func:`soft_error` with each task's own count."""
    return smoothed_error(error_sums / examples.clamp_min(1), examples, classify)
