"""Error-power weighting: each task weighted by a power of its validation error.

``w_k ∝ E_k^-gamma`` at every decision, sampling uniform, with ``E_k`` the task's
validation error (:func:`curriculum_rl.trainer.trainer.soft_error`: the MSE for
regression, the smoothed soft error for classification and tagging). gamma = 0 is
uniform; gamma = 1, registered as ``inverse-error``, equalises ``w_k E_k`` across tasks.
For regression that is the dynamic 1/L weighting whose gradient is that of the mean log
loss (geometric-mean loss, Chennupati et al. 2019), evaluated at decision time on the
validation probe; for classification the error is bounded in ``[1/(V+1), 1]``, so a
solved task can be favoured at most ``V + 1``-fold, where 1/L would pile weight on it
without limit. It is the learned policy's action family (``loss_power``) with a fixed
gamma and no residuals: the rule the policy must beat where re-weighting pays.
"""

from __future__ import annotations

from curriculum_rl.controllers.base import Controller, Decision, DecisionState, normalize_decision

EPS = 1e-12


class ErrorPower(Controller):
    """``w_k ∝ E_k^-gamma`` per decision, uniform sampling (module docstring)."""

    def __init__(self, gamma: float = 1.0) -> None:
        self.gamma = float(gamma)
        self.name = "inverse-error" if self.gamma == 1.0 else f"error-power-{self.gamma:g}"

    def decide(self, signals: DecisionState) -> Decision:
        mask = signals.mask
        log_error = signals.val_error.clamp_min(EPS).log()
        count = mask.sum(1, keepdim=True).clamp_min(1)
        centred = log_error - (log_error * mask).sum(1, keepdim=True) / count
        weights = (-self.gamma * centred).exp()
        return normalize_decision(weights * mask, mask.float(), mask)
