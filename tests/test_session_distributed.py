"""Multi-process sessions (gloo, 2 processes on CPU): every rank puts the same decision in
force, equal to one process's decision on the whole batch (the averaged losses)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers import make_test_controller

from curriculum_rl.session import CurriculumSession

K, WORLD, LOCAL_BATCH, STEPS, INTERVAL = 3, 2, 6, 24, 5
CONTROLLERS = ("learned", "dwa", "uw")


def _rank_batch(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank ``rank``'s per-example losses and task ids at ``step`` (ranks differ; every
    task in every batch, so each step's task weights can be read off any rank)."""
    gen = torch.Generator().manual_seed(1000 * step + rank)
    tasks = (torch.arange(LOCAL_BATCH) % K)[torch.randperm(LOCAL_BATCH, generator=gen)]
    scale = torch.tensor([1.0, 10.0, 100.0])[tasks] * (0.99**step)
    return scale * (0.5 + torch.rand(LOCAL_BATCH, generator=gen)), tasks


def _rank_extras(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank ``rank``'s validation losses and gradient Gram at a decision."""
    gen = torch.Generator().manual_seed(7 + 1000 * step + rank)
    grads = torch.randn(K, 4, generator=gen)
    return torch.tensor([1.0, 10.0, 100.0]) * (1 + torch.rand(K, generator=gen)), grads @ grads.T


def _drive(session: CurriculumSession, batches, extras) -> list[torch.Tensor]:
    """Run the scripted steps; record each step's per-task weights and each decision."""
    trace = []
    for step in range(STEPS):
        losses, tasks = batches(step)
        leaf = losses.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(session.loss(leaf, tasks), leaf)
        trace.append(torch.zeros(K).scatter_(0, tasks, grad * len(tasks) / K))  # w_k
        if session.decision_due:
            val, gram = extras(step)
            trace.append(torch.cat(session.update(val_losses=val, grad_gram=gram)))
    return trace


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        traces = {}
        for name in CONTROLLERS:
            session = CurriculumSession(
                make_test_controller(name), K, budget=100, interval=INTERVAL
            )
            traces[name] = _drive(
                session,
                lambda step: _rank_batch(rank, step),
                lambda step: _rank_extras(rank, step),
            )
        torch.save(traces, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _single_process(name: str) -> list[torch.Tensor]:
    """One process on both ranks' examples, with the ranks' mean val losses and Gram."""

    def batches(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [_rank_batch(r, step) for r in range(WORLD)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def extras(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [_rank_extras(r, step) for r in range(WORLD)]
        return tuple(torch.stack(p).mean(0) for p in zip(*parts, strict=True))

    session = CurriculumSession(make_test_controller(name), K, budget=100, interval=INTERVAL)
    return _drive(session, batches, extras)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow  # two spawned processes import torch: ~10-25 s on 2 cores
def test_ranks_share_the_single_process_decisions(tmp_path: Path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    for name in CONTROLLERS:
        single = _single_process(name)
        assert len(ranks[0][name]) == len(single) == STEPS + STEPS // INTERVAL
        for entry, (a, b, s) in enumerate(zip(ranks[0][name], ranks[1][name], single, strict=True)):
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"{name} entry {entry}: ranks")
            torch.testing.assert_close(a, s, rtol=1e-5, atol=1e-6, msg=f"{name} entry {entry}")
