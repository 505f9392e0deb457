"""Per-task gradient alignment in your own model: :class:`GradientProbe`.

The policy reads how the tasks' gradients align (norms, pairwise cosines, cosine with the
update); without per-task gradients it sees zeros there. Forming K full gradients would
cost K backward passes through the whole model. A probe instead watches one shared
``nn.Linear`` (e.g. the last layer of the trunk, or a transformer's pooler): the gradient of
task k's loss on its weight is ``G_k = sum_{rows r of task k} a_r^T d_r``, with ``a_r`` the
layer's input rows and ``d_r`` the loss gradient at its output rows, so the Gram matrix
``<G_k, G_l>`` follows from ``a`` and ``d`` alone, by the trainer's own
:func:`~curriculum_rl.trainer.trainer.task_gradient_gram`. ``d`` costs one extra backward
from the losses to that layer's output (through the heads only), and only at decision
steps: the session arms the probe for the forward pass of the last step before a decision
and disarms it after; other steps pay nothing.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from curriculum_rl.trainer.trainer import task_gradient_gram


class GradientProbe:
    """Collects the per-task gradient Gram matrix on one shared linear layer.

    Give it to :class:`~curriculum_rl.session.CurriculumSession` (``probe=``); the session
    arms it, and computes the Gram inside :meth:`CurriculumSession.loss` before your
    backward pass. The layer must be called once per forward pass, on the whole batch
    (batch dimension first; extra dimensions such as tokens are rows of their example),
    and every row must affect only its own example's loss (no batch norm after it).

    Args:
        layer: an ``nn.Linear`` shared by all tasks.
    """

    def __init__(self, layer: nn.Module) -> None:
        if not isinstance(layer, nn.Linear):
            raise TypeError(
                f"GradientProbe watches an nn.Linear (its weight gradient is a^T d); got "
                f"{type(layer).__name__}: pick the last linear layer shared by all tasks"
            )
        self.layer = layer
        self._handle: RemovableHandle | None = None
        self._record: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def armed(self) -> bool:
        return self._handle is not None

    @property
    def captured(self) -> bool:
        """True when an armed forward pass recorded the layer's input and output."""
        return self._record is not None

    def arm(self) -> None:
        """Record the layer's next forward pass (with gradients enabled)."""
        if self._handle is None:
            self._handle = self.layer.register_forward_hook(self._capture)

    def disarm(self) -> None:
        """Stop recording and forget what was recorded."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self._record = None

    def _capture(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        # Forward passes without a graph (validation, inference) have no gradient to give.
        if torch.is_grad_enabled() and output.requires_grad:
            self._record = (inputs[0].detach(), output)

    def gram(
        self, losses: torch.Tensor, task_ids: torch.Tensor | None, num_tasks: int
    ) -> torch.Tensor | None:
        """(K, K) Gram of the per-task gradients of the mean task losses on the layer's
        weight (the trainer's ``grad_gram``), from the recorded pass; ``None`` if nothing
        was recorded. Disarms the probe. The graph is kept for your backward pass.

        Args:
            losses: the same losses you give :meth:`CurriculumSession.loss`: per-example
                (B,) with ``task_ids`` (B,), or per-task (K,) with ``task_ids=None``.
        """
        record = self._record
        self.disarm()
        if record is None:
            return None
        inputs, output = record
        if task_ids is None:  # each task's loss is already a mean: no count to divide by
            a, d, one_hot = _per_task_rows(losses, inputs, output, num_tasks)
            counts = torch.ones(num_tasks, device=a.device)
        else:  # sums over each task's examples -> gradients of the mean task losses
            a, d, one_hot = _per_example_rows(losses, task_ids, inputs, output, num_tasks)
            ids = task_ids.to(a.device, torch.long)
            counts = torch.zeros(num_tasks, device=a.device).index_add(
                0, ids, torch.ones(ids.shape, device=a.device)
            )
        gram = task_gradient_gram(a[None], d[None], one_hot[None])[0]
        gram = gram / (counts[:, None] * counts[None, :]).clamp_min(1)
        return gram.detach().nan_to_num(0.0, 0.0, 0.0)


def _rows(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.reshape(-1, tensor.shape[-1]).float()


def _per_example_rows(
    losses: torch.Tensor,
    task_ids: torch.Tensor,
    inputs: torch.Tensor,
    output: torch.Tensor,
    num_tasks: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows of ``a`` and ``d`` with each row's task, from one backward of sum_i loss_i: a
    row only reaches its own example's loss, so its output gradient is that loss's."""
    examples = losses.shape[0]
    if inputs.shape[0] != examples:
        raise ValueError(
            f"GradientProbe: the layer saw {inputs.shape[0]} rows in its first dimension for "
            f"{examples} examples; call it once per forward pass on the whole batch, batch "
            "dimension first"
        )
    (d,) = torch.autograd.grad(losses.sum(), output, retain_graph=True)
    per_example = inputs[0].numel() // inputs.shape[-1]  # tokens per example, or 1
    row_task = task_ids.to(inputs.device).repeat_interleave(per_example)
    one_hot = torch.zeros(row_task.shape[0], num_tasks, device=inputs.device)
    one_hot.scatter_(1, row_task[:, None], 1.0)
    return _rows(inputs), _rows(d), one_hot


def _per_task_rows(
    losses: torch.Tensor, inputs: torch.Tensor, output: torch.Tensor, num_tasks: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every example serves every task: one backward per task to the layer's output, and
    the rows repeated once per task (task_gradient_gram's row-to-task form)."""
    a, rows = _rows(inputs), _rows(inputs).shape[0]
    grads = []
    for k in range(num_tasks):
        (d,) = torch.autograd.grad(losses[k], output, retain_graph=True, allow_unused=True)
        grads.append(torch.zeros_like(_rows(output)) if d is None else _rows(d))
    one_hot = torch.eye(num_tasks, device=inputs.device).repeat_interleave(rows, 0)
    return a.repeat(num_tasks, 1), torch.cat(grads), one_hot
