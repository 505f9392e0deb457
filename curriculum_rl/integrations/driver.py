"""What every framework integration does at a decision, in one place.

Lightning's callback and the Hugging Face trainer differ in where they hook in, not in
what they do when a decision is due: ask the session (with fresh validation losses when
there are some), steer the task sampler, hand the framework the weights and sampling to
log, and stream the diagnostics (:class:`~curriculum_rl.diagnostics.DecisionLog`) to
TensorBoard on rank 0. Their checkpoints hold the session and the sampler together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from curriculum_rl.diagnostics import DecisionLog, ScalarImageWriter
from curriculum_rl.integrations.sampler import TaskBatchSampler
from curriculum_rl.session import CurriculumSession

PREFIX = "curriculum/"


class DecisionDriver:
    """Decisions of one session inside a framework's training loop.

    Args:
        session: the session the model's loss goes through.
        sampler: the training batches' sampler, if it is a :class:`TaskBatchSampler`.
        task_names: for log tags; ``0..K-1`` by default.
        writer: makes the TensorBoard writer for the diagnostics, called once on rank 0
            at the first decision (``None``: no diagnostics).
    """

    def __init__(
        self,
        session: CurriculumSession,
        sampler: TaskBatchSampler | None = None,
        task_names: Sequence[str] | None = None,
        writer: Callable[[], ScalarImageWriter] | None = None,
    ) -> None:
        k = session.num_tasks
        names = [str(i) for i in range(k)] if task_names is None else list(task_names)
        if len(names) != k:
            raise ValueError(f"{len(names)} task names for {k} tasks")
        if sampler is not None and sampler.num_tasks != k:
            raise ValueError(f"the task sampler has {sampler.num_tasks} tasks, the session {k}")
        self.session, self.sampler, self.task_names = session, sampler, names
        self._make_writer = writer
        self._log: DecisionLog | None = None
        self.fresh_val: torch.Tensor | None = None  # (K,) from a validation not yet used
        self.fresh_counts: torch.Tensor | None = None  # (K,) its examples, when known

    def decide(self, rank0: bool = True) -> dict:
        """Take the due decision, with :attr:`fresh_val` (and :attr:`fresh_counts`, the
        examples behind it, when the framework counts them) if a validation ran since the
        last one; return ``{tag: value}`` for the framework's logger."""
        val_losses, self.fresh_val = self.fresh_val, None
        val_counts, self.fresh_counts = self.fresh_counts, None
        weights, sampling = self.session.update(val_losses=val_losses, val_counts=val_counts)
        if self.sampler is not None:
            self.sampler.set_probabilities(sampling)
        if rank0:
            self._diagnose(weights, sampling)
        logs = {}
        for name, w, p in zip(self.task_names, weights.tolist(), sampling.tolist(), strict=True):
            logs[f"{PREFIX}weight/{name}"] = w
            logs[f"{PREFIX}sampling/{name}"] = p
        return logs

    def _diagnose(self, weights: torch.Tensor, sampling: torch.Tensor) -> None:
        if self._make_writer is None:
            return
        if self._log is None:
            self._log = DecisionLog(self._make_writer(), self.task_names, PREFIX)
        state = self.session.state
        self._log.write(
            int(state.steps[0]),
            weights=weights.numpy(),
            sampling=sampling.numpy(),
            val_loss=state.val_loss[0].numpy(),
            train_loss=state.train_loss[0].numpy(),
            grad_cos=state.grad_cos[0].numpy(),
            cos_update=state.cos_update[0].numpy(),
            normalisation=float(self.session.loop.previous.normalisation[0]),
            scale=float(self.session.loop.previous.scale[0]),
        )

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The session's state, the sampler's and an unused validation's losses, as one
        dict of tensors."""
        state = {f"session.{k}": v for k, v in self.session.state_dict().items()}
        if self.fresh_val is not None:
            state["fresh_val"] = self.fresh_val.detach().cpu().clone()
        if self.fresh_counts is not None:
            state["fresh_counts"] = self.fresh_counts.detach().cpu().clone()
        if self.sampler is not None:
            # every training batch goes through session.loss() once: the batches the loader
            # drew beyond them are drawn again after a resume
            sampler_state = self.sampler.state_dict(consumed=self.session.steps)
            state.update({f"sampler.{k}": v for k, v in sampler_state.items()})
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.session.load_state_dict(_part(state, "session."))
        self.fresh_val = state.get("fresh_val")
        self.fresh_counts = state.get("fresh_counts")
        sampler_state = _part(state, "sampler.")
        if self.sampler is not None and sampler_state:
            self.sampler.load_state_dict(sampler_state)


def _part(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
