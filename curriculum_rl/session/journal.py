"""What a session's controller has been fed, in order, so that a checkpoint can rebuild the
controller's state by feeding a fresh one the same inputs.

A controller's state (DWA's loss history, Exp3.S's weights, UW's log-variances and their
Adam moments, RLW's random stream...) is a function of what it was fed and its seed. The
journal keeps those inputs as tensors: one row per decision (the measurement the decision
loop folded in) and, for controllers with a per-step hook, one row per optimisation step
(the per-task losses the hook weighed). Replaying them rebuilds the state of any
deterministic controller, learned, heuristic or your own, without knowing its internals,
and the checkpoint stays a dict of tensors (``torch.load(weights_only=True)``). Its size
grows with the run: 3K + K^2 + 1 numbers per decision, K per step for per-step hooks.
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

    def __init__(self, mask: torch.Tensor, objective: torch.Tensor) -> None:
        self.mask, self.objective = mask, objective
        k = mask.shape[1]
        self.num_tasks = k
        self.decisions = Rows(3 * k + k * k + 1, torch.float64)
        self.steps = Rows(k, torch.float32)
        self.marks: list[int] = []  # hook steps recorded before each decision

    def record_step(self, losses: torch.Tensor) -> None:
        """Per-task losses (K,) on the host that a per-step hook weighed."""
        self.steps.append(losses)

    def record_decision(
        self,
        train: torch.Tensor,
        val: torch.Tensor,
        combined: torch.Tensor,
        gram: torch.Tensor,
        steps: int,
    ) -> Measurement:
        """Keep one decision's inputs (host tensors (K,), (K,), (K,), (K, K)) and return
        the measurement the decision loop folds in, built from the kept row (so a replay
        rebuilds exactly the same one)."""
        row = torch.cat([train, val, combined, gram.reshape(-1), torch.tensor([float(steps)])])
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
        train, val, combined = values[:k], values[k : 2 * k], values[2 * k : 3 * k]
        gram = values[3 * k : 3 * k + k * k].view(k, k)
        val = val[None]
        return Measurement(
            train_loss=train[None],
            val_loss=val,
            grad_gram=gram[None],
            combined=combined[None],
            mask=self.mask,
            objective=self.objective,
            diverged=~torch.isfinite(val).all(1),
            steps=torch.tensor([int(row[-1])]),
            j=mean_log_loss(val, self.objective),
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
