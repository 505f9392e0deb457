"""Square-root loss: every step minimises ``sum_k sqrt(L_k)`` over the tasks.

Its gradient is ``sum_k grad L_k / (2 sqrt(L_k))``: each task's loss divided by the
square root of its own batch value, the trainer's per-step loss normalisation at
``alpha = 1/2`` (:class:`~curriculum_rl.controllers.decision.Decision`), with uniform
weights and sampling. It sits halfway between the weighted sum (``alpha = 0``, uniform)
and the geometric-mean loss (``alpha = 1``, Chennupati et al. 2019):

* for a regression task ``sqrt(L)`` is the root-mean-square error, whose gradient per
  unit of output is bounded by 2 whatever the target's scale (the mean log loss gives
  ``2 / r`` at a residual ``r``, so a raw target far from its fit barely moves a shared
  trunk beside a cross-entropy, and plain MSE gives ``2 r``, so it takes the trunk);
* a task whose loss has fallen 100-fold gains 10-fold in step size, not 100-fold, so a
  solved cross-entropy draws less of the trunk than under the geometric mean.

The rule is one point of the family ``grad L_k / L_k^alpha`` (0: uniform, 1: the
geometric mean), applied at every step; measured against v8 and the heuristics in
benchmarks/RESULTS.md §38.
"""

from __future__ import annotations

from curriculum_rl.controllers.base import Controller, Decision
from curriculum_rl.controllers.decision import loss_normalised_decision
from curriculum_rl.trainer.signals import Signals

SQRT_ALPHA = 0.5  # the loss normalisation exponent of sum_k sqrt(L_k)


class SqrtLoss(Controller):
    """Uniform weights and sampling, each task's loss divided by the square root of its
    own batch value at every step (module docstring)."""

    name = "sqrt-loss"

    def decide(self, signals: Signals) -> Decision:
        return loss_normalised_decision(signals.mask, SQRT_ALPHA)
