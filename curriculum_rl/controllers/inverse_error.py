"""Inverse-error weighting: each task weighted by the inverse of its validation error.

``w_k ∝ 1 / E_k`` at every decision, sampling uniform, with ``E_k`` the task's validation
error (:func:`curriculum_rl.trainer.trainer.soft_error`: the MSE for regression, the
smoothed soft error for classification and tagging). For regression it is the dynamic
1/L weighting whose gradient is that of the mean log loss (geometric-mean loss,
Chennupati et al. 2019) evaluated at decision time on the validation probe; for
classification the error is bounded in ``[1/(V+1), 1]``, so a solved task can be
favoured at most ``V + 1``-fold, where 1/L would pile weight on it without limit. It is
the learned policy's action family (``loss_power``) at gamma = 1 with no residuals: the
fixed point the policy must beat where re-weighting pays, and leave where it does not.
"""

from __future__ import annotations

from curriculum_rl.controllers.base import Controller, Decision, DecisionState, normalize_decision

EPS = 1e-12


class InverseError(Controller):
    """``w_k ∝ 1 / E_k`` per decision, uniform sampling (module docstring)."""

    name = "inverse-error"

    def decide(self, signals: DecisionState) -> Decision:
        mask = signals.mask
        weights = 1.0 / signals.val_error.clamp_min(EPS)
        return normalize_decision(weights * mask, mask.float(), mask)
