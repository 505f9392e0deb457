"""Adam and SGD over stacked parameters, with a step counter per run.

``torch.optim.Adam`` keeps one step count per parameter tensor, so a run that restarts
mid-way (the VecEnv resets runs one by one) would get the wrong bias correction. Here
each run has its own count and its own moment slices, so N runs are exactly N
independent optimisers (Adam: Kingma & Ba, 2015).
"""

from __future__ import annotations

import torch
from torch import nn


class BatchedOptimizer:
    """Adam (default) or SGD whose state can be reset for single runs."""

    def __init__(
        self,
        params: list[nn.Parameter],
        num_runs: int,
        lr: float,
        kind: str = "adam",
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        if kind not in ("adam", "sgd"):
            raise ValueError(f"unknown optimizer {kind!r}; use 'adam' or 'sgd'")
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        self.params = params
        self.lr, self.kind, self.betas, self.eps = lr, kind, betas, eps
        device = params[0].device
        self.steps = torch.zeros(num_runs, device=device)
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def reset_run(self, run: int) -> None:
        self.steps[run] = 0
        for m, v in zip(self.m, self.v, strict=True):
            m[run].zero_()
            v[run].zero_()

    @torch.no_grad()
    def step(self, active: torch.Tensor | None = None) -> None:
        """Apply one update; runs where ``active`` is False are left unchanged (their
        moments may drift, which is harmless: an inactive run has diverged or finished)."""
        if active is not None and bool(active.all()):
            active = None  # the common case: skip every mask
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        if self.kind == "sgd":
            for p, g in zip(self.params, grads, strict=True):
                p.sub_(self._mask(self.lr * g, active))
            return
        self.steps += 1 if active is None else active.to(self.steps.dtype)
        b1, b2 = self.betas
        step_size = self.lr / (1 - b1 ** self.steps.clamp_min(1))
        root_corr2 = (1 - b2 ** self.steps.clamp_min(1)).sqrt()
        # Multi-tensor (foreach) kernels: a handful of calls for all parameters, where a
        # per-parameter loop costs ~7 small ops each. Per-run factors broadcast as (N, 1...).
        shaped = [(-1,) + (1,) * (p.dim() - 1) for p in self.params]
        torch._foreach_lerp_(self.m, grads, 1 - b1)
        torch._foreach_mul_(self.v, b2)
        torch._foreach_addcmul_(self.v, grads, grads, value=1 - b2)
        denom = torch._foreach_sqrt(self.v)
        torch._foreach_div_(denom, [root_corr2.view(shape) for shape in shaped])
        torch._foreach_add_(denom, self.eps)
        updates = torch._foreach_mul(self.m, [step_size.view(shape) for shape in shaped])
        torch._foreach_div_(updates, denom)
        if active is not None:
            updates = [self._mask(u, active) for u in updates]
        torch._foreach_sub_(self.params, updates)

    @staticmethod
    def _mask(x: torch.Tensor, active: torch.Tensor | None) -> torch.Tensor:
        if active is None:
            return x
        mask = active.view((-1,) + (1,) * (x.dim() - 1))
        return torch.where(mask, x, torch.zeros_like(x))
