"""Bandit curricula driven by learning progress: the sampling follows the tasks whose
validation loss is currently moving. Loss weights stay uniform."""

from __future__ import annotations

import math

import torch

from curriculum_rl.controllers.base import Controller, Decision, RunContext, normalize_decision
from curriculum_rl.controllers.hooks import masked_softmax
from curriculum_rl.trainer.objective import floored_log
from curriculum_rl.trainer.signals import Signals


class Exp3S(Controller):
    """Exp3.S on learning progress (Graves et al. 2017, "Automated Curriculum Learning for
    Neural Networks", Sec. 2-3; Exp3.S from Auer et al. 2002).

    Policy: ``pi = (1 - eps) softmax(w) + eps / K``, so every valid task keeps at least the
    floor ``eps / K``. Reward of task k over the last interval: its learning progress, the
    decrease of its log validation loss (scale-free). As in Graves et al., rewards are
    rescaled to [-1, 1] by the 20th and 80th percentiles of all rewards the run has seen.
    Weights then follow Exp3.S's update

        w_k <- log[(1 - a) exp(w_k + eta r_k) + a / (K - 1) sum_{j != k} exp(w_j + eta r_j)]

    Batched adaptation: the bandit "plays" a decision interval, and the interval's batches
    are drawn from ``pi`` itself, so every task is played in every interval and its reward
    is observed; the importance weight 1/pi of bandit feedback is then 1 (full-information
    Exp3.S). Defaults suit ~tens of decisions (Graves et al. had ~1e5 plays):
    ``eta = sqrt(2 ln K / E)`` (the Hedge rate for rewards of range 2 over E decisions),
    share ``a = 1 / E``, ``eps = 0.05`` (the paper's value).
    """

    name = "exp3s"

    def __init__(
        self,
        epsilon: float = 0.05,
        eta: float | None = None,
        share: float | None = None,
        quantiles: tuple[float, float] = (0.2, 0.8),
    ) -> None:
        if not 0 < epsilon <= 1:
            raise ValueError(f"epsilon must lie in (0, 1], got {epsilon}")
        if not 0 <= quantiles[0] < quantiles[1] <= 1:
            raise ValueError(f"quantiles must be 0 <= low < high <= 1, got {quantiles}")
        self.epsilon, self.eta, self.share, self.quantiles = epsilon, eta, share, quantiles

    def reset(self, context: RunContext) -> None:
        super().reset(context)
        mask = context.mask
        self.log_w = torch.zeros(mask.shape, device=mask.device)
        self.previous: torch.Tensor | None = None
        self.rewards: list[list[float]] = [[] for _ in range(mask.shape[0])]
        total = context.num_decisions
        k = mask.sum(1).clamp_min(1).float()
        eta = torch.sqrt(2 * k.log() / total) if self.eta is None else torch.full_like(k, self.eta)
        self._eta = eta[:, None]
        self._share = 1.0 / total if self.share is None else self.share

    def probabilities(self, mask: torch.Tensor) -> torch.Tensor:
        """(N, K) current policy pi, at least eps / K on every valid task."""
        k = mask.sum(1, keepdim=True).clamp_min(1)
        return ((1 - self.epsilon) * masked_softmax(self.log_w, mask) + self.epsilon / k) * mask

    def decide(self, signals: Signals) -> Decision:
        mask = signals.mask
        log_val = floored_log(signals.val_loss)
        if self.previous is not None:
            progress = (self.previous - log_val) * mask
            self._update(self._rescale(progress, mask, ~signals.diverged), mask)
        self.previous = log_val
        return normalize_decision(mask.float(), self.probabilities(mask), mask)

    def _rescale(
        self, progress: torch.Tensor, mask: torch.Tensor, live: torch.Tensor
    ) -> torch.Tensor:
        """Map raw progress into [-1, 1] with each run's reward quantiles (Graves et al.)."""
        scaled = torch.zeros_like(progress)
        low_q, high_q = self.quantiles
        for n in range(progress.shape[0]):
            if not live[n]:
                continue
            self.rewards[n].extend(progress[n, mask[n]].tolist())
            seen = torch.tensor(self.rewards[n], device=progress.device)
            low, high = torch.quantile(seen, low_q), torch.quantile(seen, high_q)
            r = progress[n]
            if high > low:
                scaled[n] = (2 * (r - low) / (high - low) - 1).clamp(-1, 1)
            else:
                scaled[n] = torch.sign(r - low)
        return scaled * mask

    def _update(self, reward: torch.Tensor, mask: torch.Tensor) -> None:
        """Exp3.S weight update with fixed share, computed in log space."""
        k = mask.sum(1, keepdim=True).float()
        a = (self.log_w + self._eta * reward).masked_fill(~mask, -math.inf)
        top = a.max(1, keepdim=True).values.clamp_min(-1e30)
        e = torch.exp(a - top) * mask
        others = e.sum(1, keepdim=True) - e
        share = torch.where(k > 1, torch.full_like(k, self._share), torch.zeros_like(k))
        mixed = (1 - share) * e + share / (k - 1).clamp_min(1) * others
        self.log_w = torch.where(mask, top + mixed.clamp_min(1e-30).log(), torch.zeros_like(a))


class TSCL(Controller):
    """Teacher-Student Curriculum Learning (Matiisen et al. 2017), "Window" teacher with
    epsilon-greedy choice.

    The teacher estimates each task's learning progress as the slope of its learning
    curve over a recent window (here the signals' ``lp_slope``: least-squares slope of log
    validation loss over the last decisions) and trains on the task with the largest
    *absolute* slope, so a task being forgotten (rising loss) is revisited too. With
    probability eps a uniformly random task is trained instead; batched: sampling is
    ``(1 - eps)`` on the chosen task plus ``eps / K`` on every valid task. While all
    slopes are equal (the first decision) sampling is uniform.
    """

    name = "tscl"

    def __init__(self, epsilon: float = 0.1) -> None:
        if not 0 <= epsilon <= 1:
            raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}")
        self.epsilon = epsilon

    def decide(self, signals: Signals) -> Decision:
        mask = signals.mask
        k = mask.sum(1, keepdim=True).clamp_min(1)
        score = signals.lp_slope.abs().nan_to_num(0.0, 0.0, 0.0).masked_fill(~mask, -1.0)
        best = score.argmax(1, keepdim=True)
        greedy = torch.zeros_like(score).scatter_(1, best, 1.0)
        top = score.max(1, keepdim=True).values
        low = score.masked_fill(~mask, math.inf).min(1, keepdim=True).values
        greedy = torch.where(top > low, greedy, mask.float() / k)  # no information: uniform
        sampling = ((1 - self.epsilon) * greedy + self.epsilon / k) * mask
        return normalize_decision(mask.float(), sampling, mask)
