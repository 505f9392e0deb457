"""The batched multitask trainer: N independent runs x K tasks as one tensor computation.

Per inner step, each run draws a batch of ``batch_size`` examples whose task mix follows
its sampling probabilities ``p`` (systematic sampling: task ``k`` gets ``B p_k`` examples,
rounded up or down), and minimises

    objective = sum_k w_k * Ltilde_k,   Ltilde_k = (K / B) * sum_{i in batch, task i = k} loss_i

so under uniform sampling ``Ltilde_k`` estimates task k's mean loss and the objective is
the familiar ``sum_k w_k L_k``; sampling task k more also raises its share, and changes
which data is seen (a small task sampled often is revisited often). Weights average 1
over the valid tasks of a run. A run's ``normalisation`` alpha (0 by default) divides each
``Ltilde_k`` by its own detached value to the power alpha
(:func:`~curriculum_rl.trainer.objective.loss_normaliser`): at 1, every task's step is
relative to its own loss scale, the geometric-mean loss's gradient. A run's ``scale``
(1 by default) multiplies its whole objective.

A controller that acts inside every step (uncertainty weighting, GradNorm, gradient
aggregators...) passes a :class:`StepHook`; it receives the per-task losses and does the
backward pass its own way. The trainer knows nothing of gymnasium or SB3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch
from torch import nn

from curriculum_rl.suites.base import Body, SuiteInstance
from curriculum_rl.trainer.model import MultitaskNet, seeded_generator
from curriculum_rl.trainer.objective import loss_normaliser, mean_log_loss
from curriculum_rl.trainer.optim import BatchedOptimizer

KIND_CODE = {"regression": 0, "classification": 1, "tagging": 2}
DIVERGENCE_RISE = math.log(1e3)
"""A run whose validation J (mean log loss of its target tasks) rises this far above its
value at the first measurement, i.e. whose losses grew 1000-fold on (geometric) average,
has failed, as surely as one whose loss is non-finite."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass(frozen=True)
class TrainerConfig:
    """Inner-training hyper-parameters shared by all runs of a trainer."""

    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    proj_dim: int = 64
    val_probe: int = 64
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.proj_dim < 1 or self.val_probe < 1:
            raise ValueError("batch_size, proj_dim and val_probe must be >= 1")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")


@dataclass
class Measurement:
    """What the trainer reports at a decision point; every tensor has a leading run dim N.

    Attributes:
        train_loss: (N, K) mean per-example training loss since the last measurement
            (NaN where a task drew no example).
        val_loss: (N, K) mean loss on the fixed validation probe.
        grad_gram: (N, K, K) Gram matrix of the per-task gradients of the mean task loss
            on the last shared layer, from the last inner step.
        combined: (N, K) coefficients of the update in terms of those task gradients
            (``w_k * K * share_k``, ``w_k`` times its loss normaliser if the run has one),
            so ``<g_k, update> = (grad_gram @ combined)_k``.
        mask: (N, K) valid tasks. objective: (N, K) tasks that define J.
        diverged: (N,) a loss or a parameter became non-finite.
        steps: (N,) inner steps done since the run started.
        j: (N,) mean over objective tasks of log val loss (the checkpoint rule's potential).
        val_error: (N, K) the task error on the validation probe, the metric-side twin of
            the loss (:func:`soft_error`); ``None`` reads as the loss (regression).
        classify: (N, K) True for classification and tagging tasks; ``None`` reads as all
            regression.
    """

    train_loss: torch.Tensor
    val_loss: torch.Tensor
    grad_gram: torch.Tensor
    combined: torch.Tensor
    mask: torch.Tensor
    objective: torch.Tensor
    diverged: torch.Tensor
    steps: torch.Tensor
    j: torch.Tensor
    val_error: torch.Tensor | None = None
    classify: torch.Tensor | None = None


def soft_error(losses: torch.Tensor, classify: torch.Tensor) -> torch.Tensor:
    """Task error from per-example losses ``(..., V)`` -> ``(...)``: the validation twin
    of the test error of :mod:`curriculum_rl.scores`. Regression: the MSE itself.
    Classification and tagging (``classify`` True): the *soft* error ``1 - exp(-CE)`` (one
    minus the probability given to the right class; for tagging, the geometric mean over
    tokens), averaged, with add-one smoothing over the V predictions,
    ``(V * soft + 1) / (V + 1)``. Continuous, so it moves before an accuracy does, and
    floored at ``1 / (V + 1)``: driving a solved task's cross-entropy toward zero cannot
    lower it further (which is what makes log loss gameable).

    It is :func:`example_error` averaged, then :func:`smoothed_error`; a user's loop, whose
    tasks have different example counts, applies the two halves per task
    (:class:`~curriculum_rl.session.CurriculumSession`)."""
    mean = example_error(losses, classify[..., None]).mean(-1)
    return smoothed_error(mean, losses.shape[-1], classify)


def example_error(losses: torch.Tensor, classify: torch.Tensor) -> torch.Tensor:
    """Each example's error, the first half of :func:`soft_error`: its loss (regression),
    or ``1 - exp(-CE)``, the probability not given to the right class (``classify``
    True, broadcast against ``losses``)."""
    return torch.where(classify, -torch.expm1(-losses.clamp_min(0)), losses)


def smoothed_error(
    mean: torch.Tensor, count: int | torch.Tensor, classify: torch.Tensor
) -> torch.Tensor:
    """A task's error from the mean of its ``count`` examples' :func:`example_error`, the
    second half of :func:`soft_error`: the mean itself (regression), add-one smoothed
    ``(count * mean + 1) / (count + 1)`` where ``classify``."""
    return torch.where(classify, (count * mean + 1) / (count + 1), mean)


@dataclass(frozen=True)
class StepContext:
    """What a :class:`StepHook` may use for its backward pass: the parameter groups and
    the trainer's own view of which tasks and runs count this step, so hooks never infer
    either from the loss values (an active run may have a loss of exactly 0).

    Attributes:
        shared_params: parameters shared by a run's tasks (body and last shared layer).
        head_params: the task heads' parameters.
        mask: (N, K) valid tasks.
        active: (N,) runs that train this step: not diverged, and with finite losses.
            The trainer zeroes the losses of the others and skips their optimiser
            update, so stateful hooks must leave their state for those runs untouched.
        last_shared_weight: the weight (N, I, J) of the last shared layer, the layer on
            which per-task gradients are measured (``Measurement.grad_gram``; GradNorm's
            ``W``). A leaf of the graph: ``autograd.grad(loss, last_shared_weight)``
            gives each run's gradient in its own slice.
    """

    shared_params: list[nn.Parameter]
    head_params: list[nn.Parameter]
    mask: torch.Tensor
    active: torch.Tensor
    last_shared_weight: nn.Parameter


class StepHook(Protocol):
    """Does the backward pass of one inner step (gradients land in ``.grad``).

    ``task_losses`` (N, K) are 0 at padded tasks and for inactive runs; which runs are
    active is ``context.active``, never to be guessed from the values.
    """

    def backward(
        self, task_losses: torch.Tensor, weights: torch.Tensor, context: StepContext
    ) -> None: ...


class BatchedMultitaskTrainer:
    """Trains N runs (one :class:`SuiteInstance` and seed each) side by side.

    All instances must share the input shape and body; the number of tasks may differ
    (padded to ``max_tasks`` and masked), and so may head widths (padded to the widest,
    at least ``out_max``: give the widest a later :meth:`reset_run` may bring).
    """

    def __init__(
        self,
        instances: Sequence[SuiteInstance],
        seeds: Sequence[int],
        config: TrainerConfig | None = None,
        max_tasks: int | None = None,
        objective_tasks: Sequence[Sequence[int] | None] | None = None,
        out_max: int = 1,
    ) -> None:
        if not instances:
            raise ValueError("give at least one suite instance")
        if len(seeds) != len(instances):
            raise ValueError(f"{len(instances)} instances but {len(seeds)} seeds; give one each")
        self.config = config or TrainerConfig()
        self.device = resolve_device(self.config.device)
        self.num_runs = len(instances)
        self.max_tasks = max_tasks or max(i.num_tasks for i in instances)
        first = instances[0]
        self.input_shape = tuple(first.input_shape)
        self.body_spec = first.body
        self.out_max = max(out_max, *(head_width(i) for i in instances))
        self.target_width = max(target_width(i) for i in instances)
        self.net = MultitaskNet(
            self.num_runs, first.body, self.config.proj_dim, self.max_tasks, self.out_max
        ).to(self.device)
        self.shared_params = list(self.net.body.parameters()) + list(self.net.proj.parameters())
        self.head_params = [self.net.head_weight, self.net.head_bias]
        self.optimizer = BatchedOptimizer(
            list(self.net.parameters()), self.num_runs, self.config.lr, self.config.optimizer
        )
        self._allocate()
        self.instances: list[SuiteInstance] = list(instances)
        objective_tasks = objective_tasks or [None] * self.num_runs
        for run, (inst, seed) in enumerate(zip(instances, seeds, strict=True)):
            self.reset_run(run, inst, seed, objective_tasks[run])

    # ------------------------------------------------------------------ set-up
    def _allocate(self) -> None:
        n, k, dev = self.num_runs, self.max_tasks, self.device
        self.x = torch.zeros(n, 0, *self.input_shape, device=dev)
        self.y = torch.zeros(n, 0, self.target_width, device=dev)
        probe_rows = k * self.config.val_probe
        self.x_probe = torch.zeros(n, probe_rows, *self.input_shape, device=dev)
        self.y_probe = torch.zeros(n, probe_rows, self.target_width, device=dev)
        self.probe_task = torch.arange(k, device=dev).repeat_interleave(self.config.val_probe)
        self.probe_task = self.probe_task.expand(n, -1).contiguous()
        self.offsets = torch.zeros(n, k, dtype=torch.long, device=dev)
        self.sizes = torch.zeros(n, k, dtype=torch.long, device=dev)
        self.kind = torch.full((n, k), -1, dtype=torch.long, device=dev)
        self.out_dim = torch.ones(n, k, dtype=torch.long, device=dev)
        self.mask = torch.zeros(n, k, dtype=torch.bool, device=dev)
        self.objective = torch.zeros(n, k, dtype=torch.bool, device=dev)
        self.weights = torch.zeros(n, k, device=dev)
        self.normalisation = torch.zeros(n, device=dev)
        self._normalise = False
        self.scale = torch.ones(n, device=dev)
        self._scaled = False
        self.sampling = torch.zeros(n, k, device=dev)
        self.steps = torch.zeros(n, dtype=torch.long, device=dev)
        self.diverged = torch.zeros(n, dtype=torch.bool, device=dev)
        self.generators: list[torch.Generator] = [torch.Generator(device=dev) for _ in range(n)]
        self._reset_accumulators()
        self.best_j = torch.full((n,), float("inf"), device=dev)
        self.j_start = torch.full((n,), float("nan"), device=dev)
        # Every parameter is a view of the optimiser's (N, P) buffer, so a run's whole
        # state is one row: best-checkpoint copies and finiteness checks are single ops.
        self.flat_params = self.optimizer.flat
        self.best_params = self.flat_params.clone()

    def _reset_accumulators(self) -> None:
        n, k, dev = self.num_runs, self.max_tasks, self.device
        self._loss_sum = torch.zeros(n, k, device=dev)
        self._loss_count = torch.zeros(n, k, device=dev)
        self._gram = torch.zeros(n, k, k, device=dev)
        self._combined = torch.zeros(n, k, device=dev)

    def reset_run(
        self,
        run: int,
        instance: SuiteInstance,
        seed: int,
        objective_tasks: Sequence[int] | None = None,
    ) -> None:
        """Start run ``run`` afresh on ``instance``: new parameters, optimiser state, data."""
        self._check_compatible(instance)
        k = instance.num_tasks
        self.instances[run] = instance
        init_gen = seeded_generator(seed)
        self.net.reset_run(run, init_gen, [t.out_dim for t in instance.tasks])
        self.optimizer.reset_run(run)
        self.generators[run].manual_seed(int(torch.randint(2**62, (1,), generator=init_gen)))
        self._load_data(run, instance)
        self._load_probe(run, instance, init_gen)
        self.kind[run], self.out_dim[run] = -1, 1
        self.mask[run], self.objective[run] = False, False
        for i, task in enumerate(instance.tasks):
            self.kind[run, i] = KIND_CODE[task.kind]
            self.out_dim[run, i] = task.out_dim
        self.mask[run, :k] = True
        # The tasks that define J: the instance's targets (non-auxiliary tasks) unless
        # the caller names its own.
        chosen = instance.target_tasks if objective_tasks is None else objective_tasks
        for i in chosen:
            if not 0 <= i < k:
                raise ValueError(f"objective task index {i} out of range for {k} tasks")
            self.objective[run, i] = True
        uniform = self.mask[run].float()
        self.weights[run] = uniform
        self.sampling[run] = uniform / k
        self.normalisation[run] = 0.0
        self._normalise = bool(self.normalisation.any())
        self.scale[run] = 1.0
        self._scaled = bool((self.scale != 1).any())
        self.steps[run] = 0
        self.diverged[run] = False
        self.best_j[run] = float("inf")
        self.j_start[run] = float("nan")
        self.best_params[run] = self.flat_params[run]
        for acc in (self._loss_sum, self._loss_count, self._gram, self._combined):
            acc[run] = 0

    def _check_compatible(self, instance: SuiteInstance) -> None:
        if tuple(instance.input_shape) != self.input_shape:
            raise ValueError(
                f"suite {instance.name!r} has input shape {tuple(instance.input_shape)}, but this "
                f"trainer's runs use {self.input_shape}; batch only suites of the same shape"
            )
        if instance.body != self.body_spec:
            raise ValueError(
                f"suite {instance.name!r} has a different body ({instance.body}); batch only "
                "suites that share one body"
            )
        if instance.num_tasks > self.max_tasks:
            raise ValueError(
                f"suite {instance.name!r} has {instance.num_tasks} tasks, more than this "
                f"trainer's max_tasks={self.max_tasks}; raise max_tasks"
            )
        if head_width(instance) > self.out_max:
            raise ValueError(
                f"suite {instance.name!r} has a task with "
                f"{head_width(instance)} outputs, wider than this trainer's "
                f"heads (out_max={self.out_max}); pass out_max=, or make the suite's describe() "
                "list its widest task (the env sizes heads from it)"
            )
        if target_width(instance) > self.target_width:
            raise ValueError(f"suite {instance.name!r} has targets wider than {self.target_width}")

    def _load_data(self, run: int, instance: SuiteInstance) -> None:
        sizes = [len(d.x_train) for d in instance.data]
        total = sum(sizes)
        if total > self.x.shape[1]:  # grow the shared storage; other runs keep their rows
            grow = total - self.x.shape[1]
            self.x = torch.cat(
                [self.x, self.x.new_zeros(self.num_runs, grow, *self.input_shape)], 1
            )
            self.y = torch.cat(
                [self.y, self.y.new_zeros(self.num_runs, grow, self.target_width)], 1
            )
        start = 0
        self.sizes[run] = 0
        self.offsets[run] = 0
        for i, data in enumerate(instance.data):
            end = start + sizes[i]
            self.x[run, start:end] = data.x_train.to(self.device, torch.float32)
            self.y[run, start:end] = _pad_targets(data.y_train, self.target_width).to(self.device)
            self.offsets[run, i], self.sizes[run, i] = start, sizes[i]
            start = end

    def _load_probe(self, run: int, instance: SuiteInstance, gen: torch.Generator) -> None:
        v = self.config.val_probe
        self.x_probe[run] = 0
        self.y_probe[run] = 0
        for i, data in enumerate(instance.data):
            n_val = len(data.x_val)
            pick = torch.randperm(n_val, generator=gen)[:v]
            pick = pick[torch.arange(v) % len(pick)]  # small val sets repeat cyclically
            rows = slice(i * v, (i + 1) * v)
            self.x_probe[run, rows] = data.x_val[pick].to(self.device, torch.float32)
            self.y_probe[run, rows] = _pad_targets(data.y_val[pick], self.target_width).to(
                self.device
            )

    # ------------------------------------------------------------------ schedule
    def set_schedule(
        self,
        weights: torch.Tensor,
        sampling: torch.Tensor,
        normalisation: torch.Tensor | None = None,
        scale: torch.Tensor | None = None,
    ) -> None:
        """Set per-task loss weights and sampling probabilities, both (N, K), each run's
        loss normalisation alpha (N,) in [0, 1] (0 if not given; module docstring) and the
        scale (N,) > 0 of its whole objective (1 if not given;
        :class:`~curriculum_rl.controllers.decision.Decision`).

        Padded tasks get weight 0 and probability 0; sampling is renormalised over the
        valid tasks. Raises ``ValueError`` on wrong shapes or non-finite / negative values.
        """
        normalisation = _checked_normalisation(normalisation, self.num_runs, self.device)
        scale = _checked_scale(scale, self.num_runs, self.device)
        shape = (self.num_runs, self.max_tasks)
        weights = torch.as_tensor(weights, dtype=torch.float32, device=self.device)
        sampling = torch.as_tensor(sampling, dtype=torch.float32, device=self.device)
        for name, value in (("weights", weights), ("sampling", sampling)):
            if tuple(value.shape) != shape:
                raise ValueError(
                    f"{name} must have shape {shape} (runs, max_tasks), got {tuple(value.shape)}"
                )
            if not torch.isfinite(value).all() or (value < 0).any():
                raise ValueError(f"{name} must be finite and >= 0")
        sampling = sampling * self.mask
        total = sampling.sum(1, keepdim=True)
        if (total <= 0).any():
            raise ValueError("sampling gives probability 0 to every valid task of a run")
        self.weights = weights * self.mask
        self.sampling = sampling / total
        self.normalisation = normalisation
        self._normalise = bool(normalisation.any())  # once per decision, not a sync per step
        self.scale = scale
        self._scaled = bool((scale != 1).any())

    # ------------------------------------------------------------------ training
    def train(self, steps: int, hook: StepHook | None = None) -> None:
        """Run ``steps`` inner optimisation steps on every live run."""
        # All uniforms of the call at once, one call per run's generator: the same stream
        # as drawing step by step, with N calls per ``train`` instead of N per inner step.
        batch = self.config.batch_size
        draws = torch.stack(
            [
                torch.rand(steps, batch + 1, generator=g, device=self.device)
                for g in self.generators
            ],
            1,
        )
        for step in range(steps):
            self._inner_step(draws[step], hook, measure_grads=step == steps - 1)

    def _inner_step(self, draws: torch.Tensor, hook: StepHook | None, measure_grads: bool) -> None:
        active = ~self.diverged
        task, rows = self._sample_batch(draws)
        x, y = _take_rows(self.x, rows), _take_rows(self.y, rows)
        proj_in, proj_out = self.net(x)
        losses, _ = self._example_losses(proj_out, task, y)
        one_hot = torch.nn.functional.one_hot(task, self.max_tasks).to(losses.dtype)
        # A sum, not an einsum: a batched matrix product can round a run's row by its
        # place in the batch, and a run's numbers must not depend on the runs beside it.
        task_sum = (losses.unsqueeze(-1) * one_hot).sum(1)
        counts = one_hot.sum(1)
        k_valid = self.mask.sum(1, keepdim=True)
        batch = self.config.batch_size
        task_losses = task_sum * (k_valid / batch)
        finite = torch.isfinite(task_sum).all(1)
        self.diverged |= active & ~finite
        active = active & finite
        task_losses = torch.where(active[:, None], task_losses, torch.zeros_like(task_losses))
        if measure_grads:
            self._measure_grads(proj_in, proj_out, losses, one_hot, counts)
        for p in self.net.parameters():
            p.grad = None
        share = counts / batch
        weights = self.weights
        if self._normalise:
            weights = weights * loss_normaliser(task_losses, self.normalisation)
        if self._scaled:
            weights = weights * self.scale[:, None]
        if hook is None:
            (weights * task_losses).sum().backward()
        else:
            context = StepContext(
                self.shared_params, self.head_params, self.mask, active, self.net.proj.weight
            )
            hook.backward(task_losses, weights, context)
        self.optimizer.step(active)
        self._loss_sum += torch.where(active[:, None], task_sum.detach(), 0.0)
        self._loss_count += torch.where(active[:, None], counts, 0.0)
        self.steps += active.long()
        self._combined = weights.detach() * k_valid * share

    def _sample_batch(self, draws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Systematic sampling of task ids (counts within 1 of B p_k) and of example rows,
        from ``draws``: (N, B + 1) uniforms, the first placing the grid, the rest rows."""
        batch = self.config.batch_size
        grid = (torch.arange(batch, device=self.device) + draws[:, :1]) / batch
        cdf = self.sampling.cumsum(1)
        # Guard round-off at the top end: from each run's last valid task on, the CDF is
        # above any grid point, so a sum of probabilities a hair under 1 cannot send a
        # draw to a padded slot (no rows: it read another run's data, or failed).
        last = self.mask.sum(1, keepdim=True) - 1
        slots = torch.arange(self.max_tasks, device=self.device)
        cdf = torch.where(slots >= last, 1.0 + 1e-6, cdf)
        task = torch.searchsorted(cdf, grid.contiguous()).clamp_max(self.max_tasks - 1)
        size = self.sizes.gather(1, task)
        within = (draws[:, 1:] * size).long().clamp_max(size - 1)
        return task, self.offsets.gather(1, task) + within

    def _example_losses(
        self, proj_out: torch.Tensor, task: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-example loss and per-example metric value for each row's own task."""
        kind = self.kind.gather(1, task)
        out_dim = self.out_dim.gather(1, task)
        pooled = _select_task(self.net.heads(proj_out, pool_tokens=True), task)
        loss = torch.zeros(task.shape, device=self.device)
        metric = torch.zeros(task.shape, device=self.device)
        cols = torch.arange(self.out_max, device=self.device)
        valid_col = cols < out_dim[..., None]
        if (kind == 0).any():
            width = min(self.out_max, self.target_width)
            sq = ((pooled[..., :width] - y[..., :width]) ** 2 * valid_col[..., :width]).sum(-1)
            sq = sq / out_dim
            loss, metric = torch.where(kind == 0, sq, loss), torch.where(kind == 0, sq, metric)
        if (kind == 1).any():
            logits = pooled.masked_fill(~valid_col, float("-inf"))
            target = y[..., 0].long().clamp(0, self.out_max - 1)
            ce = nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none")
            hit = (logits.argmax(-1) == target).float()
            loss, metric = torch.where(kind == 1, ce, loss), torch.where(kind == 1, hit, metric)
        if (kind == 2).any():
            if proj_out.dim() != 4:
                raise ValueError("tagging tasks need a body with per-token features (B, L, F)")
            tokens = _select_task(self.net.heads(proj_out), task)  # (N, B, L, O)
            logits = tokens.masked_fill(~valid_col[:, :, None], float("-inf"))
            length = logits.shape[2]
            target = y[..., :length].long().clamp(0, self.out_max - 1)
            ce = nn.functional.cross_entropy(logits.permute(0, 3, 1, 2), target, reduction="none")
            hit = (logits.argmax(-1) == target).float().mean(-1)
            loss = torch.where(kind == 2, ce.mean(-1), loss)
            metric = torch.where(kind == 2, hit, metric)
        return loss, metric

    def _measure_grads(self, proj_in, proj_out, losses, one_hot, counts) -> None:
        """Gram matrix of the per-task gradients of the mean task loss on the last shared
        layer's weight, ``g_k = sum_{rows r of task k} a_r^T delta_r / count_k``, after one
        backward through the heads only (``delta``: gradient at the layer's output)."""
        (delta,) = torch.autograd.grad(losses.sum(), proj_out, retain_graph=True)
        a, d = proj_in.detach(), delta
        if a.dim() == 4:  # per-token rows inherit their example's task
            one_hot = one_hot[:, :, None].expand(-1, -1, a.shape[2], -1)
            a, d = a.flatten(1, 2), d.flatten(1, 2)
            one_hot = one_hot.flatten(1, 2)
        gram = task_gradient_gram(a, d, one_hot) / (
            counts[:, :, None] * counts[:, None, :]
        ).clamp_min(1)
        self._gram = torch.nan_to_num(gram.detach(), nan=0.0, posinf=0.0, neginf=0.0)

    # ------------------------------------------------------------------ measuring
    @torch.no_grad()
    def measure(self) -> Measurement:
        """Validation-probe losses and the statistics gathered since the last call."""
        val_loss, val_error = self._probe_losses()
        j = mean_log_loss(val_loss, self.objective)
        self._flag_divergence(val_loss, j)
        train_loss = torch.where(
            self._loss_count > 0, self._loss_sum / self._loss_count.clamp_min(1), float("nan")
        )
        self._update_best(j)
        result = Measurement(
            train_loss=train_loss,
            val_loss=val_loss,
            grad_gram=self._gram.clone(),
            combined=self._combined.clone(),
            mask=self.mask.clone(),
            objective=self.objective.clone(),
            diverged=self.diverged.clone(),
            steps=self.steps.clone(),
            j=j,
            val_error=val_error,
            classify=self.kind > 0,
        )
        self._loss_sum.zero_()
        self._loss_count.zero_()
        return result

    def _flag_divergence(self, val_loss: torch.Tensor, j: torch.Tensor) -> None:
        """The one definition of a failed run: a non-finite loss or parameter, or a
        validation J more than :data:`DIVERGENCE_RISE` above its value at the run's first
        measurement (a finite blow-up, e.g. a learning rate far too high)."""
        live = self.mask.any(1)
        first = torch.isnan(self.j_start) & live
        self.j_start = torch.where(first, j, self.j_start)
        self.diverged |= ~torch.isfinite(val_loss).all(1) & live
        self.diverged |= ~torch.isfinite(self.flat_params).all(1)
        self.diverged |= live & (j > self.j_start + DIVERGENCE_RISE)

    def _probe_losses(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean loss and task error (:func:`soft_error`) per run and task on the probe
        (1 for padded tasks)."""
        _, proj_out = self.net(self.x_probe)
        losses, _ = self._example_losses(proj_out, self.probe_task, self.y_probe)
        v = self.config.val_probe
        shape = (self.num_runs, self.max_tasks, v)
        per_task = losses.view(shape).mean(-1)
        error = soft_error(losses.view(shape), self.kind > 0)
        ones = torch.ones_like(per_task)
        return torch.where(self.mask, per_task, ones), torch.where(self.mask, error, ones)

    def _update_best(self, j: torch.Tensor) -> None:
        better = torch.isfinite(j) & (j < self.best_j) & ~self.diverged
        if not better.any():
            return
        self.best_j = torch.where(better, j, self.best_j)
        self.best_params[better] = self.flat_params[better]

    @torch.no_grad()
    def evaluate(
        self, split: str = "test", checkpoint: str = "final", chunk: int = 1024
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean loss and metric per run and task on a whole split, shape (N, K) each
        (NaN for padded tasks). ``checkpoint`` is ``"final"`` (current parameters) or
        ``"best"`` (the parameters at the best validation-probe J seen so far)."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be train, val or test, got {split!r}")
        if checkpoint not in ("final", "best"):
            raise ValueError(f"checkpoint must be 'final' or 'best', got {checkpoint!r}")
        saved = self.flat_params.clone() if checkpoint == "best" else None
        if saved is not None:
            self.flat_params.copy_(self.best_params)
        try:
            return self._evaluate_split(split, chunk)
        finally:
            if saved is not None:
                self.flat_params.copy_(saved)

    def _evaluate_split(self, split: str, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
        n, k = self.num_runs, self.max_tasks
        loss_sum = torch.zeros(n, k, device=self.device)
        metric_sum = torch.zeros(n, k, device=self.device)
        count = torch.zeros(n, k, device=self.device)
        data = [[d.splits()[split] for d in inst.data] for inst in self.instances]
        for task_id in range(k):
            longest = max((len(d[task_id][0]) for d in data if task_id < len(d)), default=0)
            for start in range(0, longest, chunk):
                x, y, valid = self._eval_chunk(data, task_id, start, chunk)
                task = torch.full(valid.shape, task_id, device=self.device)
                _, proj_out = self.net(x)
                losses, metric = self._example_losses(proj_out, task, y)
                loss_sum[:, task_id] += (losses * valid).nansum(1)
                metric_sum[:, task_id] += (metric * valid).nansum(1)
                count[:, task_id] += valid.sum(1)
                bad = (~torch.isfinite(losses) & valid.bool()).any(1)
                loss_sum[bad, task_id] = float("nan")
        nan = torch.full_like(loss_sum, float("nan"))
        ok = self.mask & (count > 0)
        return (
            torch.where(ok, loss_sum / count.clamp_min(1), nan),
            torch.where(ok, metric_sum / count.clamp_min(1), nan),
        )

    def _eval_chunk(self, data, task_id: int, start: int, chunk: int):
        n = self.num_runs
        x = torch.zeros(n, chunk, *self.input_shape, device=self.device)
        y = torch.zeros(n, chunk, self.target_width, device=self.device)
        valid = torch.zeros(n, chunk, device=self.device)
        for run, splits in enumerate(data):
            if task_id >= len(splits):
                continue
            xs, ys = splits[task_id]
            xs, ys = xs[start : start + chunk], ys[start : start + chunk]
            m = len(xs)
            x[run, :m] = xs.to(self.device, torch.float32)
            y[run, :m] = _pad_targets(ys, self.target_width).to(self.device)
            valid[run, :m] = 1
        return x, y, valid


def _per_run(
    value: torch.Tensor | None, name: str, default: float, num_runs: int, device: torch.device
) -> torch.Tensor:
    """``value`` as one float per run, ``default`` for every run if not given."""
    if value is None:
        return torch.full((num_runs,), default, device=device)
    value = torch.as_tensor(value, dtype=torch.float32, device=device)
    if tuple(value.shape) != (num_runs,):
        raise ValueError(
            f"{name} must have shape ({num_runs},) (one per run), got {tuple(value.shape)}"
        )
    return value


def _checked_normalisation(
    normalisation: torch.Tensor | None, num_runs: int, device: torch.device
) -> torch.Tensor:
    normalisation = _per_run(normalisation, "normalisation", 0.0, num_runs, device)
    if (
        not torch.isfinite(normalisation).all()
        or (normalisation < 0).any()
        or (normalisation > 1).any()
    ):
        raise ValueError(
            f"normalisation must lie in [0, 1] (0: the weighted sum, 1: each loss divided "
            f"by its own value), got {normalisation.tolist()}"
        )
    return normalisation


def _checked_scale(scale: torch.Tensor | None, num_runs: int, device: torch.device) -> torch.Tensor:
    scale = _per_run(scale, "scale", 1.0, num_runs, device)
    if not torch.isfinite(scale).all() or (scale <= 0).any():
        raise ValueError(
            f"scale must be finite and > 0 (the objective's overall size, 1 by default), "
            f"got {scale.tolist()}"
        )
    return scale


def task_gradient_gram(a: torch.Tensor, d: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
    """``<G_k, G_l>`` for the per-task weight gradients ``G_k = sum_{r in k} a_r^T d_r`` of a
    linear layer, from its inputs ``a`` (N, R, I), output gradients ``d`` (N, R, J) and row
    tasks ``one_hot`` (N, R, K), by the cheaper of two exact routes: forming every ``G_k``
    (cost ~ R K I J) or the row-kernel identity ``<G_k, G_l> = sum_{r in k, s in l}
    (a_r . a_s)(d_r . d_s)`` (cost ~ R^2 (I + J)), which wins for short batches."""
    rows, width_in, width_out = a.shape[1], a.shape[2], d.shape[2]
    k = one_hot.shape[2]
    if rows * (width_in + width_out) < k * width_in * width_out:
        kernel = (a @ a.transpose(1, 2)) * (d @ d.transpose(1, 2))
        return one_hot.transpose(1, 2) @ kernel @ one_hot
    per_task = torch.einsum("nri,nrk,nrj->nkij", a, one_hot, d)
    return torch.einsum("nkij,nlij->nkl", per_task, per_task)


def _take_rows(table: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``table[n, rows[n]]`` for every run n, as one ``index_select`` on the flattened
    table (several times faster than advanced indexing with a broadcast run index)."""
    n, length = table.shape[:2]
    flat_rows = rows + torch.arange(n, device=rows.device)[:, None] * length
    picked = table.flatten(0, 1).index_select(0, flat_rows.flatten())
    return picked.view(n, rows.shape[1], *table.shape[2:])


def _select_task(out: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
    """Pick each row's own task from every head's output: (N, B, [L,] K, O) -> (N, B, [L,] O)."""
    if out.dim() == 4:
        idx = task[..., None, None].expand(-1, -1, 1, out.shape[-1])
        return out.gather(2, idx).squeeze(2)
    idx = task[:, :, None, None, None].expand(-1, -1, out.shape[2], 1, out.shape[-1])
    return out.gather(3, idx).squeeze(3)


class BatchKey(NamedTuple):
    """What runs must share to train in one batch with the numbers each has alone: the
    input shape and body (the trainer requires them) and the head and target widths it
    pads every run to (the task slots are the caller's ``max_tasks``)."""

    input_shape: tuple[int, ...]
    body: Body
    head_width: int
    target_width: int


def batch_key(instance: SuiteInstance) -> BatchKey:
    """The :class:`BatchKey` of a run on ``instance``, from the instance alone."""
    return BatchKey(
        tuple(instance.input_shape), instance.body, head_width(instance), target_width(instance)
    )


def head_width(instance: SuiteInstance) -> int:
    """Outputs of the widest task head of ``instance`` (regression outputs or classes):
    the trainer pads every head of a batch to the widest."""
    return max(t.out_dim for t in instance.tasks)


def target_width(instance: SuiteInstance) -> int:
    """Columns of the trainer's target tensor for ``instance``: 1 for class ids, else the
    widest task's target (tagging ids per token, regression outputs)."""
    widths = []
    for task, data in zip(instance.tasks, instance.data, strict=True):
        y = data.y_train
        widths.append(1 if task.kind == "classification" else y.shape[1])
    return max(widths)


def _pad_targets(y: torch.Tensor, width: int) -> torch.Tensor:
    y = y.float()
    if y.dim() == 1:
        y = y[:, None]
    if y.shape[1] < width:
        y = torch.cat([y, y.new_zeros(len(y), width - y.shape[1])], 1)
    return y
