"""Adam and SGD over stacked parameters, with a step counter per run.

``torch.optim.Adam`` keeps one step count per parameter tensor, so a run that restarts
mid-way (the VecEnv resets runs one by one) would get the wrong bias correction. Here
each run has its own count and its own moment slices, so N runs are exactly N
independent optimisers (Adam: Kingma & Ba, 2015).

Speed: the optimiser moves every parameter into one run-major buffer (N, P) (each
parameter becomes a view of it), so a whole run's parameters, gradients and moments are
one contiguous row, and one call of torch's fused Adam kernel updates all N rows, each
with its own step count. That replaces nine multi-tensor passes, one dispatch per
parameter each (figures: benchmarks/RESULTS.md, section 1).
"""

from __future__ import annotations

import torch
from torch import nn


class BatchedOptimizer:
    """Adam (default) or SGD whose state can be reset for single runs.

    ``params`` all have the run dimension N first; their storage is moved into one
    (N, P) buffer, so keep using the parameter objects (not tensors taken from them
    before construction).
    """

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
        if any(p.shape[0] != num_runs for p in params):
            raise ValueError(f"every parameter needs the run dimension {num_runs} first")
        self.params = params
        self.num_runs = num_runs
        self.lr, self.kind, self.betas, self.eps = lr, kind, betas, eps
        self.flat = _share_one_buffer(params, num_runs)
        self.steps = torch.zeros(num_runs, device=self.flat.device)
        self.m = torch.zeros_like(self.flat)
        self.v = torch.zeros_like(self.flat)
        # One view per run of each persistent buffer, built once (the fused kernel's
        # unit is a tensor; each run's row needs its own step count).
        self._rows = [t.unbind(0) for t in (self.flat, self.m, self.v, self.steps)]

    def reset_run(self, run: int) -> None:
        self.steps[run] = 0
        self.m[run].zero_()
        self.v[run].zero_()

    @torch.no_grad()
    def step(self, active: torch.Tensor | None = None) -> None:
        """Apply one update to the runs where ``active`` is True (all runs by default);
        the others are left exactly as they were (an inactive run has diverged or
        finished). A parameter without ``.grad`` counts as a zero gradient."""
        runs = None
        if active is not None and not bool(active.all()):
            runs = active.nonzero().flatten().tolist()
            if not runs:
                return
        grad = torch.cat(
            [
                (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(self.num_runs, -1)
                for p in self.params
            ],
            1,
        )
        if self.kind == "sgd":
            if runs is None:
                self.flat.sub_(grad, alpha=self.lr)
            else:
                self.flat[runs] -= self.lr * grad[runs]
            return
        flat, m, v, steps = self._rows
        grads = grad.unbind(0)
        if runs is None:
            self.steps += 1
        else:
            self.steps[runs] += 1
            flat, grads, m, v, steps = (
                [rows[r] for r in runs] for rows in (flat, grads, m, v, steps)
            )
        torch._fused_adam_(
            flat,
            grads,
            m,
            v,
            [],
            steps,
            lr=self.lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=0.0,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )


def _share_one_buffer(params: list[nn.Parameter], num_runs: int) -> torch.Tensor:
    """Copy ``params`` into one (N, P) buffer and make each parameter a view of it."""
    sizes = [p[0].numel() for p in params]
    flat = torch.empty(num_runs, sum(sizes), device=params[0].device, dtype=params[0].dtype)
    start = 0
    with torch.no_grad():
        for p, size in zip(params, sizes, strict=True):
            view = flat[:, start : start + size].view(p.shape)
            view.copy_(p)
            p.data = view
            start += size
    return flat
