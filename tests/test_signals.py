"""SignalTracker: the policy's inputs, each against its definition."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from curriculum_rl.trainer import Measurement
from curriculum_rl.trainer.signals import SignalTracker

N, K = 2, 3


def _measurement(val, train=None, gram=None, combined=None, steps=0) -> Measurement:
    val = torch.as_tensor(val, dtype=torch.float32)
    return Measurement(
        train_loss=val.clone() if train is None else torch.as_tensor(train, dtype=torch.float32),
        val_loss=val,
        grad_gram=torch.zeros(N, K, K) if gram is None else gram,
        combined=torch.ones(N, K) if combined is None else combined,
        mask=torch.ones(N, K, dtype=torch.bool),
        objective=torch.ones(N, K, dtype=torch.bool),
        diverged=torch.zeros(N, dtype=torch.bool),
        steps=torch.full((N,), steps),
        j=val.log().mean(1),
    )


def _feed(tracker: SignalTracker, log_vals: list[float], budget: int = 100):
    """Feed run 0 / task 0 the given log val losses (other cells constant)."""
    signals = None
    for t, value in enumerate(log_vals):
        val = torch.ones(N, K)
        val[0, 0] = math.exp(value)
        signals = tracker.update(_measurement(val, steps=25 * t), budget, torch.ones(N, K))
    return signals


def test_first_decision_starts_every_history_at_the_current_value():
    tracker = SignalTracker(N, K)
    signals = _feed(tracker, [0.7])
    assert signals.lp_slope.abs().max() == 0 and signals.lp_gap.abs().max() == 0
    assert signals.log_val_ratio.abs().max() == 0
    assert signals.decisions.tolist() == [1, 1]


def test_learning_progress_slope_is_least_squares_over_the_window():
    tracker = SignalTracker(N, K, window=5)
    values = [2.0, 1.5, 1.4, 0.9, 0.2, 0.1, -0.3]
    signals = None
    for t in range(len(values)):
        signals = _feed(tracker, [values[t]]) if t == 0 else _feed_more(tracker, values[t], t)
        seen = values[max(0, t - 4) : t + 1]
        expected = np.polyfit(np.arange(len(seen)), seen, 1)[0] if len(seen) > 1 else 0.0
        assert signals.lp_slope[0, 0].item() == pytest.approx(expected, abs=1e-5)
    assert signals.lp_slope[1].abs().max() == 0  # a constant run has no progress


def _feed_more(tracker: SignalTracker, value: float, t: int):
    val = torch.ones(N, K)
    val[0, 0] = math.exp(value)
    return tracker.update(_measurement(val, steps=25 * t), 100, torch.ones(N, K))


def test_moving_average_gap_and_ratio_to_the_start():
    tracker = SignalTracker(N, K, fast=0.5, slow=0.1)
    values = [1.0, 0.0, -1.0]
    fast = slow = values[0]
    for t, value in enumerate(values):
        signals = _feed(tracker, [value]) if t == 0 else _feed_more(tracker, value, t)
        if t:
            fast, slow = fast + 0.5 * (value - fast), slow + 0.1 * (value - slow)
    assert signals.lp_gap[0, 0].item() == pytest.approx(fast - slow, abs=1e-6)
    assert signals.log_val_ratio[0, 0].item() == pytest.approx(values[-1] - values[0], abs=1e-6)


def test_missing_train_loss_keeps_the_last_one_and_starts_from_val():
    tracker = SignalTracker(N, K)
    nan = float("nan")
    first = tracker.update(
        _measurement(torch.full((N, K), 2.0), train=torch.full((N, K), nan)), 100, torch.ones(N, K)
    )
    assert torch.equal(first.train_loss, torch.full((N, K), 2.0))  # no example yet: val
    train = torch.full((N, K), 3.0)
    tracker.update(_measurement(torch.ones(N, K), train=train), 100, torch.ones(N, K))
    train[0, 1] = nan
    third = tracker.update(_measurement(torch.ones(N, K), train=train), 100, torch.ones(N, K))
    assert third.train_loss[0, 1] == 3.0  # a task that drew no example keeps its last loss


def test_cosines_norms_and_alignment_with_the_update_come_from_the_gram_matrix():
    grads = torch.randn(N, K, 7, generator=torch.Generator().manual_seed(0))
    gram = grads @ grads.transpose(1, 2)
    combined = torch.tensor([[1.0, 2.0, 0.5], [0.0, 1.0, 1.0]])
    signals = SignalTracker(N, K).update(
        _measurement(torch.ones(N, K), gram=gram, combined=combined), 100, torch.ones(N, K)
    )
    torch.testing.assert_close(signals.grad_norm, grads.norm(dim=-1))
    unit = grads / grads.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(signals.grad_cos, unit @ unit.transpose(1, 2))
    update = (combined[..., None] * grads).sum(1)
    expected = torch.nn.functional.cosine_similarity(grads, update[:, None], dim=-1)
    torch.testing.assert_close(signals.cos_update, expected)


def test_a_runs_alignment_with_the_update_does_not_depend_on_the_runs_beside_it():
    """Two copies of one run beside a third, and the run alone, get the same cosines with
    the update bit for bit, also with 24 task slots (where a batched einsum rounded a run's
    products by its place in the batch)."""
    gen = torch.Generator().manual_seed(0)
    k = 24
    grads = torch.randn(2, k, 7, generator=gen) * torch.logspace(-3, 3, k)[:, None]
    gram = (grads @ grads.transpose(1, 2))[[0, 0, 1]]
    combined = torch.rand(2, k, generator=gen)[[0, 0, 1]]

    def cos_update(rows: list[int]) -> torch.Tensor:
        n = len(rows)
        measurement = Measurement(
            train_loss=torch.ones(n, k),
            val_loss=torch.ones(n, k),
            grad_gram=gram[rows],
            combined=combined[rows],
            mask=torch.ones(n, k, dtype=torch.bool),
            objective=torch.ones(n, k, dtype=torch.bool),
            diverged=torch.zeros(n, dtype=torch.bool),
            steps=torch.zeros(n, dtype=torch.long),
            j=torch.zeros(n),
        )
        return SignalTracker(n, k).update(measurement, 100, torch.ones(n, k)).cos_update

    batched, alone = cos_update([0, 1, 2]), cos_update([0])
    assert torch.equal(batched[0], alone[0]) and torch.equal(batched[1], alone[0])


def test_progress_is_the_fraction_of_each_runs_budget():
    tracker = SignalTracker(N, K)
    signals = tracker.update(
        _measurement(torch.ones(N, K), steps=50), torch.tensor([100, 40]), torch.ones(N, K)
    )
    assert signals.progress.tolist() == [0.5, 1.0]


def test_reset_and_run_selection_touch_only_the_chosen_runs():
    tracker = SignalTracker(N, K)
    _feed(tracker, [1.0, 0.5, 0.0])
    history = tracker.history.clone()
    tracker.reset_runs([0])
    val = torch.full((N, K), 5.0)
    signals = tracker.update(
        _measurement(val), 100, torch.ones(N, K), runs=torch.tensor([True, False])
    )
    assert signals.decisions.tolist() == [1, 3]
    assert signals.log_val_ratio[0].abs().max() == 0  # run 0 starts afresh at 5.0
    assert torch.equal(tracker.history[1], history[1])  # run 1 did not advance
