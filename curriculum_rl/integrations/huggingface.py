"""A curriculum controller in the Hugging Face ``Trainer``: :class:`CurriculumTrainer`.

``pip install 'curriculum-rl[huggingface]'``. A multitask model takes each batch's task ids
(the ``task_ids`` column of your dataset, routed to its heads) and returns one loss per
example (``outputs["loss"]`` of shape (B,)); the trainer weights them with a
:class:`~curriculum_rl.session.CurriculumSession` in ``compute_loss``::

    trainer = CurriculumTrainer(
        model=model, args=TrainingArguments(..., max_steps=2000), train_dataset=train,
        eval_dataset=val, controller=curriculum_rl.load_controller(), num_tasks=3,
        task_sampler=TaskBatchSampler(train_task_ids, batch_size=32),
    )
    trainer.train()

Every ``interval`` batches it decides: with the per-task validation losses of the last
``evaluate()`` when one ran since the previous decision (else the training losses stand
in), it updates the task sampler the training batches come from, logs
``curriculum/weight/TASK`` and ``curriculum/sampling/TASK`` through ``Trainer.log`` (every
``report_to`` integration gets them) and writes the diagnostics
(:mod:`curriculum_rl.diagnostics`) to TensorBoard under ``OUTPUT_DIR/curriculum``. Each
checkpoint folder gets ``curriculum.pt`` (session and sampler, tensors only), and
``train(resume_from_checkpoint=...)`` continues the same schedule. With a task sampler the
trainer sets ``ignore_data_skip``: the sampler's own state resumes the data stream.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from curriculum_rl.atomic import atomic_path
from curriculum_rl.controllers.base import Controller
from curriculum_rl.diagnostics import ScalarImageWriter
from curriculum_rl.integrations.driver import DecisionDriver
from curriculum_rl.integrations.sampler import TaskBatchSampler
from curriculum_rl.session import CurriculumSession, GradientProbe

CHECKPOINT_FILE = "curriculum.pt"


class CurriculumTrainer(Trainer):
    """A ``Trainer`` whose loss is weighted, and whose batches are sampled, by a curriculum
    controller.

    Args (besides ``Trainer``'s):
        controller: from :func:`curriculum_rl.load_controller`.
        num_tasks: K.
        task_sampler: the training batches' :class:`TaskBatchSampler` (over
            ``train_dataset``'s task column); without one, the Trainer's own sampling.
        interval: batches (``compute_loss`` calls) between decisions.
        probe_layer: name of a shared ``nn.Linear`` of the model, for gradient-alignment
            features.
        task_names: for log tags (``0..K-1`` by default).
        task_key: the inputs' task-id column.
        task_kinds: each task's kind, ``"regression"``, ``"classification"`` or
            ``"tagging"``, as for :class:`CurriculumSession` (all regression if not
            given: name your classification tasks, so the policy reads their errors as in
            training; the evaluation's example counts go with its losses).
        train_sizes / objective_tasks / seed: as for :class:`CurriculumSession`.
    """

    def __init__(
        self,
        *args: Any,
        controller: Controller,
        num_tasks: int,
        task_sampler: TaskBatchSampler | None = None,
        interval: int = 25,
        probe_layer: str | None = None,
        task_names: Sequence[str] | None = None,
        task_key: str = "task_ids",
        task_kinds: Sequence[str] | None = None,
        train_sizes: Sequence[int] | None = None,
        objective_tasks: Sequence[int] | None = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.task_sampler, self.task_key = task_sampler, task_key
        probe = (
            None if probe_layer is None else GradientProbe(self.model.get_submodule(probe_layer))
        )
        session = CurriculumSession(
            controller,
            num_tasks,
            self._budget(),
            interval,
            train_sizes=train_sizes,
            objective_tasks=objective_tasks,
            seed=seed,
            probe=probe,
            task_kinds=task_kinds,
        )
        self.curriculum = session
        self.driver = DecisionDriver(session, task_sampler, task_names, self._writer)
        self._val_sums: torch.Tensor | None = None  # (2, K) loss sums, counts
        self._own_writer: Any = None
        if task_sampler is not None:
            self.args.ignore_data_skip = True  # the sampler's state resumes the stream
        self.add_callback(_SaveCurriculum(self))

    def _budget(self) -> int:
        """Batches of the whole run (compute_loss calls)."""
        accumulation = self.args.gradient_accumulation_steps
        if self.args.max_steps > 0:
            return self.args.max_steps * accumulation
        if self.task_sampler is None:
            raise ValueError("CurriculumTrainer needs max_steps > 0, or a task_sampler")
        return math.ceil(self.args.num_train_epochs * len(self.task_sampler))

    # ------------------------------------------------------------------ data
    def get_train_dataloader(self) -> DataLoader:
        """Batches from the task sampler (each rank draws its own stream, so the
        accelerator's batch sharding is turned off for it, as for the Trainer's own
        rank-aware samplers)."""
        if self.task_sampler is None:
            return super().get_train_dataloader()
        loader = DataLoader(
            self.train_dataset,
            batch_sampler=self.task_sampler,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
        )
        prepared = self.accelerator.prepare(loader)
        sharded = getattr(prepared, "batch_sampler", None)
        if getattr(sharded, "batch_sampler", None) is self.task_sampler:
            sharded.num_processes, sharded.process_index = 1, 0
        return prepared

    # ------------------------------------------------------------------ loss
    def example_losses(self, model: nn.Module, inputs: dict[str, Any]) -> tuple[torch.Tensor, Any]:
        """(B,) per-example losses and the model's outputs; override when your model
        returns something else than ``outputs["loss"]`` of shape (B,)."""
        outputs = model(**inputs)
        losses = outputs["loss"]
        if losses.dim() != 1:
            raise ValueError(
                f"CurriculumTrainer needs one loss per example, shape (B,); the model returned "
                f"shape {tuple(losses.shape)}. Return reduction='none' losses (mean over each "
                "example's tokens), or override example_losses"
            )
        return losses, outputs

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        task_ids = inputs[self.task_key]
        if model.training and self.curriculum.decision_due:
            # decided at the first batch after the interval, so that an evaluation the
            # Trainer ran in between is already in the decision
            self.log(self.driver.decide(rank0=self.is_world_process_zero()))
        losses, outputs = self.example_losses(model, inputs)
        if model.training:
            loss = self.curriculum.loss(losses, task_ids)
        else:
            self._add_val(losses.detach(), task_ids)
            loss = losses.mean()
        return (loss, outputs) if return_outputs else loss

    def _add_val(self, losses: torch.Tensor, task_ids: torch.Tensor) -> None:
        k = self.curriculum.num_tasks
        ids = task_ids.to(losses.device, torch.long)
        zeros = torch.zeros(k, device=losses.device)
        fresh = torch.stack(
            [
                zeros.index_add(0, ids, losses.float()),
                zeros.index_add(0, ids, torch.ones_like(losses)),
            ]
        )
        self._val_sums = fresh if self._val_sums is None else self._val_sums.to(fresh) + fresh

    def evaluate(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        """The Trainer's evaluation; its per-task mean losses feed the next decision."""
        self._val_sums = None
        metrics = super().evaluate(*args, **kwargs)
        if self._val_sums is not None:
            sums, counts = self._val_sums.cpu()
            # a task absent from this rank's evaluation data: the training losses stand in
            if bool((counts > 0).all()):
                self.driver.fresh_val, self.driver.fresh_counts = sums / counts, counts
        return metrics

    # ------------------------------------------------------------------ state
    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any) -> Any:
        """``Trainer.train``; resuming also restores the session and the sampler."""
        folder = resume_from_checkpoint
        if folder is True:
            folder = get_last_checkpoint(self.args.output_dir)
        if folder:
            path = Path(folder) / CHECKPOINT_FILE
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path} is missing: the checkpoint was not saved by CurriculumTrainer, so "
                    "the curriculum's state cannot be resumed; start a new run instead"
                )
            self.driver.load_state_dict(torch.load(path, weights_only=True))
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def _writer(self) -> ScalarImageWriter:
        from torch.utils.tensorboard import SummaryWriter

        self._own_writer = SummaryWriter(str(Path(self.args.output_dir) / "curriculum"))
        return self._own_writer


class _SaveCurriculum(TrainerCallback):
    """Writes the session and sampler state into each checkpoint folder (rank 0)."""

    def __init__(self, trainer: CurriculumTrainer) -> None:
        self.trainer = trainer

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            with atomic_path(folder / CHECKPOINT_FILE) as tmp:  # never half-written
                torch.save(self.trainer.driver.state_dict(), tmp)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        writer = self.trainer._own_writer
        if writer is not None:
            writer.flush()
