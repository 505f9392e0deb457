"""Signals: what a controller reads at each decision, derived from the trainer's
measurements and their recent history (batched over runs, torch only).

The same tracker serves the environment, the benchmark and a user's own training loop
(:meth:`SignalTracker.update` takes plain per-task losses and, optionally, a Gram
matrix of per-task gradients).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from curriculum_rl.trainer.objective import EPS, floored_log
from curriculum_rl.trainer.trainer import Measurement


@dataclass
class Signals:
    """Per-run, per-task signals at one decision; tensors are (N, K) unless noted.

    Attributes:
        train_loss / val_loss: latest losses (a task that drew no example keeps its last
            train loss). log_val_ratio: ``log(val / val at the first decision)``.
        lp_slope: least-squares slope of log val loss per decision over the last
            ``window`` decisions (negative = still improving).
        lp_gap: fast minus slow exponential moving average of log val loss.
        grad_norm: norm of each task's gradient on the last shared layer.
        grad_cos: (N, K, K) pairwise cosines of those gradients.
        cos_update: cosine of each task gradient with the combined update.
        progress: (N,) fraction of the inner-step budget used. budget: (N,) the runs'
            inner-step budgets.
        train_sizes: training examples per task. mask / objective / diverged / steps / j /
            val_error / classify: as in :class:`~curriculum_rl.trainer.Measurement`
            (``val_error`` is the loss and ``classify`` all False where the measurement
            has none).
        log_error_ratio: ``log(val_error / val_error at the first decision)``.
        decisions: (N,) measurements since the run started, this one included (1 at a
            run's first decision).
    """

    train_loss: torch.Tensor
    val_loss: torch.Tensor
    log_val_ratio: torch.Tensor
    lp_slope: torch.Tensor
    lp_gap: torch.Tensor
    grad_norm: torch.Tensor
    grad_cos: torch.Tensor
    cos_update: torch.Tensor
    progress: torch.Tensor
    train_sizes: torch.Tensor
    mask: torch.Tensor
    objective: torch.Tensor
    diverged: torch.Tensor
    steps: torch.Tensor
    j: torch.Tensor
    decisions: torch.Tensor
    val_error: torch.Tensor
    log_error_ratio: torch.Tensor
    classify: torch.Tensor
    budget: torch.Tensor

    @property
    def num_runs(self) -> int:
        return self.mask.shape[0]

    @property
    def log_error_start(self) -> torch.Tensor:
        """(N, K) log of each task's validation error at the run's first decision, its
        scale before training (derived from ``val_error`` and ``log_error_ratio``)."""
        return self.val_error.clamp_min(EPS).log() - self.log_error_ratio

    @property
    def max_tasks(self) -> int:
        return self.mask.shape[1]


class SignalTracker:
    """Keeps the short history each run needs (start losses, moving averages, a window
    of log val losses) and turns each new measurement into :class:`Signals`."""

    def __init__(
        self,
        num_runs: int,
        max_tasks: int,
        window: int = 5,
        fast: float = 0.5,
        slow: float = 0.1,
        device: torch.device | str = "cpu",
    ) -> None:
        if window < 2:
            raise ValueError(f"window must be >= 2, got {window}")
        self.window, self.fast, self.slow = window, fast, slow
        shape = (num_runs, max_tasks)
        self.val_start = torch.ones(shape, device=device)
        self.error_start = torch.ones(shape, device=device)
        self.last_train = torch.ones(shape, device=device)
        self.ema_fast = torch.zeros(shape, device=device)
        self.ema_slow = torch.zeros(shape, device=device)
        self.history = torch.zeros((*shape, window), device=device)
        self.decisions = torch.zeros(num_runs, dtype=torch.long, device=device)

    def reset_runs(self, runs: torch.Tensor | list[int]) -> None:
        """Forget the history of ``runs`` (they start afresh at their next update)."""
        self.decisions[runs] = 0

    def update(
        self,
        m: Measurement,
        budget: torch.Tensor | int,
        train_sizes: torch.Tensor,
        runs: torch.Tensor | None = None,
    ) -> Signals:
        """Fold in one measurement; ``budget`` is each run's total inner steps.

        ``runs`` (bool, (N,)) limits which runs' history advances: the environment
        re-measures right after restarting some runs and must not count the others twice.
        """
        runs = torch.ones_like(self.decisions, dtype=torch.bool) if runs is None else runs
        log_val = floored_log(m.val_loss)
        error = m.val_loss if m.val_error is None else m.val_error
        classify = torch.zeros_like(m.mask) if m.classify is None else m.classify
        first = (self.decisions == 0)[:, None]
        train = torch.where(torch.isfinite(m.train_loss), m.train_loss, self.last_train)
        train = torch.where(first & ~torch.isfinite(m.train_loss), m.val_loss, train)
        history = torch.where(
            first[..., None], log_val[..., None], torch.roll(self.history, -1, dims=-1)
        )
        history[..., -1] = log_val
        new_state = {
            "last_train": train,
            "val_start": torch.where(first, m.val_loss.clamp_min(EPS), self.val_start),
            "error_start": torch.where(first, error.clamp_min(EPS), self.error_start),
            "ema_fast": torch.where(first, log_val, torch.lerp(self.ema_fast, log_val, self.fast)),
            "ema_slow": torch.where(first, log_val, torch.lerp(self.ema_slow, log_val, self.slow)),
            "history": history,
            "decisions": self.decisions + 1,
        }
        for name, value in new_state.items():
            old = getattr(self, name)
            keep = runs.view((-1,) + (1,) * (old.dim() - 1))
            setattr(self, name, torch.where(keep, value, old))
        norm, cos = _gram_to_cosines(m.grad_gram)
        budget = torch.as_tensor(budget, device=m.steps.device, dtype=torch.float32)
        return Signals(
            train_loss=self.last_train,
            val_loss=m.val_loss,
            log_val_ratio=(m.val_loss.clamp_min(EPS) / self.val_start).log(),
            lp_slope=self._slope(),
            lp_gap=self.ema_fast - self.ema_slow,
            grad_norm=norm,
            grad_cos=cos,
            cos_update=_cos_with_update(m.grad_gram, m.combined, norm),
            progress=(m.steps.float() / budget.clamp_min(1)).clamp(0, 1),
            train_sizes=train_sizes.float(),
            mask=m.mask,
            objective=m.objective,
            diverged=m.diverged,
            steps=m.steps,
            j=m.j,
            decisions=self.decisions.clone(),
            val_error=error,
            log_error_ratio=(error.clamp_min(EPS) / self.error_start).log(),
            classify=classify,
            budget=budget.expand(m.steps.shape[0]).clone(),
        )

    def _slope(self) -> torch.Tensor:
        """OLS slope over the filled part of the window (history is seeded with the first
        value, so a young run's slope only uses what it has seen)."""
        w = self.window
        t = torch.arange(w, dtype=torch.float32, device=self.history.device)
        filled = self.decisions.clamp(max=w)[:, None, None]
        valid = (t >= w - filled).float()
        n = valid.sum(-1).clamp_min(1)
        t_mean = (t * valid).sum(-1) / n
        y_mean = (self.history * valid).sum(-1) / n
        dt = (t - t_mean[..., None]) * valid
        cov = (dt * (self.history - y_mean[..., None])).sum(-1)
        var = (dt * dt).sum(-1)
        return torch.where(var > 0, cov / var.clamp_min(EPS), torch.zeros_like(cov))


def _gram_to_cosines(gram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    norm = gram.diagonal(dim1=-2, dim2=-1).clamp_min(0).sqrt()
    denom = norm[..., :, None] * norm[..., None, :]
    cos = torch.where(denom > EPS, gram / denom.clamp_min(EPS), torch.zeros_like(gram))
    return norm, cos.clamp(-1, 1)


def runwise_matvec(matrix: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """(N, K) ``matrix @ vector`` per run, for ``matrix`` (N, K, L) and ``vector`` (N, L), as
    a product and a sum: a batched matrix product rounded a run's result by its place in
    the batch (with 24 task slots or more), and a run's signals must not depend on it."""
    return (matrix * vector[:, None, :]).sum(-1)


def _cos_with_update(gram: torch.Tensor, combined: torch.Tensor, norm: torch.Tensor):
    """cos(g_k, u) for the update u = sum_l c_l g_l, from the Gram matrix alone."""
    dots = runwise_matvec(gram, combined)
    update_sq = (combined * dots).sum(-1).clamp_min(0)
    denom = norm * update_sq.sqrt()[:, None]
    return torch.where(denom > EPS, dots / denom.clamp_min(EPS), torch.zeros_like(dots)).clamp(
        -1, 1
    )
