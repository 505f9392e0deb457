"""Which controllers can act in a user's loop, and how a per-step hook is driven there.

A session sets loss weights and sampling for a model it does not own. Every controller
that only decides (the learned policy, the sampling schedules, the bandits) acts through
its decisions. Loss-weighting methods that act in every step (DWA, UW, FAMO, RLW, IMTL-L,
geometric-mean) act too: their weights are a function of the losses, so the session runs
the controller's own step hook on a detached copy of the per-task losses and reads each
loss's weight off the copy's gradient (``d objective / d L_k``); the loss it returns,
``sum_k w_k L_k``, then has exactly the hook's gradient with respect to your model. Methods
whose step needs the model's parameters (GradNorm's per-task gradient norms, the gradient
aggregators' per-task Jacobians) cannot act on losses alone and are refused here with the
reason and the alternatives, never silently run as uniform.
"""

from __future__ import annotations

import torch
from torch import nn

from curriculum_rl.controllers.aggregation import Aggregated
from curriculum_rl.controllers.base import Controller
from curriculum_rl.controllers.weighting import GradNorm
from curriculum_rl.trainer import StepContext, StepHook

LOSS_ONLY_ALTERNATIVES = "dwa, uw, famo, rlw, imtl-l, geometric-mean, or the learned policy"


def check_supported(controller: Controller) -> None:
    """Raise ``ValueError`` for a controller that cannot act in a user's loop."""
    if isinstance(controller, Aggregated):
        raise ValueError(
            f"controller {controller.name!r} is a gradient aggregator: in every step it "
            "combines the per-task gradients of the shared parameters into one update, which "
            "needs your model's parameters and backward pass, not only its losses. In your "
            "own loop, call torchjd directly (torchjd.autojac.mtl_backward with its "
            f"aggregator), or use a controller that acts on losses: {LOSS_ONLY_ALTERNATIVES}"
        )
    if isinstance(controller, GradNorm):
        raise ValueError(
            "controller 'gradnorm' learns its weights from each task's gradient norm on the "
            "trainer's last shared layer at every step, which a session cannot measure in "
            f"your model; use a controller that acts on losses: {LOSS_ONLY_ALTERNATIVES}"
        )


class HookDriver:
    """Runs a controller's :class:`~curriculum_rl.trainer.StepHook` on per-task losses
    alone and returns the weight it gives each loss this step."""

    def __init__(self, hook: StepHook, name: str, mask: torch.Tensor) -> None:
        self.hook, self.name, self.mask = hook, name, mask
        # The hooks that act on losses never touch parameters; an empty group says so.
        self._no_weight = nn.Parameter(torch.empty(0))

    def weights(self, losses: torch.Tensor, in_force: torch.Tensor) -> torch.Tensor:
        """(K,) this step's weights for the host-side per-task losses ``losses`` (K,);
        ``in_force`` (1, K) are the decision's weights (what the trainer hands a hook).
        Steps the hook's own state (DWA's loss sums, UW's log-variances, RLW's draws...)."""
        proxy = losses.detach().float().clone()[None].requires_grad_(True)
        active = torch.isfinite(proxy.detach()).all(1)
        context = StepContext([], [], self.mask, active, self._no_weight)
        with torch.enable_grad(), torch.autocast("cpu", enabled=False):
            self.hook.backward(proxy, in_force, context)
        if proxy.grad is not None:
            return proxy.grad[0].detach()
        if not bool(active[0]):  # non-finite losses: the hook skipped the step, as in training
            return in_force[0]
        raise RuntimeError(
            f"controller {self.name!r}: its per-step hook left the losses without a gradient, "
            "so it does not act through the losses and a session cannot apply it; use a "
            f"controller that acts on losses: {LOSS_ONLY_ALTERNATIVES}"
        )
