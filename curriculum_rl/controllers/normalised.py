"""Root losses: every step minimises ``sum_k L_k^(1 - alpha)`` over the tasks.

Its gradient is ``(1 - alpha) sum_k grad L_k / L_k^alpha``: each task's loss divided by
a power of its own batch value, the trainer's per-step loss normalisation at ``alpha``
(:class:`~curriculum_rl.controllers.decision.Decision`), with uniform weights and
sampling. The family runs from the weighted sum (``alpha = 0``, uniform) to the
geometric-mean loss (``alpha = 1``, Chennupati et al. 2019). Per unit of output, a
regression task at residual ``r`` pulls a shared trunk with ``2 r^(1 - 2 alpha)``: plain
MSE (``2 r``) lets a raw-scale target take the trunk; the mean log loss (``2 / r``)
barely moves a raw target far from its fit beside a cross-entropy, and a solved
cross-entropy draws the trunk hardest.

* ``sqrt-loss`` (``alpha = 1/2``, ``sum_k sqrt(L_k)``): for a regression task the
  root-mean-square error, whose pull per unit of output is bounded by 2 whatever the
  target's scale; a task whose loss has fallen 100-fold gains 10-fold in step size.
* ``fourth-root-loss`` (``alpha = 3/4``, ``sum_k L_k^(1/4)``): three quarters of the way
  to the geometric mean. On the 62 read-tier suites it was the best point of the grid
  1/4, 1/2, 5/8, 3/4, 7/8, 1, by IQM and by mean paired gain over v8, and it kept clear
  of the geometric mean's collapses beside a classifier (benchmarks/RESULTS.md §39a).

Measured against v8 and the heuristics in benchmarks/RESULTS.md §38–39.
"""

from __future__ import annotations

from curriculum_rl.controllers.base import Controller, Decision
from curriculum_rl.controllers.decision import loss_normalised_decision
from curriculum_rl.trainer.signals import Signals

SQRT_ALPHA = 0.5  # the loss normalisation exponent of sum_k sqrt(L_k)
FOURTH_ROOT_ALPHA = 0.75  # that of sum_k L_k^(1/4)


class _RootLoss(Controller):
    """Uniform weights and sampling, each task's loss divided by its own batch value to
    the power ``alpha`` at every step (module docstring)."""

    alpha: float

    def decide(self, signals: Signals) -> Decision:
        return loss_normalised_decision(signals.mask, self.alpha)


class SqrtLoss(_RootLoss):
    """``sum_k sqrt(L_k)``: each loss divided by its square root (module docstring)."""

    name = "sqrt-loss"
    alpha = SQRT_ALPHA


class FourthRootLoss(_RootLoss):
    """``sum_k L_k^(1/4)``: each loss divided by its value to the power 3/4 (module
    docstring)."""

    name = "fourth-root-loss"
    alpha = FOURTH_ROOT_ALPHA
