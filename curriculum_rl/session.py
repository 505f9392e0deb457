"""Apply a controller inside your own PyTorch training loop.

:class:`CurriculumSession` wraps any controller (the learned policy, a heuristic) for a
single run you train yourself. Every ``interval`` optimisation steps — starting at step 0,
before the first update — hand it the per-task losses; it returns the task weights to
multiply your losses with and the sampling probabilities to draw the next batches from::

    import curriculum_rl

    session = curriculum_rl.CurriculumSession(
        curriculum_rl.load_controller(), num_tasks=3, budget=2000
    )
    for step in range(2000):
        if step % session.interval == 0:
            weights, sampling = session.update(train_losses, val_losses, step=step)
        loss = (weights * task_losses).sum()
        ...

See ``examples/own_loop.py`` for a complete, runnable loop. Only torch is needed. The
session drives the same :class:`~curriculum_rl.loop.DecisionLoop` as the benchmark and
the environments, so a learned policy reads the observation it was trained on.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from curriculum_rl.controllers.base import Controller, DecisionState, RunContext
from curriculum_rl.loop import DecisionLoop
from curriculum_rl.trainer import Measurement
from curriculum_rl.trainer.objective import mean_log_loss

ArrayLike = torch.Tensor | np.ndarray | Sequence[float]


class CurriculumSession:
    """One training run of yours, paced by ``controller``.

    Args:
        controller: from :func:`curriculum_rl.load_controller` (or any
            :class:`~curriculum_rl.controllers.base.Controller`).
        num_tasks: K, the number of tasks (<= the policy's ``K_max`` for a learned one).
        budget: total optimisation steps you will run (the controller reads the fraction used).
        interval: optimisation steps between two calls of :meth:`update`.
        train_sizes: training examples per task (for the relative-size feature); equal if
            not given.
        objective_tasks: indices of the tasks you care about (the others are auxiliary);
            all tasks if not given.
        seed: handed to controllers that draw random numbers.
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
    ) -> None:
        if num_tasks < 1:
            raise ValueError(f"num_tasks must be >= 1, got {num_tasks}")
        if budget < 1 or interval < 1:
            raise ValueError(f"budget and interval must be >= 1, got {budget}, {interval}")
        self.controller = controller
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
        if controller.hook is not None:
            warnings.warn(
                f"controller {controller.name!r} also acts inside every optimisation step "
                "through a trainer hook; in your own loop only its weights and sampling apply",
                stacklevel=2,
            )
        self.loop = DecisionLoop(self.mask, self.train_sizes, budget)
        controller.reset(
            RunContext(self.mask.clone(), self.train_sizes.clone(), budget, interval, [seed])
        )
        self.calls = 0

    @property
    def state(self) -> DecisionState | None:
        """What the controller read at the latest :meth:`update` (None before the first)."""
        return self.loop.state

    def update(
        self,
        train_losses: ArrayLike,
        val_losses: ArrayLike | None = None,
        task_grads: torch.Tensor | np.ndarray | None = None,
        step: int | None = None,
    ) -> tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray]:
        """Fold in the latest losses and return ``(weights, sampling)``, both shape (K,).

        Args:
            train_losses: (K,) mean training loss of each task over the last interval.
            val_losses: (K,) validation losses; the train losses stand in when not given
                (the policy then cannot see overfitting).
            task_grads: (K, D) each task's gradient on the shared parameters (e.g. the
                last shared layer, flattened); their cosines feed the alignment features.
                Zeros when not given.
            step: optimisation steps done so far; ``calls * interval`` if not given.

        Returns:
            weights (mean 1 over tasks, multiply each task's loss by its weight) and
            sampling probabilities (sum 1), as torch tensors if ``train_losses`` is a
            tensor, else as numpy arrays.
        """
        as_torch = isinstance(train_losses, torch.Tensor)
        train = self._vector(train_losses, "train_losses")
        val = train if val_losses is None else self._vector(val_losses, "val_losses")
        k = self.num_tasks
        if task_grads is None:
            gram = torch.zeros(1, k, k)
        else:
            grads = torch.as_tensor(task_grads).detach().float().cpu().reshape(k, -1)
            gram = (grads @ grads.T)[None]
        steps = self.calls * self.interval if step is None else int(step)
        in_force = self.loop.previous
        measurement = Measurement(
            train_loss=train,
            val_loss=val,
            grad_gram=gram.nan_to_num(0.0, 0.0, 0.0),
            # coefficients of the current update in terms of the task gradients, as the
            # trainer reports them: w_k * K * (expected share of the batch)
            combined=in_force.weights * k * in_force.sampling,
            mask=self.mask,
            objective=self.objective,
            diverged=~torch.isfinite(val).all(1, keepdim=False),
            steps=torch.tensor([steps]),
            j=mean_log_loss(val, self.objective),
        )
        self.loop.observe(measurement)
        decision = self.loop.decide(self.controller)
        self.calls += 1
        weights, sampling = decision.weights[0].detach(), decision.sampling[0].detach()
        if as_torch:
            device = train_losses.device
            return weights.to(device), sampling.to(device)
        return weights.cpu().numpy(), sampling.cpu().numpy()

    def _vector(self, values: ArrayLike, name: str) -> torch.Tensor:
        if isinstance(values, torch.Tensor):
            tensor = values.detach().float().cpu()
        else:
            tensor = torch.as_tensor(np.asarray(values, dtype=np.float32))
        if tensor.shape != (self.num_tasks,):
            raise ValueError(
                f"{name} must have shape ({self.num_tasks},), got {tuple(tensor.shape)}"
            )
        return tensor[None]
