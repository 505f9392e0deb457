"""What a session's controller has been fed, in order, so that a checkpoint can rebuild the
controller's state by feeding a fresh one the same inputs.

A controller's state (DWA's loss history, Exp3.S's weights, UW's log-variances and their
Adam moments, RLW's random stream...) is a function of what it was fed and its seed. The
journal keeps those inputs as tensors: one row per decision (the measurement the decision
loop folded in) and, for controllers with a per-step hook, one row per optimisation step
(the per-task losses the hook weighed, with their gradient norms for GradNorm). Replaying
them rebuilds the state of any deterministic controller, learned, heuristic or your own,
without knowing its internals, and the checkpoint stays a dict of tensors
(``torch.load(weights_only=True)``). Its size grows with the run: 4K + K^2 + 1 numbers per
decision, K per step for per-step hooks (2K for GradNorm).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from curriculum_rl.trainer import Measurement
from curriculum_rl.trainer.objective import mean_log_loss


class Rows:
    """A growable (n, width) table (amortised doubling: no tensor per row)."""

    def __init__(self, width: int, dtype: torch.dtype) -> None:
        self.table = torch.zeros(16, width, dtype=dtype)
        self.count = 0

    def append(self, row: torch.Tensor) -> None:
        if self.count == self.table.shape[0]:
            self.table = torch.cat([self.table, torch.zeros_like(self.table)])
        self.table[self.count] = row
        self.count += 1

    def values(self) -> torch.Tensor:
        return self.table[: self.count]

    def load(self, values: torch.Tensor) -> None:
        width = self.table.shape[1]
        if values.dim() != 2 or values.shape[1] != width:
            raise ValueError(f"journal table must be (n, {width}), got {tuple(values.shape)}")
        self.table = values.to(self.table.dtype).clone()
        self.count = values.shape[0]


class Journal:
    """The decisions' measurements and the per-step hook losses of one session."""

    def __init__(
        self, mask: torch.Tensor, objective: torch.Tensor, classify: torch.Tensor, step_width: int
    ) -> None:
        self.mask, self.objective, self.classify = mask, objective, classify
        k = mask.shape[1]
        self.num_tasks = k
        self.decisions = Rows(4 * k + k * k + 1, torch.float64)
        self.steps = Rows(step_width, torch.float32)
        self.marks: list[int] = []  # hook steps recorded before each decision

    def record_step(self, measured: torch.Tensor) -> None:
        """What a per-step hook weighed, on the host: the per-task losses (K,), with their
        gradient norms for GradNorm (2K,)."""
        self.steps.append(measured)

    def record_decision(
        self,
        train: torch.Tensor,
        val: torch.Tensor,
        val_error: torch.Tensor,
        combined: torch.Tensor,
        gram: torch.Tensor,
        steps: int,
    ) -> Measurement:
        """Keep one decision's inputs (host tensors (K,) x 4 and (K, K)) and return the
        measurement the decision loop folds in, built from the kept row (so a replay
        rebuilds exactly the same one)."""
        parts = [train, val, val_error, combined, gram.reshape(-1), torch.tensor([float(steps)])]
        row = torch.cat(parts)
        self.decisions.append(row.double())
        self.marks.append(self.steps.count)
        return self._measurement(self.decisions.values()[-1])

    def replay(
        self,
        on_step: Callable[[torch.Tensor], None],
        on_decision: Callable[[Measurement], None],
    ) -> None:
        """Feed every recorded step and decision, in their original order."""
        steps = self.steps.values()
        done = 0
        for row, mark in zip(self.decisions.values(), self.marks, strict=True):
            for losses in steps[done:mark]:
                on_step(losses)
            done = mark
            on_decision(self._measurement(row))
        for losses in steps[done:]:
            on_step(losses)

    def _measurement(self, row: torch.Tensor) -> Measurement:
        k = self.num_tasks
        values = row.float()
        train, val, error, combined = values[: 4 * k].view(4, 1, k)
        gram = values[4 * k : 4 * k + k * k].view(k, k)
        return Measurement(
            train_loss=train,
            val_loss=val,
            grad_gram=gram[None],
            combined=combined,
            mask=self.mask,
            objective=self.objective,
            diverged=~torch.isfinite(val).all(1),
            steps=torch.tensor([int(row[-1])]),
            j=mean_log_loss(val, self.objective),
            val_error=error,
            classify=self.classify,
        )

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            "journal.decisions": self.decisions.values().clone(),
            "journal.steps": self.steps.values().clone(),
            "journal.marks": torch.tensor(self.marks, dtype=torch.long),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.decisions.load(state["journal.decisions"])
        self.steps.load(state["journal.steps"])
        self.marks = [int(m) for m in state["journal.marks"].tolist()]
        if len(self.marks) != self.decisions.count:
            raise ValueError("journal.marks must hold one entry per decision")
