"""Loss-weighting methods that act inside every optimisation step.

Each controller owns a :class:`~curriculum_rl.trainer.StepHook` (``controller.hook``) that
turns the per-task losses ``Ltilde_k`` of each step into the objective it backpropagates;
``decide`` keeps sampling uniform and reports the method's current effective per-task
weights (normalised to mean 1), so records and the signals' ``cos_update`` show what the
method does. The hooks ignore the ``weights`` the trainer passes: the method *is* the
weighting.

Where torchjd (>= 0.18) implements the scalarisation (``torchjd.scalarization``: DWA, UW,
FAMO, IMTLL, GeometricMean) we call it. Runs must stay independent and padded tasks must
not touch valid ones, so:

* scalarizers that normalise over *all* their inputs (DWA's and FAMO's softmax,
  GeometricMean's mean) get one instance per run, called on that run's valid tasks only;
* element-wise scalarizers (UW, IMTLL) take the whole (N, K) loss tensor at once: their
  sum separates over entries, and the padded entries' parameters are frozen.
"""

from __future__ import annotations

import copy
from abc import abstractmethod

import torch
from torchjd.scalarization import DWA, FAMO, IMTLL, UW, GeometricMean, Scalarizer

from curriculum_rl.controllers.base import Controller, Decision, RunContext, normalize_decision
from curriculum_rl.controllers.hooks import EPS, masked_softmax, run_generator
from curriculum_rl.trainer import StepContext, StepHook, TrainerConfig
from curriculum_rl.trainer.optim import BatchedOptimizer
from curriculum_rl.trainer.signals import Signals

DEFAULT_LR = TrainerConfig().lr


def _gradient_weights(scalarizer: Scalarizer, values: torch.Tensor) -> torch.Tensor:
    """``d scalarizer(values) / d values``: the weight each loss gets in the update.

    Evaluated on a deep copy, so stateful scalarizers (DWA's loss sums, FAMO's previous
    losses) are not disturbed by the probe.
    """
    probe = copy.deepcopy(scalarizer)
    values = values.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(probe(values), values)
    return grad


def _backward(objective: torch.Tensor) -> None:
    if objective.requires_grad:
        objective.backward()


class _HookController(Controller):
    """A controller whose work happens in its per-step hook; decisions only report."""

    _hook: StepHook | None = None

    @property
    def hook(self) -> StepHook | None:
        return self._hook

    def reset(self, context: RunContext) -> None:
        super().reset(context)
        self._hook = self.make_hook(context)

    @abstractmethod
    def make_hook(self, context: RunContext) -> StepHook:
        """A fresh hook for this batch of runs."""

    @abstractmethod
    def current_weights(self, signals: Signals) -> torch.Tensor:
        """(N, K) effective per-task weights (any positive scale) for the report."""

    def decide(self, signals: Signals) -> Decision:
        mask = signals.mask
        weights = self.current_weights(signals).detach().nan_to_num(1.0, 1.0, 1.0)
        return normalize_decision(weights.clamp_min(0) * mask, mask.float(), mask)


class _RunwiseHook:
    """Base hook: one scalarizer per run on that run's valid tasks; one backward in all."""

    def __init__(self, scalarizers: list[Scalarizer]) -> None:
        self.scalarizers = scalarizers

    def backward(
        self, task_losses: torch.Tensor, weights: torch.Tensor, context: StepContext
    ) -> None:
        mask, active = context.mask, context.active.tolist()
        objective = task_losses.new_zeros(())
        for n, scalarizer in enumerate(self.scalarizers):
            if active[n]:
                objective = objective + self.run_objective(n, scalarizer, task_losses[n, mask[n]])
        _backward(objective)

    def run_objective(self, run: int, scalarizer: Scalarizer, losses: torch.Tensor) -> torch.Tensor:
        return scalarizer(losses)


def _per_run(context: RunContext, factory) -> list[Scalarizer]:
    """One scalarizer per run, sized to its number of valid tasks, on the runs' device."""
    return [factory(int(k)).to(context.mask.device) for k in context.mask.sum(1).tolist()]


def _scatter(values: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """Per-run vectors over the valid tasks -> (N, K) with zeros at padded tasks."""
    out = torch.zeros(mask.shape, device=mask.device)
    for n, v in enumerate(values):
        out[n, mask[n]] = v.to(out)
    return out


# ---------------------------------------------------------------------------------- DWA
class DynamicWeightAverage(_HookController):
    """Dynamic Weight Average (Liu, Johns & Davison 2019, "End-to-End Multi-Task Learning
    with Attention"), via ``torchjd.scalarization.DWA``.

    ``lambda_k = K softmax_k(r_k / T)`` with ``r_k = L_k(t-1) / L_k(t-2)`` the ratio of
    task k's average loss over the two previous *epochs*. Our epoch is one decision
    interval: every step feeds the batch losses to DWA, and ``decide`` calls DWA's
    ``step()`` once per decision to close the interval. Weights are uniform for the first
    two intervals, as in the paper. T = 2 (the paper's value).
    """

    name = "dwa"

    def __init__(self, temperature: float = 2.0) -> None:
        self.temperature = temperature

    def make_hook(self, context: RunContext) -> _RunwiseHook:
        return _RunwiseHook(_per_run(context, lambda k: DWA(self.temperature)))

    def decide(self, signals: Signals) -> Decision:
        for dwa in self._hook.scalarizers:
            dwa.step()  # close this decision interval: it becomes DWA's newest "epoch"
        return super().decide(signals)

    def current_weights(self, signals: Signals) -> torch.Tensor:
        mask = signals.mask
        per_run = [
            _gradient_weights(dwa, torch.ones(int(mask[n].sum()), device=mask.device))
            for n, dwa in enumerate(self._hook.scalarizers)
        ]
        return _scatter(per_run, mask)


# --------------------------------------------------------------------- geometric mean
class _LogGeometricMeanHook(_RunwiseHook):
    def run_objective(self, run: int, scalarizer: Scalarizer, losses: torch.Tensor) -> torch.Tensor:
        # log GM = mean_k log L_k; clamp guards log(0) for a task that drew no example
        # this step (its gradient is 0 then anyway).
        return torch.log(scalarizer(losses.clamp_min(EPS)))


class GeometricMeanLoss(_HookController):
    """Geometric-mean loss (Chennupati et al. 2019, "MultiNet++", the GLS loss), via
    ``torchjd.scalarization.GeometricMean``.

    Each run minimises ``log GM(L) = (1/K) sum_k log L_k``, i.e. exactly the batch
    estimate of J (mean log loss): its gradient is ``sum_k (1 / (K L_k)) grad L_k``, task
    weights ∝ 1/L_k. (GM itself has the same direction scaled by GM; the log keeps the step
    size independent of the loss scale.)
    """

    name = "geometric-mean"

    def make_hook(self, context: RunContext) -> _RunwiseHook:
        return _LogGeometricMeanHook(_per_run(context, lambda k: GeometricMean()))

    def current_weights(self, signals: Signals) -> torch.Tensor:
        return 1.0 / signals.train_loss.clamp_min(EPS)


# --------------------------------------------------------------------------------- FAMO
class _FAMOHook(_RunwiseHook):
    """Calls ``FAMO.update`` for the previous step before scalarising the current one."""

    def __init__(self, scalarizers: list[Scalarizer]) -> None:
        super().__init__(scalarizers)
        self.primed = [False] * len(scalarizers)

    def run_objective(self, run: int, scalarizer: Scalarizer, losses: torch.Tensor) -> torch.Tensor:
        losses = losses.clamp_min(EPS)  # FAMO takes log(L); a task with no example has L = 0
        if self.primed[run]:
            scalarizer.update(losses.detach())
        self.primed[run] = True
        return scalarizer(losses)


class FastAdaptiveMultitask(_HookController):
    """FAMO (Liu et al. 2023, "FAMO: Fast Adaptive Multitask Optimization"), via
    ``torchjd.scalarization.FAMO`` (paper defaults: logit lr 0.025, weight decay 1e-3).

    The update is ``c sum_k z_k grad L_k / L_k`` with ``z = softmax(w)`` and c making the
    task coefficients a convex combination; w is learned so that the tasks whose log loss
    fell least get more weight. Deviation, forced by the step-hook interface (no call after
    the optimiser step, no access to the batch): the "after" losses of step t are the
    losses of step t+1's batch, so ``FAMO.update`` for step t runs at the start of step t+1.
    The batch-to-batch noise telescopes over steps; the drift it leaves is the real change.
    """

    name = "famo"

    def __init__(self, lr: float = 0.025, weight_decay: float = 1e-3) -> None:
        self.lr, self.weight_decay = lr, weight_decay

    def make_hook(self, context: RunContext) -> _FAMOHook:
        return _FAMOHook(
            _per_run(context, lambda k: FAMO(k, lr=self.lr, weight_decay=self.weight_decay))
        )

    def current_weights(self, signals: Signals) -> torch.Tensor:
        mask = signals.mask
        losses = signals.train_loss.clamp_min(EPS)
        per_run = [
            _gradient_weights(famo, losses[n, mask[n]])
            for n, famo in enumerate(self._hook.scalarizers)
        ]
        return _scatter(per_run, mask)


# ------------------------------------------------------------------- UW and IMTL-L
class _ElementwiseHook:
    """An element-wise torchjd scalarizer with learnable (N, K) parameters, learned with
    its own per-run Adam (the model's optimiser never sees them)."""

    def __init__(self, scalarizer: Scalarizer, mask: torch.Tensor, lr: float) -> None:
        self.scalarizer = scalarizer.to(mask.device)
        self.mask = mask
        self.param = next(iter(self.scalarizer.parameters()))
        self.optimizer = BatchedOptimizer([self.param], mask.shape[0], lr)

    def backward(
        self, task_losses: torch.Tensor, weights: torch.Tensor, context: StepContext
    ) -> None:
        # Padded entries see a loss of 0; their parameters' gradients are dropped below.
        _backward(self.scalarizer(task_losses * context.mask))
        if self.param.grad is not None:
            self.param.grad = self.param.grad * context.mask
            self.optimizer.step(context.active)
        self.param.grad = None


class _LearnedScaleController(_HookController):
    """A controller around an :class:`_ElementwiseHook`: one learnable scale per run and
    task, learned by its own Adam at ``lr`` (default: the trainer's default lr)."""

    scalarizer_class: type[Scalarizer]

    def __init__(self, lr: float = DEFAULT_LR) -> None:
        self.lr = lr

    def make_hook(self, context: RunContext) -> _ElementwiseHook:
        shape = tuple(context.mask.shape)
        return _ElementwiseHook(self.scalarizer_class(shape), context.mask, self.lr)

    def _learned(self) -> torch.Tensor:
        """(N, K) learned parameters (0 at padded tasks)."""
        return self._hook.param.detach() * self._hook.mask

    def current_weights(self, signals: Signals) -> torch.Tensor:
        return _gradient_weights(
            self._hook.scalarizer, torch.ones(signals.mask.shape, device=signals.mask.device)
        )


class UncertaintyWeighting(_LearnedScaleController):
    """Uncertainty weighting (Kendall, Gal & Cipolla 2018, "Multi-Task Learning Using
    Uncertainty to Weigh Losses for Scene Geometry and Semantics"), via
    ``torchjd.scalarization.UW``.

    Minimises ``sum_k 0.5 exp(-s_k) L_k + 0.5 s_k`` jointly over the network and the
    log-variances s (one per run and task); for a fixed loss the optimum is
    ``s_k = log L_k``, i.e. weights ∝ 1/L_k. s is learned by Adam at ``lr`` (default: the
    trainer's default lr, as the paper learns s with the network's optimiser).
    """

    name = "uw"
    scalarizer_class = UW

    @property
    def log_variances(self) -> torch.Tensor:
        """(N, K) learned s_k (0 at padded tasks)."""
        return self._learned()


class ImpartialLossWeighting(_LearnedScaleController):
    """IMTL-L, the loss-balancing half of Impartial Multi-Task Learning (Liu et al. 2021,
    "Towards Impartial Multi-task Learning"), via ``torchjd.scalarization.IMTLL``.

    Minimises ``sum_k exp(s_k) L_k - s_k`` over the network and the scales s; for a fixed
    loss the optimum is ``exp(s_k) L_k = 1`` for every task: the scaled losses are made
    equal (impartial). s is learned by Adam at ``lr`` (default: the trainer's default lr).
    """

    name = "imtl-l"
    scalarizer_class = IMTLL

    @property
    def log_scales(self) -> torch.Tensor:
        """(N, K) learned s_k (0 at padded tasks)."""
        return self._learned()


# ------------------------------------------------------------------------ random (RLW)
class _RandomWeightsHook:
    def __init__(self, generators: list[torch.Generator], mask: torch.Tensor) -> None:
        self.generators = generators
        self.last_weights = torch.zeros(mask.shape, device=mask.device)

    def draw(self, mask: torch.Tensor) -> torch.Tensor:
        """(N, K) fresh weights: K softmax(z), z ~ N(0, I) per run over its valid tasks."""
        valid = mask.cpu()
        z = torch.zeros(valid.shape)
        for n, gen in enumerate(self.generators):
            z[n, valid[n]] = torch.randn(int(valid[n].sum()), generator=gen)
        return masked_softmax(z.to(mask.device), mask) * mask.sum(1, keepdim=True)

    def backward(
        self, task_losses: torch.Tensor, weights: torch.Tensor, context: StepContext
    ) -> None:
        # Every run draws each step (its stream stays aligned with its steps); an
        # inactive run's draw is not used.
        self.last_weights = self.draw(context.mask) * context.active[:, None]
        _backward((self.last_weights * task_losses).sum())


class RandomLossWeighting(_HookController):
    """Random loss weighting, RLW (Lin et al. 2021, "Reasonable Effectiveness of Random
    Weighting: A Litmus Test for Multi-Task Learning", Algorithm 2).

    Every step draws ``lambda = softmax(z)``, ``z ~ N(0, I_K)``, and minimises
    ``sum_k K lambda_k L_k`` (the factor K keeps our mean-1 weight convention; it only
    rescales the step). torchjd's ``Random`` scalarizer draws from the global torch RNG;
    here each run has its own generator seeded from its seed, so runs are reproducible
    and independent of each other. ``decide`` reports uniform weights (their expectation).
    """

    name = "rlw"
    salt = 0x524C57  # "RLW"

    def make_hook(self, context: RunContext) -> _RandomWeightsHook:
        generators = [run_generator(seed, self.salt) for seed in context.seeds]
        return _RandomWeightsHook(generators, context.mask)

    def current_weights(self, signals: Signals) -> torch.Tensor:
        return signals.mask.float()


# ----------------------------------------------------------------------------- GradNorm
class _GradNormHook:
    """Per-step GradNorm: learn w so that ``w_k ||grad_W L_k||`` tracks ``Gbar r_k^alpha``."""

    def __init__(self, mask: torch.Tensor, alpha: float, lr: float) -> None:
        self.mask, self.alpha = mask, alpha
        self.w = mask.float().clone().requires_grad_(True)
        self.optimizer = BatchedOptimizer([self.w], mask.shape[0], lr)
        self.initial = torch.ones(mask.shape, device=mask.device)
        self.has_initial = torch.zeros(mask.shape[0], dtype=torch.bool, device=mask.device)

    def backward(
        self, task_losses: torch.Tensor, weights: torch.Tensor, context: StepContext
    ) -> None:
        norms = self.grad_norms(task_losses, context.last_shared_weight, context.mask)
        _backward((self.w.detach() * task_losses).sum())
        self.learn(task_losses.detach(), norms, context.active)

    def learn(self, losses: torch.Tensor, norms: torch.Tensor, active: torch.Tensor) -> None:
        """One step of the weights from a step's per-task losses and gradient norms (N, K).
        Separate from :meth:`backward` because a user's loop does its own backward pass
        (:mod:`curriculum_rl.session.support` measures the norms and calls this)."""
        start = active & ~self.has_initial
        self.initial = torch.where(start[:, None], losses.clamp_min(EPS), self.initial)
        self.has_initial |= active
        self._update_weights(losses, norms, active)

    @staticmethod
    def grad_norms(
        task_losses: torch.Tensor, weight: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """(N, K) ``||grad_W L_k||`` on the shared weight W (as in the paper): the trainer's
        run-stacked last shared weight (N, I, J), or one layer's weight of a user's model
        (any shape, N = 1)."""
        runs = task_losses.shape[0]
        norms = torch.zeros_like(task_losses)
        for k in range(task_losses.shape[1]):
            if bool(mask[:, k].any()):
                (g,) = torch.autograd.grad(
                    task_losses[:, k].sum(), weight, retain_graph=True, allow_unused=True
                )
                if g is not None:
                    norms[:, k] = g.detach().reshape(runs, -1).norm(dim=1)
        return norms

    def _update_weights(
        self, losses: torch.Tensor, norms: torch.Tensor, active: torch.Tensor
    ) -> None:
        mask = self.mask.float()
        k = mask.sum(1, keepdim=True).clamp_min(1)
        grad_norm = self.w * norms  # G_k = ||grad_W (w_k L_k)||
        mean_g = ((grad_norm * mask).sum(1, keepdim=True) / k).detach()
        ratio = losses.clamp_min(EPS) / self.initial  # inverse training rate L~_k
        rel = ratio / ((ratio * mask).sum(1, keepdim=True) / k).clamp_min(EPS)
        target = (mean_g * rel.pow(self.alpha)).detach()  # constant, as in the paper
        gradnorm_loss = ((grad_norm - target).abs() * mask).sum()
        self.w.grad = torch.autograd.grad(gradnorm_loss, self.w)[0]
        self.optimizer.step(active)
        with torch.no_grad():  # renormalise to mean 1 over the valid tasks (paper, Sec. 3.2)
            w = self.w.clamp_min(1e-3) * mask
            w = w * k / w.sum(1, keepdim=True).clamp_min(EPS)
            self.w.copy_(torch.where(active[:, None], w, self.w))  # inactive: untouched
        self.w.grad = None


class GradNorm(_HookController):
    """GradNorm (Chen et al. 2018, "GradNorm: Gradient Normalization for Adaptive Loss
    Balancing in Deep Multitask Networks").

    The network minimises ``sum_k w_k L_k``; the weights minimise
    ``sum_k |G_k - Gbar r_k^alpha|`` with ``G_k = w_k ||grad_W L_k||`` on the last shared
    layer's weight W, ``r_k = (L_k / L_k(0)) / mean_j (L_j / L_j(0))`` the relative inverse
    training rate and the target held constant; after each step w is renormalised to mean
    1. Tasks that train slower (larger r_k) get larger gradients. alpha = 1.5 (the paper's
    NYUv2 value, LibMTL's default); w is learned by Adam at ``lr``. Costs one extra
    backward through the heads and projection per task per step.
    """

    name = "gradnorm"

    def __init__(self, alpha: float = 1.5, lr: float = 0.025) -> None:
        self.alpha, self.lr = alpha, lr

    def make_hook(self, context: RunContext) -> _GradNormHook:
        return _GradNormHook(context.mask, self.alpha, self.lr)

    @property
    def task_weights(self) -> torch.Tensor:
        """(N, K) current GradNorm weights (mean 1 over valid tasks, 0 at padded)."""
        return self._hook.w.detach() * self._hook.mask

    def current_weights(self, signals: Signals) -> torch.Tensor:
        return self.task_weights
