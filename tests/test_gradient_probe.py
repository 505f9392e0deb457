"""GradientProbe: the per-task gradient Gram on a shared layer, by the trainer's Gram trick,
equals the Gram of the per-task gradients autograd computes one task at a time."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from curriculum_rl.session import GradientProbe

K = 3


def explicit_gram(losses_per_task: list[torch.Tensor], weight: torch.Tensor) -> torch.Tensor:
    grads = [
        torch.autograd.grad(loss, weight, retain_graph=True)[0].flatten()
        for loss in losses_per_task
    ]
    stacked = torch.stack(grads)
    return stacked @ stacked.T


def test_per_example_losses_with_task_ids():
    torch.manual_seed(0)
    shared, heads = nn.Linear(5, 7), nn.Linear(7, K)
    x, tasks = torch.randn(12, 5), torch.tensor([0, 1, 2, 0, 0, 1, 2, 2, 2, 0, 1, 0])
    probe = GradientProbe(shared)
    probe.arm()
    losses = heads(torch.tanh(shared(x))).gather(1, tasks[:, None])[:, 0] ** 2
    gram = probe.gram(losses, tasks, K)
    means = [losses[tasks == k].mean() for k in range(K)]  # the trainer's mean task loss
    torch.testing.assert_close(gram, explicit_gram(means, shared.weight))
    assert not probe.armed and not probe.captured


def test_token_rows_belong_to_their_example():
    torch.manual_seed(1)
    shared, heads = nn.Linear(4, 6), nn.Linear(6, K)
    x, tasks = torch.randn(5, 8, 4), torch.tensor([2, 0, 1, 1, 0])  # 5 sequences of 8 tokens
    probe = GradientProbe(shared)
    probe.arm()
    per_token = heads(torch.relu(shared(x))).gather(2, tasks[:, None, None].expand(5, 8, 1))
    losses = per_token[..., 0].pow(2).mean(1)  # one loss per example
    gram = probe.gram(losses, tasks, K)
    means = [losses[tasks == k].mean() for k in range(K)]
    torch.testing.assert_close(gram, explicit_gram(means, shared.weight))


def test_per_task_losses_on_a_shared_batch():
    torch.manual_seed(2)
    shared, heads = nn.Linear(5, 7), nn.Linear(7, K)
    probe = GradientProbe(shared)
    probe.arm()
    out = heads(torch.tanh(shared(torch.randn(9, 5))))
    losses = (out - torch.tensor([1.0, -2.0, 30.0])).pow(2).mean(0)  # every example, every task
    gram = probe.gram(losses, None, K)
    torch.testing.assert_close(gram, explicit_gram(list(losses), shared.weight))


def test_only_armed_passes_with_a_graph_are_recorded():
    shared = nn.Linear(3, 3)
    probe = GradientProbe(shared)
    shared(torch.randn(2, 3))
    assert not probe.captured  # not armed
    probe.arm()
    with torch.no_grad():
        shared(torch.randn(2, 3))
    assert not probe.captured  # validation-style pass: nothing to differentiate
    assert probe.gram(torch.ones(2), torch.zeros(2, dtype=torch.long), K) is None


def test_misuse_names_the_fix():
    with pytest.raises(TypeError, match=r"nn\.Linear"):
        GradientProbe(nn.Conv1d(2, 2, 1))
    shared = nn.Linear(3, 3)
    probe = GradientProbe(shared)
    probe.arm()
    out = shared(torch.randn(4, 3)).sum(1)
    with pytest.raises(ValueError, match="once per forward pass"):
        probe.gram(out[:2], torch.zeros(2, dtype=torch.long), K)
