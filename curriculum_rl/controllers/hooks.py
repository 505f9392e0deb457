"""Helpers shared by the controllers that act inside every optimisation step.

A :class:`~curriculum_rl.trainer.StepHook` receives the per-task losses ``(N, K)`` of all
runs at once. Parameters are stacked over runs (leading dim N) and run ``n`` only touches
slice ``n``, so summing per-run objectives and calling ``backward`` once gives every run
exactly its own gradient; these helpers keep that bookkeeping in one place. Which runs
train this step is the trainer's ``StepContext.active``: a hook that keeps state per run
updates it for those runs only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from curriculum_rl.trainer.objective import EPS as EPS  # one floor for every log and ratio


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over each run's valid tasks; padded tasks get exactly 0."""
    soft = torch.softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)
    return soft.nan_to_num(0.0) * mask


def per_task_grads(
    task_losses: torch.Tensor, params: Sequence[torch.Tensor], mask: torch.Tensor
) -> list[list[torch.Tensor] | None]:
    """Gradients of each task's loss w.r.t. ``params``, for all runs at once.

    Returns one entry per task slot: ``None`` for a slot padded in every run, else one
    stacked gradient per parameter whose slice ``n`` is run ``n``'s gradient of
    ``L_{n,k}`` (the runs share no parameter slice, so the gradient of ``sum_n L_{n,k}``
    separates). One backward per task; measured faster on CPU than a vmapped
    ``is_grads_batched`` call for these small graphs. The graph is retained.
    """
    out: list[list[torch.Tensor] | None] = []
    for k in range(task_losses.shape[1]):
        if not bool(mask[:, k].any()):
            out.append(None)
            continue
        grads = torch.autograd.grad(
            task_losses[:, k].sum(), list(params), retain_graph=True, allow_unused=True
        )
        out.append(
            [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
        )
    return out


def run_generator(seed: int, salt: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator for one run, derived from its seed and a per-method ``salt`` so that
    different methods (and the trainer's own streams) never share random numbers."""
    state = np.random.SeedSequence([int(seed) % 2**63, salt]).generate_state(1, dtype=np.uint64)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(state[0] % 2**63))
    return gen
