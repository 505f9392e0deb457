"""A curriculum controller in Lightning: :class:`CurriculumCallback`.

``pip install 'curriculum-rl[lightning]'``. The callback builds a
:class:`~curriculum_rl.session.CurriculumSession` when fitting starts and attaches it to
your module as ``self.curriculum``; your ``training_step`` returns the session's loss::

    def training_step(self, batch, batch_idx):
        x, y, task_ids = batch
        losses = F.cross_entropy(self(x, task_ids), y, reduction="none")   # per example
        return self.curriculum.loss(losses, task_ids)

    def validation_step(self, batch, batch_idx):          # optional: per-task val losses
        ...
        self.log_dict({f"val_loss/{k}": loss_k for k, loss_k in ...})

Every ``interval`` batches (before the next one) the callback takes a decision: it reads
the per-task validation losses your module logged (``val_key``) when a validation ran
since the last decision (``val_check_interval=interval`` keeps them fresh; else the
training losses stand in), updates the task sampler, logs ``curriculum/weight/TASK`` and
``curriculum/sampling/TASK`` to every logger, and writes the diagnostics
(:mod:`curriculum_rl.diagnostics`) to TensorBoard under ``LOG_DIR/curriculum``. Its state
(session and sampler) is saved in Lightning's checkpoints, and ``fit(ckpt_path=...)``
continues the same schedule. Under DDP give the loaders the
:class:`~curriculum_rl.integrations.sampler.TaskBatchSampler` as is:
``Trainer(use_distributed_sampler=False)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from curriculum_rl.controllers.base import Controller
from curriculum_rl.diagnostics import ScalarImageWriter
from curriculum_rl.integrations.driver import DecisionDriver
from curriculum_rl.integrations.sampler import TaskBatchSampler
from curriculum_rl.session import CurriculumSession, GradientProbe
from curriculum_rl.session.errors import parse_task_kinds


class CurriculumCallback(Callback):
    """Paces a LightningModule's tasks with ``controller``.

    Args:
        controller: from :func:`curriculum_rl.load_controller`.
        num_tasks: K.
        interval: batches (``loss()`` calls) between decisions.
        budget: batches of the whole run; by default the trainer's estimated stepping
            batches times ``accumulate_grad_batches``. Give it when a run is fitted in parts
            (the controller reads the fraction used).
        sampler: the training loader's :class:`TaskBatchSampler`, steered by the decisions.
        probe_layer: name of a shared ``nn.Linear`` of the module
            (``module.get_submodule(name)``) for gradient-alignment features.
        task_names: for log tags (``0..K-1`` by default).
        val_key: the logged per-task validation loss, ``{task}`` standing for the name.
        task_kinds: each task's kind, ``"regression"``, ``"classification"`` or
            ``"tagging"``, as for :class:`CurriculumSession` (all regression if not
            given: name your classification tasks, so the policy reads their errors as in
            training). A logged mean loss is taken as the mean of 64 examples for the
            classification error's smoothing (``CurriculumSession.update``'s default).
        train_sizes / objective_tasks / seed: as for :class:`CurriculumSession`.
        attribute: the module attribute that holds the session.
    """

    def __init__(
        self,
        controller: Controller,
        num_tasks: int,
        interval: int = 25,
        budget: int | None = None,
        sampler: TaskBatchSampler | None = None,
        probe_layer: str | None = None,
        task_names: Sequence[str] | None = None,
        val_key: str = "val_loss/{task}",
        task_kinds: Sequence[str] | None = None,
        train_sizes: Sequence[int] | None = None,
        objective_tasks: Sequence[int] | None = None,
        seed: int = 0,
        attribute: str = "curriculum",
    ) -> None:
        self.controller, self.num_tasks, self.interval = controller, num_tasks, interval
        self.budget, self.sampler, self.probe_layer = budget, sampler, probe_layer
        self.task_names, self.val_key = task_names, val_key
        # checked now, not when fitting starts
        self.task_kinds = parse_task_kinds(task_kinds, num_tasks)
        self.train_sizes, self.objective_tasks, self.seed = train_sizes, objective_tasks, seed
        self.attribute = attribute
        self.driver: DecisionDriver | None = None
        self._own_writer: Any = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        probe = None
        if self.probe_layer is not None:
            probe = GradientProbe(pl_module.get_submodule(self.probe_layer))
        budget = self.budget or trainer.estimated_stepping_batches * trainer.accumulate_grad_batches
        if not math.isfinite(budget):
            raise ValueError(
                "CurriculumCallback: the trainer cannot tell how many batches this run has "
                "(no max_steps, and a loader without a length); give budget="
            )
        session = CurriculumSession(
            self.controller,
            self.num_tasks,
            int(budget),
            self.interval,
            train_sizes=self.train_sizes,
            objective_tasks=self.objective_tasks,
            seed=self.seed,
            probe=probe,
            task_kinds=self.task_kinds,
        )
        setattr(pl_module, self.attribute, session)
        self.driver = DecisionDriver(
            session, self.sampler, self.task_names, lambda: self._writer(trainer)
        )

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Keep the per-task validation losses the module logged for the next decision."""
        if self.driver is None or trainer.sanity_checking:
            return
        keys = [self.val_key.format(task=name) for name in self.driver.task_names]
        metrics = trainer.callback_metrics
        if all(key in metrics for key in keys):
            values = [torch.as_tensor(metrics[key]).float() for key in keys]
            self.driver.fresh_val = torch.stack(values)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        # Decide before the next batch rather than after the last one: a validation that
        # Lightning runs between the two is then already in the decision.
        if self.driver is None or not self.driver.session.decision_due:
            return
        logs = self.driver.decide(rank0=trainer.is_global_zero)
        pl_module.log_dict(logs, on_step=True, on_epoch=False)

    def _writer(self, trainer: pl.Trainer) -> ScalarImageWriter:
        """The diagnostics' own TensorBoard run, ``LOG_DIR/curriculum``: the weights and
        sampling also reach every logger through ``log_dict``, and one TensorBoard run
        must not get two series under one tag."""
        from torch.utils.tensorboard import SummaryWriter

        folder = Path(trainer.log_dir or trainer.default_root_dir) / "curriculum"
        self._own_writer = SummaryWriter(str(folder))
        return self._own_writer

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._own_writer is not None:
            self._own_writer.close()
            self._own_writer = None

    def state_dict(self) -> dict[str, Any]:
        return {} if self.driver is None else self.driver.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:  # saved before fitting started
            return
        if self.driver is None:
            raise RuntimeError("CurriculumCallback: a checkpoint was loaded before fit's setup")
        self.driver.load_state_dict(state_dict)
