"""Apply a controller inside your own PyTorch training loop: :class:`CurriculumSession`.

Every optimisation step, hand the session the step's losses; it returns the objective to
backpropagate (the losses weighted by the decision in force, or by the controller's own
per-step rule for DWA, UW and the like). Every ``interval`` steps (``decision_due``), ask
it for the next decision: it reads the losses of the interval (and validation losses,
per-task gradient alignment, if you give them) and returns the task weights and the
sampling probabilities for the next steps::

    session = curriculum_rl.CurriculumSession(controller, num_tasks=3, budget=2000)
    for step in range(2000):
        x, y, task_ids = next(batches)           # e.g. from a TaskBatchSampler
        loss = session.loss(per_example_losses(x, y), task_ids)
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        if session.decision_due:
            weights, sampling = session.update(val_losses=evaluate())
            sampler.set_probabilities(sampling)

The session drives the same :class:`~curriculum_rl.loop.DecisionLoop` as the benchmark
and the environments, so a learned policy reads the observation it was trained on. It is
device-agnostic: losses may live on any device and come from autocast; :meth:`loss` never
waits for the device, and :meth:`update` copies what it needs to the host once. With
``torch.distributed`` initialised, losses (and the gradient Gram) are summed over ranks
and rank 0's decision is put in force everywhere (:mod:`.distributed`). Its
:meth:`state_dict` is a dict of tensors; a run resumed from it makes the same decisions as
one never interrupted (:mod:`.journal`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from curriculum_rl.controllers.base import Controller, DecisionState, RunContext
from curriculum_rl.controllers.decision import Decision
from curriculum_rl.loop import DecisionLoop
from curriculum_rl.session.distributed import Collective
from curriculum_rl.session.errors import (
    DEFAULT_VAL_COUNT,
    classify_mask,
    interval_error,
    kind_codes,
    mean_loss_error,
    parse_task_kinds,
)
from curriculum_rl.session.grads import GradientProbe
from curriculum_rl.session.journal import Journal
from curriculum_rl.session.support import check_supported, step_driver
from curriculum_rl.trainer import Measurement
from curriculum_rl.trainer.objective import loss_normaliser
from curriculum_rl.trainer.trainer import KIND_CODE, example_error

ArrayLike = torch.Tensor | np.ndarray | Sequence[float]
STATE_FORMAT = 2


class CurriculumSession:
    """One training run of yours, paced by ``controller``.

    Args:
        controller: from :func:`curriculum_rl.load_controller` (or any
            :class:`~curriculum_rl.controllers.base.Controller`). Gradient aggregators
            (``pcgrad``, ``mgda``...) need your model's parameters in every step and are
            refused with the reason; ``gradnorm`` needs ``probe``, the shared layer it
            measures the tasks' gradient norms on.
        num_tasks: K, the number of tasks (<= the policy's ``K_max`` for a learned one).
        budget: total optimisation steps you will run (the controller reads the fraction used).
        interval: optimisation steps between two decisions.
        train_sizes: training examples per task (for the relative-size feature); equal if
            not given.
        objective_tasks: indices of the tasks you care about (the others are auxiliary);
            all tasks if not given.
        seed: handed to controllers that draw random numbers.
        probe: a :class:`~curriculum_rl.session.GradientProbe` on a shared layer: the
            session arms it for the forward pass before each decision, so the controller
            sees the tasks' gradient alignment (zeros without one); ``gradnorm`` also
            measures each task's gradient norm on its weight at every step.
        task_kinds: each task's kind, ``"regression"``, ``"classification"`` or
            ``"tagging"`` (all regression if not given). It sets how a task's error is
            measured (the MSE, or the smoothed soft error of the cross-entropy, as in
            training: :mod:`.errors`), which the learned policy, ``inverse-error`` and
            ``scale-normalised`` read; a classification task declared as regression looks
            like one with an unbounded error.
    """

    def __init__(
        self,
        controller: Controller,
        num_tasks: int,
        budget: int,
        interval: int = 25,
        train_sizes: Sequence[int] | None = None,
        objective_tasks: Sequence[int] | None = None,
        seed: int = 0,
        probe: GradientProbe | None = None,
        task_kinds: Sequence[str] | None = None,
    ) -> None:
        if num_tasks < 1:
            raise ValueError(f"num_tasks must be >= 1, got {num_tasks}")
        if budget < 1 or interval < 1:
            raise ValueError(f"budget and interval must be >= 1, got {budget}, {interval}")
        self.task_kinds = parse_task_kinds(task_kinds, num_tasks)
        self.classify = classify_mask(self.task_kinds)
        self._classify_on: dict[torch.device, torch.Tensor] = {}
        check_supported(controller, probe)
        self.controller, self.probe, self.seed = controller, probe, seed
        self.num_tasks, self.budget, self.interval = num_tasks, budget, interval
        sizes = torch.ones(num_tasks) if train_sizes is None else torch.as_tensor(train_sizes)
        if sizes.shape != (num_tasks,) or (sizes <= 0).any():
            raise ValueError(f"train_sizes must be {num_tasks} positive counts")
        self.train_sizes = sizes.float()[None]
        self.mask = torch.ones(1, num_tasks, dtype=torch.bool)
        self.objective = torch.zeros(1, num_tasks, dtype=torch.bool)
        chosen = range(num_tasks) if objective_tasks is None else objective_tasks
        for i in chosen:
            if not 0 <= i < num_tasks:
                raise ValueError(f"objective task index {i} out of range for {num_tasks} tasks")
            self.objective[0, i] = True
        self.collective = Collective()
        self._start()

    def _start(self) -> None:
        """A fresh run: decision loop, controller, journal and counters."""
        self.loop = DecisionLoop(self.mask, self.train_sizes, self.budget)
        context = RunContext(
            self.mask.clone(), self.train_sizes.clone(), self.budget, self.interval, [self.seed]
        )
        self.controller.reset(context)
        self._hook = step_driver(self.controller, self.mask, self.probe)
        step_width = self.num_tasks if self._hook is None else self._hook.width
        self.journal = Journal(self.mask, self.objective, self.classify, step_width)
        self.calls = 0  # decisions taken
        self.steps = 0  # loss() calls
        self._since = 0  # loss() calls since the last decision
        # (4, K) sums of losses, loss counts, sums of example errors, per-example counts
        self._interval: torch.Tensor | None = None
        self._gram: torch.Tensor | None = None  # from the probe, for the next decision
        self._on_device: dict[torch.device, torch.Tensor] = {}
        self._normalise = False  # the decision in force divides losses by their values
        self._scaled = False  # ... or scales the objective (Decision.scale)
        self._sync_probe()

    @property
    def state(self) -> DecisionState | None:
        """What the controller read at the latest decision (None before the first)."""
        return self.loop.state

    @property
    def decision_due(self) -> bool:
        """True once :meth:`loss` has been called ``interval`` times since the last decision."""
        return self._since >= self.interval

    # ------------------------------------------------------------------ every step
    def loss(self, losses: torch.Tensor, task_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The objective of one optimisation step, to backpropagate.

        Args:
            losses: per-example losses (B,) with ``task_ids`` (B,), the task of each
                example (a batch mixing tasks, e.g. from a ``TaskBatchSampler``); or
                per-task losses (K,) with ``task_ids=None`` (every example serves every
                task, or you compute each task's mean loss yourself).

        Returns:
            ``sum_k w_k L_k``. With task ids, ``L_k = (K / B) sum_{i of task k} loss_i``,
            the trainer's convention: the task's mean loss times K times its share of the
            batch, so sampling a task more also raises its share of the update, as in the
            runs the policy learned from. A decision with a loss normalisation ``alpha``
            (:class:`~curriculum_rl.controllers.decision.Decision`) divides each ``L_k``
            by its detached value to that power, as the trainer does. Never waits for the
            device (controllers with a per-step hook, such as ``dwa`` or ``uw``, read the
            losses on the host).
        """
        per_task, fresh = self._per_task(losses, task_ids)
        if self.probe is not None and self.probe.captured:
            self._gram = self.probe.gram(losses, task_ids, self.num_tasks)
        weights = self._step_weights(per_task)
        self._interval = fresh if self._interval is None else self._interval.to(fresh) + fresh
        self.steps += 1
        self._since += 1
        self._sync_probe()
        return (weights * per_task).sum()

    def _per_task(
        self, losses: torch.Tensor, task_ids: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(weighted-loss terms with their graph, the step's (4, K) interval statistics:
        detached loss sums, their counts, and, for per-example losses only, the sums of the
        examples' errors and their counts)."""
        k = self.num_tasks
        if task_ids is None:
            if losses.shape != (k,):
                raise ValueError(
                    f"per-task losses must have shape ({k},), got {tuple(losses.shape)}; for "
                    "per-example losses pass task_ids too"
                )
            per_task = losses.float()
            ones = torch.ones_like(per_task.detach())
            return per_task, torch.stack([per_task.detach(), ones, 0 * ones, 0 * ones])
        if losses.dim() != 1 or tuple(task_ids.shape) != tuple(losses.shape):
            raise ValueError(
                f"per-example losses (B,) and task_ids (B,) must match, got "
                f"{tuple(losses.shape)} and {tuple(task_ids.shape)}; reduce each example's "
                "loss to one number first (e.g. the mean over its tokens)"
            )
        ids = task_ids.to(losses.device, torch.long)
        zeros = torch.zeros(k, device=losses.device)
        sums = zeros.index_add(0, ids, losses.float())
        counts = zeros.index_add(0, ids, torch.ones_like(losses, dtype=torch.float32))
        classify = self._classify_on_device(losses.device)[ids]
        errors = zeros.index_add(0, ids, example_error(losses.detach().float(), classify))
        fresh = torch.stack([sums.detach(), counts, errors, counts])
        return sums * (k / losses.shape[0]), fresh

    def _classify_on_device(self, device: torch.device) -> torch.Tensor:
        """(K,) the classification tasks, copied to ``device`` once."""
        if device not in self._classify_on:
            self._classify_on[device] = _to_device(self.classify[0], device)
        return self._classify_on[device]

    def _step_weights(self, per_task: torch.Tensor) -> torch.Tensor:
        """This step's weights on the losses' device: the decision in force, or the
        per-step hook's weights for these losses (averaged over ranks first)."""
        device = per_task.device
        if self._hook is None:
            if device not in self._on_device:
                in_force = self.loop.previous
                packed = torch.cat([in_force.weights[0], in_force.normalisation, in_force.scale])
                self._on_device[device] = _to_device(packed, device)
            weights, alpha, scale = self._on_device[device].split([self.num_tasks, 1, 1])
            if self._normalise:
                weights = weights * loss_normaliser(per_task, alpha[0])
            if self._scaled:
                weights = weights * scale
            return weights
        host = self.collective.mean(self._hook.measure(per_task).cpu())
        self.journal.record_step(host)
        return self._hook.weights(host, self.loop.previous.weights).to(device)

    def _sync_probe(self) -> None:
        """Arm the probe for the forward pass of the last step before a decision only."""
        if self.probe is None:
            return
        if self._since % self.interval == self.interval - 1:
            self.probe.arm()
        else:
            self.probe.disarm()

    # ------------------------------------------------------------------ every decision
    def update(
        self,
        train_losses: ArrayLike | None = None,
        val_losses: ArrayLike | None = None,
        task_grads: torch.Tensor | np.ndarray | None = None,
        step: int | None = None,
        *,
        grad_gram: torch.Tensor | None = None,
        val_counts: int | ArrayLike | None = None,
    ) -> tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray]:
        """Decide: fold in the interval's losses and return ``(weights, sampling)`` (K,).

        Args:
            train_losses: (K,) mean training loss of each task over the interval; by
                default, the mean of the losses handed to :meth:`loss` since the last
                decision.
            val_losses: (K,) validation losses; the training losses stand in when not
                given (the policy then cannot see overfitting).
            task_grads: (K, D) each task's gradient on shared parameters, if you have them;
                or ``grad_gram``, their (K, K) Gram matrix. By default, the probe's Gram,
                else zeros.
            step: optimisation steps done so far; by default the number of :meth:`loss`
                calls (or ``decisions x interval`` when :meth:`loss` is not used).
            val_counts: validation examples behind each of ``val_losses`` (an int for
                all tasks, or (K,); this rank's, summed over ranks): the classification
                tasks' error is the smoothed soft error of their mean loss over that many
                examples; if not given, as many as training's validation probe has (64,
                ``errors.DEFAULT_VAL_COUNT``). Without
                ``val_losses``, the error comes from the per-example losses handed to
                :meth:`loss` (as in training), or from the mean losses (:mod:`.errors`).

        Returns:
            weights (mean 1 over tasks) and sampling probabilities (sum 1) on the host: torch
            tensors, or numpy arrays when you passed numpy arrays or lists. :meth:`loss`
            applies the weights; give the sampling to your sampler.
        """
        per_step = self._hook is not None or self._normalise or self._scaled
        if per_step and self.calls > 0 and self._since == 0:
            raise RuntimeError(
                f"controller {self.controller.name!r} weighs the losses in every optimisation "
                "step: compute each step's loss with session.loss(...) (no loss() call since "
                "the last decision); update() alone cannot apply it"
            )
        train, val, error, gram, counts = self._gather(
            train_losses, val_losses, val_counts, task_grads, grad_gram
        )
        in_force = self.loop.previous
        total = counts.sum()
        share = counts / total if total > 0 else in_force.sampling[0]
        default_step = self.steps if self.steps else self.calls * self.interval
        measurement = self.journal.record_decision(
            train,
            val,
            error,
            self._combined_weights(train) * self.num_tasks * share,  # the trainer's `combined`
            gram,
            default_step if step is None else int(step),
        )
        decision = self._decide(measurement, share=True)
        self.calls += 1
        self._since = 0
        self._interval, self._gram = None, None
        self._sync_probe()
        weights, sampling = decision.weights[0].clone(), decision.sampling[0].clone()
        if _returns_numpy(train_losses, val_losses):
            return weights.numpy(), sampling.numpy()
        return weights, sampling

    def _gather(
        self,
        train_losses: ArrayLike | None,
        val_losses: ArrayLike | None,
        val_counts: int | ArrayLike | None,
        task_grads: torch.Tensor | np.ndarray | None,
        grad_gram: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(train, val, val error, gram, counts) on the host, summed over ranks: one
        device-to-host copy of everything, in a fixed layout so that every rank sums the
        same slots."""
        k = self.num_tasks
        pieces = [
            self._interval,
            self._vector(train_losses, "train_losses"),
            self._vector(val_losses, "val_losses"),
            self._val_counts(val_counts, val_losses),
            self._gram_of(task_grads, grad_gram),
        ]
        shapes = [(4, k), (k,), (k,), (k,), (k, k)]
        device = next((p.device for p in pieces if p is not None), torch.device("cpu"))
        flat = torch.cat(
            [
                (torch.zeros(shape, device=device) if p is None else p.to(device)).reshape(-1)
                for p, shape in zip(pieces, shapes, strict=True)
            ]
        )
        host = self.collective.sum(_to_host(flat.float()))
        ranks = self.collective.size
        interval, train, val, val_count, gram = host.split([4 * k, k, k, k, k * k])
        sums, counts, error_sums, examples = interval.view(4, k)
        if pieces[1] is not None:
            train = train / ranks
        else:
            train = torch.where(counts > 0, sums / counts.clamp_min(1), float("nan"))
        classify = self.classify[0]
        if pieces[2] is not None:
            val = val / ranks
            count = DEFAULT_VAL_COUNT if pieces[3] is None else _checked_counts(val_count)
            error = mean_loss_error(val, count, classify)
        elif pieces[1] is not None:
            val, error = train, mean_loss_error(train, DEFAULT_VAL_COUNT, classify)
        elif not bool((counts > 0).any()):
            raise ValueError(
                "update() has no losses to read: call session.loss(...) at every step, or "
                "pass train_losses or val_losses"
            )
        else:  # a task with no example in the interval keeps its last training loss
            val = torch.where(counts > 0, train, self.loop.tracker.last_train[0])
            error = self._interval_error(val, counts, error_sums, examples)
        gram = gram.view(k, k) / ranks if pieces[4] is not None else torch.zeros(k, k)
        return train, val, error, gram, counts

    def _interval_error(
        self,
        val: torch.Tensor,
        counts: torch.Tensor,
        error_sums: torch.Tensor,
        examples: torch.Tensor,
    ) -> torch.Tensor:
        """(K,) the error when the interval's losses stand in for validation losses: the
        trainer's rule on the per-example losses where :meth:`loss` only had those, the
        per-task mean rule where it had per-task losses, and, for a task without any, its
        error at the last decision (:mod:`.errors`)."""
        classify = self.classify[0]
        from_examples = interval_error(error_sums, examples, classify)
        from_means = mean_loss_error(val, DEFAULT_VAL_COUNT, classify)
        error = torch.where(examples == counts, from_examples, from_means)
        last = from_means if self.loop.state is None else self.loop.state.val_error[0]
        return torch.where(counts > 0, error, last)

    def _decide(self, measurement: Measurement, share: bool) -> Decision:
        """Observe, let the controller decide, and put rank 0's decision in force (every
        rank runs its controller on the same numbers, so their states stay equal)."""
        state = self.loop.observe(measurement)
        with torch.enable_grad(), torch.autocast("cpu", enabled=False):
            decision = self.controller.decide(state)
        alpha = decision.normalisation.expand(self.num_tasks)
        scale = decision.scale.expand(self.num_tasks)
        packed = torch.stack([decision.weights[0], decision.sampling[0], alpha, scale])
        packed = packed.detach().float()
        if share:
            packed = self.collective.from_rank0(packed)
        weights, sampling, alpha, scale = packed[0:1], packed[1:2], packed[2, :1], packed[3, :1]
        decision = Decision(weights.clone(), sampling.clone(), alpha.clone(), scale.clone())
        self._commit(decision)
        return decision

    def _commit(self, decision: Decision) -> None:
        self.loop.commit(decision)
        self._normalise = bool(decision.normalisation.any())
        self._scaled = bool((decision.scale != 1).any())
        self._on_device.clear()

    def _combined_weights(self, train: torch.Tensor) -> torch.Tensor:
        """(K,) the weights the interval's steps gave the losses: the decision in force,
        times its loss normaliser at the interval's mean training losses (the trainer
        uses its last step's batch losses; a session reads the device once per decision)
        and its scale."""
        in_force = self.loop.previous
        weights = in_force.weights[0]
        if self._normalise:
            weights = weights * loss_normaliser(train.nan_to_num(1.0), in_force.normalisation)[0]
        return weights * in_force.scale[0] if self._scaled else weights

    def _vector(self, values: ArrayLike | None, name: str) -> torch.Tensor | None:
        if values is None:
            return None
        if isinstance(values, torch.Tensor):
            tensor = values.detach().float()
        else:
            tensor = torch.as_tensor(np.asarray(values, dtype=np.float32))
        if tensor.shape != (self.num_tasks,):
            raise ValueError(
                f"{name} must have shape ({self.num_tasks},), got {tuple(tensor.shape)}"
            )
        return tensor

    def _val_counts(
        self, val_counts: int | ArrayLike | None, val_losses: ArrayLike | None
    ) -> torch.Tensor | None:
        if val_counts is None:
            return None
        if val_losses is None:
            raise ValueError("val_counts counts the examples behind val_losses; pass both")
        if isinstance(val_counts, int | np.integer):
            val_counts = [int(val_counts)] * self.num_tasks
        return self._vector(val_counts, "val_counts")  # values checked on the host

    def _gram_of(
        self, task_grads: torch.Tensor | np.ndarray | None, grad_gram: torch.Tensor | None
    ) -> torch.Tensor | None:
        k = self.num_tasks
        if task_grads is not None and grad_gram is not None:
            raise ValueError("give task_grads or grad_gram, not both")
        if grad_gram is not None:
            gram = torch.as_tensor(grad_gram).detach().float()
            if gram.shape != (k, k):
                raise ValueError(f"grad_gram must have shape ({k}, {k}), got {tuple(gram.shape)}")
            return gram.nan_to_num(0.0, 0.0, 0.0)
        if task_grads is not None:
            grads = torch.as_tensor(task_grads).detach().float().reshape(k, -1)
            return (grads @ grads.T).nan_to_num(0.0, 0.0, 0.0)
        return self._gram

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything a resumed run needs, as tensors (``torch.load(weights_only=True)``):
        the decision loop's tracker, the decision in force, the counters, the interval so
        far, and the journal from which :meth:`load_state_dict` rebuilds the controller's
        state."""
        k = self.num_tasks
        previous = self.loop.previous
        state = {
            "format": torch.tensor(STATE_FORMAT),
            "controller": torch.tensor(list(self.controller.name.encode()), dtype=torch.uint8),
            "settings": torch.tensor([k, self.budget, self.interval, self.seed]),
            "task_kinds": kind_codes(self.task_kinds),
            "counters": torch.tensor([self.calls, self.steps, self._since]),
            "interval": torch.zeros(4, k) if self._interval is None else self._interval.cpu(),
            "gram": torch.zeros(k, k) if self._gram is None else self._gram.cpu(),
            "has_gram": torch.tensor(self._gram is not None),
            "in_force": torch.cat([previous.weights, previous.sampling]).clone(),
            "in_force_normalisation": previous.normalisation.clone(),
            "in_force_scale": previous.scale.clone(),
        }
        for name, value in _tracker_tensors(self.loop).items():
            state[f"tracker.{name}"] = value.clone()
        return {**state, **self.journal.state_dict()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Continue the run saved by :meth:`state_dict`: the controller's state is rebuilt
        by replaying the journal into a fresh controller, then checked against the saved
        decision in force (a mismatch means another controller or non-deterministic
        replay, and raises)."""
        self._check_compatible(state)
        self._start()
        self.journal.load_state_dict(state)
        on_step = self._hook.weights if self._hook is not None else _no_hook(self.controller)
        self.journal.replay(
            on_step=lambda losses: on_step(losses, self.loop.previous.weights),
            on_decision=lambda m: self._decide(m, share=False),
        )
        # states saved before the loss normalisation or the scale existed had none
        alpha = state.get("in_force_normalisation", torch.zeros(1)).float()
        scale = state.get("in_force_scale", torch.ones(1)).float()
        saved = torch.cat([state["in_force"].float().flatten(), alpha, scale])
        previous = self.loop.previous
        replayed = torch.cat(
            [previous.weights[0], previous.sampling[0], previous.normalisation, previous.scale]
        )
        if not torch.allclose(replayed, saved, rtol=1e-4, atol=1e-6):
            raise ValueError(
                f"replaying the checkpoint's journal through controller "
                f"{self.controller.name!r} gave decision {replayed.tolist()}, but the "
                f"checkpoint holds {saved.tolist()}: was it saved with other controller "
                "settings or a different policy file?"
            )
        k = self.num_tasks
        self._commit(
            Decision(saved[None, :k].clone(), saved[None, k : 2 * k].clone(), alpha, scale)
        )
        for name, value in _tracker_tensors(self.loop).items():
            value.copy_(state[f"tracker.{name}"])
        self.calls, self.steps, self._since = (int(c) for c in state["counters"].tolist())
        counts = state["interval"][1]
        self._interval = state["interval"].clone() if bool((counts > 0).any()) else None
        self._gram = state["gram"].clone() if bool(state["has_gram"]) else None
        self._sync_probe()

    def _check_compatible(self, state: dict[str, torch.Tensor]) -> None:
        if int(state["format"]) != STATE_FORMAT:
            raise ValueError(
                f"session state format {int(state['format'])} is not {STATE_FORMAT}; it was "
                "saved by another version of curriculum-rl"
            )
        name = bytes(state["controller"].tolist()).decode()
        if name != self.controller.name:
            raise ValueError(
                f"the checkpoint was saved with controller {name!r}, this session runs "
                f"{self.controller.name!r}; load it into a session with the same controller"
            )
        saved = [int(v) for v in state["settings"].tolist()]
        mine = [self.num_tasks, self.budget, self.interval, self.seed]
        if saved != mine:
            labels = ("num_tasks", "budget", "interval", "seed")
            pairs = zip(labels, saved, mine, strict=True)
            diffs = [f"{n} {a} (saved) vs {b}" for n, a, b in pairs if a != b]
            raise ValueError(f"the checkpoint's session settings differ: {', '.join(diffs)}")
        if not torch.equal(state["task_kinds"], kind_codes(self.task_kinds)):
            names = {code: kind for kind, code in KIND_CODE.items()}
            saved_kinds = [names[int(code)] for code in state["task_kinds"].tolist()]
            raise ValueError(
                f"the checkpoint's session settings differ: task_kinds {saved_kinds} (saved) "
                f"vs {self.task_kinds}"
            )


def _to_host(values: torch.Tensor) -> torch.Tensor:
    """The one device-to-host copy of a decision (it waits for the device's queue)."""
    return values.cpu()


def _checked_counts(counts: torch.Tensor) -> torch.Tensor:
    if not bool(torch.isfinite(counts).all()) or bool((counts < 1).any()):
        raise ValueError(f"val_counts must be >= 1 example per task, got {counts.tolist()}")
    return counts


def _to_device(values: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on ``device`` without waiting for it: pinned first on CUDA, so the
    copy is asynchronous."""
    if device.type == "cuda":
        values = values.pin_memory()
    return values.to(device, non_blocking=True)


def _tracker_tensors(loop: DecisionLoop) -> dict[str, torch.Tensor]:
    """The signal tracker's history tensors (its whole state besides its constants)."""
    return {n: v for n, v in vars(loop.tracker).items() if isinstance(v, torch.Tensor)}


def _no_hook(controller: Controller):
    def fail(losses: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        raise ValueError(
            f"the checkpoint's journal holds per-step losses, but controller "
            f"{controller.name!r} has no per-step hook; it was saved with another controller"
        )

    return fail


def _returns_numpy(*inputs: ArrayLike | None) -> bool:
    """Numpy results when the first given input was not a torch tensor."""
    given = next((x for x in inputs if x is not None), None)
    return given is not None and not isinstance(given, torch.Tensor)
