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

The fused kernel (``torch._fused_adam_``) is private: a torch release may drop it or a
device/dtype may lack it. :func:`fused_adam_supported` probes it once per device and
dtype; where it is missing or refuses, the same update runs through public tensor ops
on the (N, P) buffers, vectorised over runs (:func:`adam_rows`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
from torch import nn


class BatchedOptimizer:
    """Adam (default) or SGD whose state can be reset for single runs.

    ``params`` all have the run dimension N first; their storage is moved into one
    (N, P) buffer, so keep using the parameter objects (not tensors taken from them
    before construction). ``fused`` picks Adam's kernel: ``None`` (default) the fused
    one where :func:`fused_adam_supported`, else the public-ops fallback; ``True`` or
    ``False`` force one (``True`` raises where the fused kernel is unavailable).
    """

    def __init__(
        self,
        params: list[nn.Parameter],
        num_runs: int,
        lr: float,
        kind: str = "adam",
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        fused: bool | None = None,
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
        self.fused = _choose_fused(fused, self.flat)
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
        grad = self._flat_grad()
        if self.kind == "sgd":
            if runs is None:
                self.flat.sub_(grad, alpha=self.lr)
            else:
                self.flat[runs] -= self.lr * grad[runs]
            return
        if runs is None:
            self.steps += 1
        else:
            self.steps[runs] += 1
        if self.fused:
            self._fused_step(grad, runs)
        else:
            self._public_step(grad, runs)

    def _flat_grad(self) -> torch.Tensor:
        """(N, P) gradients in the buffer's layout (zeros for a parameter without one)."""
        return torch.cat(
            [
                (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(self.num_runs, -1)
                for p in self.params
            ],
            1,
        )

    def _fused_step(self, grad: torch.Tensor, runs: list[int] | None) -> None:
        """One fused-kernel call over the rows of ``runs`` (all rows if ``None``)."""
        flat, m, v, steps = self._rows
        grads = grad.unbind(0)
        if runs is not None:
            flat, grads, m, v, steps = (
                [rows[r] for r in runs] for rows in (flat, grads, m, v, steps)
            )
        beta1, beta2 = self.betas
        _fused_adam(flat, grads, m, v, steps, self.lr, beta1, beta2, self.eps)

    def _public_step(self, grad: torch.Tensor, runs: list[int] | None) -> None:
        """The same update through public ops: in place on the whole buffers, or on
        copies of the active rows written back (inactive rows stay bit-for-bit)."""
        if runs is None:
            adam_rows(self.flat, grad, self.m, self.v, self.steps, self.lr, self.betas, self.eps)
            return
        idx = torch.tensor(runs, device=self.flat.device)
        flat, m, v = self.flat[idx], self.m[idx], self.v[idx]
        adam_rows(flat, grad[idx], m, v, self.steps[idx], self.lr, self.betas, self.eps)
        for buffer, rows in ((self.flat, flat), (self.m, m), (self.v, v)):
            buffer.index_copy_(0, idx, rows)


def adam_rows(
    param: torch.Tensor,
    grad: torch.Tensor,
    m: torch.Tensor,
    v: torch.Tensor,
    steps: torch.Tensor,
    lr: float,
    betas: tuple[float, float],
    eps: float,
) -> None:
    """One Adam update, in place, of R independent rows (R, P), row r at step
    ``steps[r]`` (already counted): torch's single-tensor Adam formula, with the bias
    corrections computed per row as tensors."""
    beta1, beta2 = betas
    m.lerp_(grad, 1 - beta1)
    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    t = steps.float()[:, None]
    step_size = (lr / _bias_correction(beta1, t)).to(param.dtype)
    bias2_sqrt = _bias_correction(beta2, t).sqrt().to(param.dtype)
    denom = (v.sqrt() / bias2_sqrt).add_(eps)
    param.addcdiv_(m, denom.div_(-step_size))  # param -= step_size * m / denom


def _bias_correction(beta: float, t: torch.Tensor) -> torch.Tensor:
    """``1 - beta**t`` as ``-expm1(t log beta)``: accurate to float32 rounding even where
    ``beta**t`` is close to 1 (early steps), so no device needs float64 for it."""
    log_beta = math.log(beta) if beta > 0 else -math.inf
    return -torch.expm1(t * log_beta)


def _fused_adam(
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    m: Sequence[torch.Tensor],
    v: Sequence[torch.Tensor],
    steps: Sequence[torch.Tensor],
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
) -> None:
    """``torch._fused_adam_`` (private) on lists of tensors, one step count each."""
    torch._fused_adam_(
        list(params),
        list(grads),
        list(m),
        list(v),
        [],
        list(steps),
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        weight_decay=0.0,
        eps=eps,
        amsgrad=False,
        maximize=False,
    )


@functools.cache
def fused_adam_supported(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether torch's private fused Adam kernel exists and works on ``device``/``dtype``.

    Probed with one step on a 2-element scratch tensor, whose result must be Adam's
    first step (``-lr`` for a gradient of 1), so a kernel that is missing, refuses the
    device or dtype, or changed its signature or meaning selects the public fallback.
    """
    if not hasattr(torch, "_fused_adam_"):
        return False
    param = torch.zeros(2, device=device, dtype=dtype)
    grad, m, v = torch.ones_like(param), torch.zeros_like(param), torch.zeros_like(param)
    step = torch.ones((), device=device, dtype=torch.float32)
    try:
        _fused_adam([param], [grad], [m], [v], [step], 0.5, 0.9, 0.999, 1e-8)
    except (NotImplementedError, RuntimeError, TypeError):
        return False
    return bool(torch.allclose(param, torch.full_like(param, -0.5)))


def _choose_fused(fused: bool | None, flat: torch.Tensor) -> bool:
    """Resolve the ``fused`` argument against what this device/dtype supports."""
    supported = fused_adam_supported(flat.device, flat.dtype)
    if fused and not supported:
        raise ValueError(
            f"torch's fused Adam kernel is unavailable for {flat.dtype} on {flat.device}; "
            "pass fused=None (or False) to use the public-ops fallback"
        )
    return supported if fused is None else fused


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
