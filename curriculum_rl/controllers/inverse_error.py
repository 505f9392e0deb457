"""Error-power weighting: each task weighted by powers of its validation error.

``w_k ∝ E_k^-gamma E0_k^-start`` at every decision, sampling uniform, with ``E_k`` the
task's validation error now and ``E0_k`` at the run's first decision
(:func:`curriculum_rl.trainer.trainer.soft_error`: the MSE for regression, the smoothed
soft error for classification and tagging). Three members are registered:

* ``inverse-error`` (gamma 1, start 0) equalises ``w_k E_k`` across tasks. For regression
  that is the dynamic 1/L weighting whose gradient is that of the mean log loss
  (geometric-mean loss, Chennupati et al. 2019), evaluated on the validation probe; for
  classification the error is bounded in ``[1/(V+1), 1]``, so a solved task can be
  favoured at most ``V + 1``-fold, where 1/L would pile weight on it without limit.
* ``scale-normalised`` (gamma 1/2, start 1/2): ``w_k ∝ (E_k E0_k)^-1/2``. ``E0_k`` is the
  task's scale before training (for regression, roughly the mean square of its raw targets), so
  gamma + start = 1 still divides out scale, as a static weighting by the inverse of each
  task's initial loss does, while only half of the weight follows the current error: a
  task whose error has fallen 100-fold gains 10-fold, not 100-fold, so solved tasks draw
  less of the budget than under ``inverse-error``.
* ``initial-error`` (gamma 0, start 1): ``w_k ∝ 1 / E0_k``, fixed for the run: each task
  divided by its error before training (for regression, about the variance of its raw
  targets), the static normalisation by initial loss that GradNorm's loss ratios
  ``L_k(t) / L_k(0)`` also use (Chen et al. 2018); it divides out scale without following
  progress at all, the other end of the family from ``inverse-error``.

The learned policy's action families are built on these rules: ``loss_power`` is gamma
with no start term, ``error_power`` is both exponents centred on ``scale-normalised``
(:mod:`curriculum_rl.controllers.actions`).
"""

from __future__ import annotations

import torch

from curriculum_rl.controllers.base import Controller, Decision, DecisionState
from curriculum_rl.controllers.decision import uniform_decision
from curriculum_rl.controllers.hooks import masked_softmax
from curriculum_rl.trainer.objective import floored_log
from curriculum_rl.trainer.signals import Signals


def log_errors(signals: Signals) -> torch.Tensor:
    """(N, K) ``log E_k``, the current validation errors the family weighs by (non-finite
    entries, padded slots included, read as 0)."""
    return floored_log(signals.val_error)


def error_power_weights(
    signals: Signals,
    gamma: torch.Tensor,
    start: torch.Tensor,
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """(N, K) weights ``w_k ∝ E_k^-gamma E0_k^-start exp(residual_k)``, mean 1 over each
    run's valid tasks and 0 on padded slots; ``gamma`` is (N,), ``start`` (N,) or per task
    (N, K). The one definition of the family: the heuristics here and the learned policy's
    ``error_*`` action transforms (which add a bounded per-task ``residual``) both call it,
    so a zero action is its centre rule bit for bit."""
    mask = signals.mask
    log_error = log_errors(signals)
    log_start = signals.log_error_start.nan_to_num(0.0, 0.0, 0.0)
    start = start if start.dim() == 2 else start[:, None]
    logits = -gamma[:, None] * log_error - start * log_start
    if residual is not None:
        logits = logits + residual
    return mask.sum(1, keepdim=True).clamp_min(1).float() * masked_softmax(logits, mask)


class ErrorPower(Controller):
    """``w_k ∝ E_k^-gamma E0_k^-start`` per decision, uniform sampling (module docstring)."""

    def __init__(self, gamma: float = 1.0, start: float = 0.0, name: str | None = None) -> None:
        self.gamma = float(gamma)
        self.start = float(start)
        self.name = name or f"error-power-{self.gamma:g}-{self.start:g}"

    def exponents(self, signals: DecisionState) -> tuple[torch.Tensor, torch.Tensor]:
        """(N,) gamma and start exponent of each run at this decision (constant here)."""
        runs = signals.mask.shape[0]
        return torch.full((runs,), self.gamma), torch.full((runs,), self.start)

    def decide(self, signals: DecisionState) -> Decision:
        weights = error_power_weights(signals, *self.exponents(signals))
        return Decision(weights, uniform_decision(signals.mask).sampling)


def inverse_error() -> ErrorPower:
    """The registered ``inverse-error`` (gamma 1, start 0; module docstring): the one
    definition the heuristic registry and the learned policy's fallback both use."""
    return ErrorPower(1.0, 0.0, "inverse-error")
