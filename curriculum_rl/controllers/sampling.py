"""Sampling schedules: they decide which tasks the batches are drawn from.

Loss weights stay uniform (1 per valid task); only the sampling probabilities change.
Every decision is batched over runs; padded tasks always get probability 0.
"""

from __future__ import annotations

import math

import torch

from curriculum_rl.controllers.base import Controller, Decision, normalize_decision
from curriculum_rl.controllers.hooks import masked_softmax
from curriculum_rl.trainer.signals import Signals


def size_power_sampling(
    train_sizes: torch.Tensor, mask: torch.Tensor, alpha: float | torch.Tensor
) -> torch.Tensor:
    """Probabilities ``p_k ∝ n_k^alpha`` over each run's valid tasks.

    ``alpha`` is a float or an (N, 1) tensor (one exponent per run). Computed as a softmax
    of ``alpha * log n`` so that large sizes and exponents cannot overflow.
    """
    log_sizes = train_sizes.float().clamp_min(1).log()
    return masked_softmax(alpha * log_sizes, mask)


def _sampling_decision(sampling: torch.Tensor, mask: torch.Tensor) -> Decision:
    return normalize_decision(mask.float(), sampling, mask)


class Temperature(Controller):
    """Temperature sampling, ``p_k ∝ n_k^alpha`` with ``n_k`` the training-set size.

    Conneau et al. 2020 (XLM-R, "Unsupervised Cross-lingual Representation Learning at
    Scale") and Xue et al. 2021 (mT5) use alpha = 0.3 to up-sample small languages.
    alpha = 0 is uniform sampling, alpha = 1 sampling proportional to data size.
    """

    name = "temperature"

    def __init__(self, alpha: float = 0.3) -> None:
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha = alpha

    def decide(self, signals: Signals) -> Decision:
        sampling = size_power_sampling(signals.train_sizes, signals.mask, self.alpha)
        return _sampling_decision(sampling, signals.mask)


class Proportional(Temperature):
    """Sampling proportional to data size, ``p_k = n_k / sum_j n_j`` (the implicit schedule
    of concatenating all task datasets; the alpha = 1 end of temperature sampling)."""

    name = "proportional"

    def __init__(self) -> None:
        super().__init__(alpha=1.0)


class Annealed(Controller):
    """Annealed sampling (Stickland & Murray 2019, "BERT and PALs", Sec. 4).

    ``p_k ∝ n_k^alpha_e`` with ``alpha_e = 1 - 0.8 (e - 1) / (E - 1)``: proportional to
    data size at the first decision, moving linearly to alpha = 0.2 (closer to uniform) at
    the last. The paper's epoch ``e`` of ``E`` is our decision index (1-based, the signals'
    ``decisions`` counter) out of ``RunContext.num_decisions``.
    """

    name = "annealed"

    def alpha(self, decision_index: torch.Tensor) -> torch.Tensor:
        """The exponent for each run at its (1-based) decision index, shape (N,)."""
        total = self.context.num_decisions
        if total <= 1:
            return torch.ones_like(decision_index, dtype=torch.float32)
        e = decision_index.float().clamp(1, total)
        return 1.0 - 0.8 * (e - 1) / (total - 1)

    def decide(self, signals: Signals) -> Decision:
        alpha = self.alpha(signals.decisions)[:, None]
        sampling = size_power_sampling(signals.train_sizes, signals.mask, alpha)
        return _sampling_decision(sampling, signals.mask)


class RoundRobin(Controller):
    """Round-robin task scheduling: each decision interval trains on one task only,
    cycling through the valid tasks in order (decision ``d`` samples task
    ``(d - 1) mod K``; the whole interval's batches come from that task).

    The classic alternating-batches multitask schedule (e.g. Dong et al. 2015, "Multi-Task
    Learning for Multiple Language Translation"), one task per interval instead of per batch.
    """

    name = "round-robin"

    def decide(self, signals: Signals) -> Decision:
        mask = signals.mask
        k = mask.sum(1).clamp_min(1)
        turn = (signals.decisions - 1).clamp_min(0) % k
        rank = mask.long().cumsum(1) - 1  # position of each valid task among the valid ones
        one_hot = mask & (rank == turn[:, None])
        return _sampling_decision(one_hot.float(), mask)


class _Pacing(Controller):
    """Shared logic of the pacing curricula (see :class:`EasyToHard`).

    Difficulty of task k = ``log(val loss now / val loss at the first decision)``: a task
    whose loss has dropped most, relative to its own start, is the easiest (scale-free, so
    a task's output scale does not decide its rank). At budget fraction ``t`` the pacing
    function admits ``m = ceil(K * f(t))`` tasks, ``f(t) = min(1, f0 + (1 - f0) t / ramp)``
    (linear competence, Platanios et al. 2019); admitted tasks are sampled uniformly, the
    others not at all. Ties (all ratios are 0 at the first decision) go to the lower index.
    """

    hardest_first = False

    def __init__(self, start_fraction: float = 0.25, ramp: float = 0.5) -> None:
        if not 0 < start_fraction <= 1:
            raise ValueError(f"start_fraction must lie in (0, 1], got {start_fraction}")
        if not ramp > 0:
            raise ValueError(f"ramp must be > 0, got {ramp}")
        self.start_fraction, self.ramp = start_fraction, ramp

    def admitted_count(self, progress: torch.Tensor, num_tasks: torch.Tensor) -> torch.Tensor:
        """(N,) number of tasks admitted at budget fraction ``progress``."""
        f0 = self.start_fraction
        frac = (f0 + (1 - f0) * progress.float() / self.ramp).clamp(max=1.0)
        # Round before ceil so that float error (0.25 * 4 = 1.0000001) cannot admit one more.
        count = torch.ceil(torch.round(frac * num_tasks * 1e6) / 1e6)
        return count.clamp(min=1).minimum(num_tasks).long()

    def decide(self, signals: Signals) -> Decision:
        mask = signals.mask
        difficulty = signals.log_val_ratio.nan_to_num(0.0, 0.0, 0.0)
        key = -difficulty if self.hardest_first else difficulty
        key = key.masked_fill(~mask, math.inf)  # padded tasks sort last
        order = torch.argsort(key, dim=1, stable=True)
        rank = torch.empty_like(order).scatter_(
            1, order, torch.arange(key.shape[1]).expand_as(order).to(order)
        )
        count = self.admitted_count(signals.progress, mask.sum(1).float())
        admitted = mask & (rank < count[:, None])
        return _sampling_decision(admitted.float(), mask)


class EasyToHard(_Pacing):
    """Easy-to-hard pacing curriculum (Bengio et al. 2009, "Curriculum Learning"; pacing
    function as in Hacohen & Weinshall 2019): train first on the tasks that are learning
    fastest relative to their start, admit the others as the budget advances (all tasks
    from ``ramp`` x budget on). Difficulty and pacing are defined in :class:`_Pacing`."""

    name = "easy-to-hard"
    hardest_first = False


class HardFirst(_Pacing):
    """Hard-first pacing (the anti-curriculum of Hacohen & Weinshall 2019): the same
    pacing function as :class:`EasyToHard`, but admitting the tasks whose loss has dropped
    least relative to their start first."""

    name = "hard-first"
    hardest_first = True
