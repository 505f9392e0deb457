"""Which controllers can act in a user's loop, and how a per-step hook is driven there.

A session sets loss weights and sampling for a model it does not own. Every controller
that only decides (the learned policy, the sampling schedules, the bandits) acts through
its decisions. Loss-weighting methods that act in every step (DWA, UW, FAMO, RLW, IMTL-L,
geometric-mean) act too: their weights are a function of the losses, so the session runs
the controller's own step hook on a detached copy of the per-task losses and reads each
loss's weight off the copy's gradient (``d objective / d L_k``); the loss it returns,
``sum_k w_k L_k``, then has exactly the hook's gradient with respect to your model.
GradNorm's weights are a function of the losses and of each task's gradient norm on a
shared layer: given that layer (the session's probe), the session measures the norms on
your graph and runs GradNorm's own weight step (:class:`GradNormDriver`). The gradient
aggregators combine per-task Jacobians into the update itself, which a loss cannot carry:
they are refused here with the reason and the alternatives, never silently run as uniform.

A driver turns one step's per-task losses into what the step's weights depend on
(``measure``, on the device; the session copies it to the host, averages it over ranks and
journals it, so a checkpoint replays it) and that into the weights (``weights``).
"""

from __future__ import annotations

import torch
from torch import nn

from curriculum_rl.controllers.aggregation import Aggregated
from curriculum_rl.controllers.base import Controller
from curriculum_rl.controllers.weighting import GradNorm
from curriculum_rl.session.grads import GradientProbe
from curriculum_rl.trainer import StepContext, StepHook

LOSS_ONLY_ALTERNATIVES = "dwa, uw, famo, rlw, imtl-l, geometric-mean, or the learned policy"


def check_supported(controller: Controller, probe: GradientProbe | None) -> None:
    """Raise ``ValueError`` for a controller that cannot act in a user's loop (or not
    without a shared layer to measure on)."""
    if isinstance(controller, Aggregated):
        raise ValueError(
            f"controller {controller.name!r} is a gradient aggregator: in every step it "
            "combines the per-task gradients of the shared parameters into one update, which "
            "needs your model's parameters and backward pass, not only its losses. In your "
            "own loop, call torchjd directly (torchjd.autojac.mtl_backward with its "
            f"aggregator), or use a controller that acts on losses: {LOSS_ONLY_ALTERNATIVES}"
        )
    if isinstance(controller, GradNorm) and probe is None:
        raise ValueError(
            "controller 'gradnorm' learns its weights from each task's gradient norm on a "
            "shared layer at every step: give the session probe=GradientProbe(layer), the "
            "last nn.Linear shared by all tasks, to measure them on; or use a controller "
            f"that acts on losses: {LOSS_ONLY_ALTERNATIVES}"
        )


def step_driver(
    controller: Controller, mask: torch.Tensor, probe: GradientProbe | None
) -> HookDriver | GradNormDriver | None:
    """The driver of ``controller``'s per-step hook; ``None`` for a controller without
    one (its decisions' weights hold for the whole interval)."""
    if controller.hook is None:
        return None
    if isinstance(controller, GradNorm):
        assert probe is not None, "check_supported refuses gradnorm without a probe"
        return GradNormDriver(controller, probe.layer.weight, mask)
    return HookDriver(controller.hook, controller.name, mask)


class HookDriver:
    """Runs a controller's :class:`~curriculum_rl.trainer.StepHook` on per-task losses
    alone and returns the weight it gives each loss this step."""

    def __init__(self, hook: StepHook, name: str, mask: torch.Tensor) -> None:
        self.hook, self.name, self.mask = hook, name, mask
        self.width = mask.shape[1]
        # The hooks that act on losses never touch parameters; an empty group says so.
        self._no_weight = nn.Parameter(torch.empty(0))

    def measure(self, per_task: torch.Tensor) -> torch.Tensor:
        """(K,) what the weights depend on: the losses themselves."""
        return per_task.detach()

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


class GradNormDriver:
    """GradNorm in a user's loop: each step, the gradient norm of every task's loss on a
    shared layer's weight, measured on your graph (one backward per task through the
    layers above it, as in the trainer), then GradNorm's own weight step on the host. The
    weights of a step are GradNorm's before that step's update, as in the trainer, where
    the hook backpropagates ``sum_k w_k L_k`` and then learns; the session's loss is that
    objective. Under ``torch.distributed`` the norms, like the losses, are averaged over
    the ranks (the mean of the ranks' norms: at most, not exactly, the norm of their summed
    gradient)."""

    def __init__(self, controller: GradNorm, weight: torch.Tensor, mask: torch.Tensor) -> None:
        self.hook = controller.hook  # a _GradNormHook: grad_norms and learn
        self.weight, self.mask = weight, mask
        self.width = 2 * mask.shape[1]

    def measure(self, per_task: torch.Tensor) -> torch.Tensor:
        """(2K,) the losses and their gradient norms on the shared weight."""
        norms = self.hook.grad_norms(per_task[None], self.weight, self.mask)[0]
        return torch.cat([per_task.detach(), norms])

    def weights(self, measured: torch.Tensor, in_force: torch.Tensor) -> torch.Tensor:
        """(K,) this step's weights; then GradNorm learns from ``measured`` (host, (2K,)).
        Non-finite losses or norms skip the step, as the trainer skips such a run's."""
        weights = self.hook.w[0].detach().clone()
        losses, norms = measured.float().view(2, 1, -1)
        active = torch.isfinite(measured).all().reshape(1)
        if bool(active[0]):
            with torch.enable_grad(), torch.autocast("cpu", enabled=False):
                self.hook.learn(losses, norms, active)
        return weights
