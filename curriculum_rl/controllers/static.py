"""Static task weights, and their tuning on the validation split.

Published comparisons (Xin et al. 2022, "Do Current Multi-Task Optimization Methods in
Deep Learning Even Help?"; Kurin et al. 2022, "In Defense of the Unitary Scalarization for
Deep Multi-Task Learning") found fixed, well-tuned loss weights the hardest baseline to
beat. :class:`StaticWeights` applies given weights; :func:`tune_static_weights` picks them
per suite instance from a stated grid by a validation score at the end of a probe run:
by default the mean log validation *error* (the validation twin of the headline G_m, so
the baseline is tuned on what it is judged by), or the mean log validation loss (J).
Tuning needs the instances, so it is a function the benchmark calls, not a registered
name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from curriculum_rl.controllers.base import Controller, Decision, RunContext, normalize_decision
from curriculum_rl.suites.base import SuiteInstance
from curriculum_rl.trainer import (
    CRITERIA,
    BatchedMultitaskTrainer,
    TrainerConfig,
    validation_potential,
)
from curriculum_rl.trainer.signals import Signals


class StaticWeights(Controller):
    """Fixed loss weights, uniform sampling (the static-weights baseline).

    ``weights`` is one vector (used for every run; its length must equal each run's
    number of tasks) or one vector per run. Weights are rescaled to mean 1.
    """

    name = "static"

    def __init__(self, weights: Sequence[float] | Sequence[Sequence[float]] | torch.Tensor) -> None:
        if isinstance(weights, torch.Tensor):
            weights = weights.tolist()
        if len(weights) == 0:
            raise ValueError("give at least one weight")
        per_run = not isinstance(weights[0], int | float)
        self._per_run = [list(map(float, w)) for w in weights] if per_run else None
        self._shared = None if per_run else [float(w) for w in weights]
        for vector in self._per_run or [self._shared]:
            if any(not math.isfinite(w) or w < 0 for w in vector) or sum(vector) <= 0:
                raise ValueError(f"weights must be finite, >= 0 and not all 0, got {vector}")

    def reset(self, context: RunContext) -> None:
        super().reset(context)
        mask = context.mask
        counts = [int(k) for k in mask.sum(1).tolist()]
        vectors = self._per_run or [self._shared] * len(counts)
        if len(vectors) != len(counts):
            raise ValueError(f"{len(vectors)} weight vectors for {len(counts)} runs")
        self.table = torch.zeros(mask.shape, device=mask.device)
        for n, (vector, k) in enumerate(zip(vectors, counts, strict=True)):
            if len(vector) != k:
                raise ValueError(f"run {n} has {k} tasks but {len(vector)} weights")
            self.table[n, mask[n]] = torch.tensor(vector, device=mask.device)

    def decide(self, signals: Signals) -> Decision:
        mask = signals.mask
        return normalize_decision(self.table, mask.float(), mask)


@dataclass(frozen=True)
class StaticGrid:
    """The search space of :func:`tune_static_weights`, in two stages.

    Stage 1, loss-scale family: ``w_k ∝ L_k(0)^-gamma`` for each gamma in ``gammas``, with
    ``L_k(0)`` the validation loss at initialisation (geometric mean over the tuning seeds).
    gamma = 0 is uniform; gamma = 1 equalises the initial losses (a static 1/L weighting).
    Stage 2, one task re-weighted at a time (greedy coordinate search): starting from the
    best vector so far, each task in turn multiplied by each factor in ``factors``
    (down-weighting a noisy or a tiny, overfitting task helps as often as up-weighting a
    lagging one); the best candidate becomes the start of the next of ``rounds`` passes,
    and the search stops early when a pass improves nothing. So two noisy tasks can both be
    down-weighted. Cost per instance: at most
    ``(len(gammas) + rounds K len(factors)) x len(seeds)`` runs of the full budget
    (batched as one trainer per pass).
    """

    gammas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    factors: tuple[float, ...] = (0.25, 4.0)
    rounds: int = 2

    def __post_init__(self) -> None:
        if not self.gammas:
            raise ValueError("give at least one gamma")
        if not self.factors or not all(f > 0 for f in self.factors):
            raise ValueError(f"factors must be > 0, got {self.factors}")
        if self.rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {self.rounds}")


def initial_val_losses(
    instance: SuiteInstance, seeds: Sequence[int], config: TrainerConfig | None = None
) -> torch.Tensor:
    """(K,) validation-probe loss at initialisation, geometric mean over ``seeds``."""
    trainer = BatchedMultitaskTrainer([instance] * len(seeds), list(seeds), config)
    losses = trainer.measure().val_loss.clamp_min(1e-12)
    return losses.log().mean(0).exp().cpu()


def _final_val_scores(
    instance: SuiteInstance,
    seeds: Sequence[int],
    candidates: list[list[float]],
    budget: int,
    config: TrainerConfig | None,
    criterion: str,
) -> list[float]:
    """Mean over seeds of each candidate's validation-probe score after ``budget`` steps
    (:func:`~curriculum_rl.trainer.validation_potential`; lower is better).

    A static schedule never changes, so the runs train straight through: the same inner
    steps as ``run_controller`` with :class:`StaticWeights` (measuring in between changes
    no parameter), so with ``criterion="loss"`` the score is its ``RunRecord.j_curve[-1]``;
    all candidates and seeds train as one batch.
    """
    runs = [(c, s) for c in candidates for s in seeds]
    trainer = BatchedMultitaskTrainer([instance] * len(runs), [s for _, s in runs], config)
    weights = torch.tensor([c for c, _ in runs], device=trainer.device)
    trainer.set_schedule(weights, trainer.mask.float())
    trainer.train(budget)
    scores = validation_potential(trainer.measure(), criterion).tolist()
    js = [j if math.isfinite(j) else math.inf for j in scores]
    per_seed = len(seeds)
    return [sum(js[i * per_seed : (i + 1) * per_seed]) / per_seed for i in range(len(candidates))]


def _mean_one(vector: torch.Tensor) -> list[float]:
    return (vector * len(vector) / vector.sum()).tolist()


def tune_static_weights(
    instances: Sequence[SuiteInstance],
    seeds: Sequence[int],
    budget: int,
    *,
    config: TrainerConfig | None = None,
    grid: StaticGrid | None = None,
    criterion: str = "error",
) -> list[list[float]]:
    """Best static weights (mean 1) for each instance, chosen on the validation split.

    Every candidate of ``grid`` (see :class:`StaticGrid`) is trained on each instance with
    every seed in ``seeds`` for ``budget`` inner steps, and scored by the mean over seeds
    of the final validation-probe score ``criterion``: ``"error"`` (default), the mean log
    validation error over target tasks, the twin of the headline G_m; ``"loss"``, the
    validation J (what ``run_controller`` records as ``RunRecord.j_curve[-1]``), which a
    solved task's shrinking cross-entropy can dominate. Ties keep the earlier candidate, so
    uniform wins unless something is strictly better. A static schedule does not depend on
    the decision interval, so none is asked for; ``config`` and ``grid`` are keyword-only, so a
    positional call that still passes an interval fails loudly instead of taking it for
    the config. Use tuning seeds distinct from the evaluation seeds.
    """
    grid = grid or StaticGrid()
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    if not seeds:
        raise ValueError("give at least one tuning seed")
    best_weights = []
    for instance in instances:
        start = initial_val_losses(instance, seeds, config)
        family = [_mean_one(start.pow(-g)) for g in grid.gammas]
        scores = _final_val_scores(instance, seeds, family, budget, config, criterion)
        best = min(range(len(family)), key=lambda i: scores[i])
        chosen, chosen_score = family[best], scores[best]
        for _ in range(grid.rounds):
            base = torch.tensor(chosen)
            moves = [
                _mean_one(base * torch.where(torch.arange(len(base)) == k, factor, 1.0))
                for k in range(len(base))
                for factor in grid.factors
            ]
            move_scores = _final_val_scores(instance, seeds, moves, budget, config, criterion)
            best_move = min(range(len(moves)), key=lambda i: move_scores[i])
            if not move_scores[best_move] < chosen_score:
                break
            chosen, chosen_score = moves[best_move], move_scores[best_move]
        best_weights.append(chosen)
    return best_weights
