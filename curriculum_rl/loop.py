"""The decision loop: measurement -> signals -> state -> controller -> decision.

:class:`DecisionLoop` is the one place that turns what a trainer measured into what a
controller reads. It owns, for N runs, the :class:`~curriculum_rl.trainer.signals.SignalTracker`
(the short history behind learning progress), the decision in force, and the latest
:class:`~curriculum_rl.controllers.base.DecisionState` (whose ``observation`` the learned
policy reads). The runner (:func:`curriculum_rl.runner.run_controller`), the Gymnasium
environments and a user's own loop (:class:`curriculum_rl.session.CurriculumSession`)
all drive one of these, so a policy sees at inference exactly the observation it was
trained on (tested in tests/test_loop.py).

Per decision::

    state = loop.observe(trainer.measure())   # fold in the measurement
    decision = loop.decide(controller)         # or loop.commit(decision_from_actions)
    put_in_force(trainer, decision)
    trainer.train(interval)
"""

from __future__ import annotations

import torch

from curriculum_rl.controllers.base import Controller, DecisionState
from curriculum_rl.controllers.decision import Decision, uniform_decision
from curriculum_rl.trainer import BatchedMultitaskTrainer, Measurement
from curriculum_rl.trainer.signals import Signals, SignalTracker

RunSelection = torch.Tensor | list[int]


def put_in_force(trainer: BatchedMultitaskTrainer, decision: Decision) -> None:
    """Give ``trainer`` every field of ``decision`` for its next steps (the one place a
    decision reaches a trainer's schedule)."""
    trainer.set_schedule(
        decision.weights, decision.sampling, decision.normalisation, decision.scale
    )


class DecisionLoop:
    """Signals, decision in force and state of N runs with K task slots.

    Args:
        mask: (N, K) valid tasks. train_sizes: (N, K) training examples per task.
        budget: inner optimisation steps of each run (an int for all, or (N,)).
    """

    def __init__(
        self,
        mask: torch.Tensor,
        train_sizes: torch.Tensor,
        budget: int | torch.Tensor,
    ) -> None:
        num_runs, max_tasks = mask.shape
        self.device = mask.device
        self.tracker = SignalTracker(num_runs, max_tasks, device=self.device)
        self.mask = mask.clone()
        self.train_sizes = train_sizes.float().clone()
        self.budget = (
            torch.as_tensor(budget, dtype=torch.float32, device=self.device)
            .expand(num_runs)
            .clone()
        )
        self.previous = uniform_decision(self.mask)
        self.state: DecisionState | None = None

    @property
    def num_runs(self) -> int:
        return self.mask.shape[0]

    def observe(self, measurement: Measurement, runs: RunSelection | None = None) -> DecisionState:
        """Fold in a measurement and return the new state.

        ``runs`` limits which runs advance (all by default): after restarting some runs,
        the environment re-measures every run but only the restarted ones may count it;
        the others keep their state as it was.
        """
        selected = None if runs is None else self._selection(runs)
        signals = self.tracker.update(measurement, self.budget, self.train_sizes, runs=selected)
        if selected is not None and self.state is not None and not bool(selected.all()):
            signals = _merge(self.state, signals, selected)
        self.state = DecisionState(**_fields(signals), previous=self.previous)
        return self.state

    def decide(self, controller: Controller) -> Decision:
        """Ask ``controller`` for the next decision on the current state and put it in
        force."""
        if self.state is None:
            raise RuntimeError("observe() a measurement before asking for a decision")
        return self.commit(controller.decide(self.state))

    def commit(self, decision: Decision) -> Decision:
        """Put ``decision`` in force: the next state reports it as ``previous``."""
        shape = tuple(self.mask.shape)
        wanted = {
            "weights": shape,
            "sampling": shape,
            "normalisation": shape[:1],
            "scale": shape[:1],
        }
        for name, want in wanted.items():
            got = tuple(getattr(decision, name).shape)
            if got != want:
                raise ValueError(f"decision {name} must have shape {want}, got {got}")
        self.previous = decision
        return decision

    def restart(
        self,
        runs: RunSelection,
        mask: torch.Tensor,
        train_sizes: torch.Tensor,
        budget: int | torch.Tensor | None = None,
    ) -> None:
        """``runs`` start a new episode: their history is forgotten and the decision in
        force becomes uniform over their (new) tasks; ``mask`` and ``train_sizes`` are the
        full (N, K) tables after the restart (other runs' rows unchanged)."""
        selected = self._selection(runs)
        self.tracker.reset_runs(selected)
        self.mask = mask.clone()
        self.train_sizes = train_sizes.float().clone()
        if budget is not None:
            new_budget = torch.as_tensor(budget, dtype=torch.float32, device=self.device)
            self.budget = torch.where(selected, new_budget, self.budget)
        self.previous = uniform_decision(self.mask).where(selected, self.previous)

    def _selection(self, runs: RunSelection) -> torch.Tensor:
        if isinstance(runs, torch.Tensor) and runs.dtype == torch.bool:
            return runs.to(self.device)
        selected = torch.zeros(self.num_runs, dtype=torch.bool, device=self.device)
        selected[torch.as_tensor(runs, dtype=torch.long, device=self.device)] = True
        return selected


def _fields(signals: Signals) -> dict[str, torch.Tensor]:
    return {name: getattr(signals, name) for name in Signals.__dataclass_fields__}


def _merge(old: Signals, new: Signals, runs: torch.Tensor) -> Signals:
    """Signals with the rows of ``runs`` from ``new`` and the others from ``old``."""
    merged = {}
    for name, value in _fields(new).items():
        keep = runs.view((-1,) + (1,) * (value.dim() - 1))
        merged[name] = torch.where(keep, value, getattr(old, name))
    return Signals(**merged)
