"""A decision: per-task loss weights and sampling probabilities for a batch of runs,
how far each run's objective normalises every task's loss by its own scale, and the
objective's overall scale."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass
class Decision:
    """Per-task loss weights (mean 1 over valid tasks) and sampling probabilities
    (sum 1 over valid tasks), both (N, K); padded tasks hold 0.

    ``normalisation`` (N,) in [0, 1] is the exponent ``alpha`` of the trainer's per-step
    objective ``sum_k w_k L_k / sg(L_k)^alpha`` (``sg``: no gradient): 0, the default, is
    the weighted sum; 1 divides every task's loss by its own batch value, the gradient of
    the mean log loss (the ``geometric-mean`` rule) weighted by ``w``.

    ``scale`` (N,) > 0 multiplies that whole objective, 1 by default. Adam divides a
    constant scale out, so it matters only when it keeps the objective's size continuous
    across a change of ``alpha`` mid-run: divided by its own value, a raw-scale loss's
    gradient shrinks by that value while the optimiser's second moments still hold the
    old size, and runs switched to ``alpha = 1`` mid-run lost for it (RESULTS §36d).

    Decisions derived from another keep both (``dataclasses.replace``); :meth:`runs`,
    :meth:`where` and :meth:`cat` carry them.
    """

    weights: torch.Tensor
    sampling: torch.Tensor
    normalisation: torch.Tensor | None = None
    scale: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.normalisation is None:
            self.normalisation = self.weights.new_zeros(self.weights.shape[0])
        if self.scale is None:
            self.scale = self.weights.new_ones(self.weights.shape[0])

    def runs(self, rows: slice | torch.Tensor) -> Decision:
        """The decision of some runs only (``rows`` indexes the first dimension)."""
        return Decision(
            self.weights[rows], self.sampling[rows], self.normalisation[rows], self.scale[rows]
        )

    def where(self, runs: torch.Tensor, other: Decision) -> Decision:
        """Per run, this decision where ``runs`` (N,) is true and ``other`` elsewhere."""
        rows = runs[:, None]
        return Decision(
            torch.where(rows, self.weights, other.weights),
            torch.where(rows, self.sampling, other.sampling),
            torch.where(runs, self.normalisation, other.normalisation),
            torch.where(runs, self.scale, other.scale),
        )

    def cat(self, other: Decision) -> Decision:
        """The runs of ``self`` followed by those of ``other``."""
        return Decision(
            torch.cat([self.weights, other.weights]),
            torch.cat([self.sampling, other.sampling]),
            torch.cat([self.normalisation, other.normalisation]),
            torch.cat([self.scale, other.scale]),
        )


def uniform_decision(mask: torch.Tensor) -> Decision:
    """Weight 1 and probability 1/K for every valid task."""
    valid = mask.float()
    return Decision(valid.clone(), valid / valid.sum(1, keepdim=True).clamp_min(1))


def loss_normalised_decision(mask: torch.Tensor, alpha: float = 1.0) -> Decision:
    """Uniform weights and sampling with loss normalisation ``alpha``: at 1 every step
    follows the gradient of the mean log loss, the ``geometric-mean`` rule (Chennupati et
    al. 2019) as a decision the trainer applies (that heuristic's hook, via torchjd, takes
    the same direction; tests/test_trainer.py and tests/test_switch_imitation.py compare
    the runs); at 1/2 that of ``sum_k sqrt(L_k)``, the ``sqrt-loss`` rule."""
    decision = uniform_decision(mask)
    return replace(decision, normalisation=decision.weights.new_full((mask.shape[0],), alpha))


def normalize_decision(
    weights: torch.Tensor, sampling: torch.Tensor, mask: torch.Tensor
) -> Decision:
    """Scale weights to mean 1 and sampling to sum 1 over each run's valid tasks."""
    sampling = sampling * mask.float()
    sampling = sampling / sampling.sum(1, keepdim=True).clamp_min(1e-12)
    return Decision(mean_one_weights(weights, mask), sampling)


def scale_weights(decision: Decision, mask: torch.Tensor, factor: torch.Tensor) -> Decision:
    """``decision`` with weights times ``factor`` (N, K), rescaled to mean 1 over the valid
    tasks (``mask``); sampling and normalisation unchanged. Runs whose factors are all 1
    keep their weights bit for bit (no rescaling round-off), so a factor of 1 is the base
    decision exactly."""
    rescaled = normalize_decision(decision.weights * factor, decision.sampling, mask)
    changed = (factor != 1).any(1, keepdim=True)
    return replace(decision, weights=torch.where(changed, rescaled.weights, decision.weights))


def mean_one_weights(weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N, K) ``weights`` scaled to mean 1 over each run's valid tasks, 0 on padded ones."""
    valid = mask.float()
    weights = weights * valid
    k = valid.sum(1, keepdim=True).clamp_min(1)
    return weights * k / weights.sum(1, keepdim=True).clamp_min(1e-12)
