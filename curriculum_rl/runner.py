"""The plain multitask loop: a controller drives a batch of runs from start to finish.

This is what ``curriculum-rl run`` and the benchmark execute, and the reference loop
that the environment's overhead is measured against. Per decision: train ``interval``
inner steps, measure, update the signals, ask the controller, apply its decision.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from curriculum_rl.controllers.base import Controller, Decision, RunContext, uniform_decision
from curriculum_rl.suites.base import SuiteInstance
from curriculum_rl.trainer import BatchedMultitaskTrainer, TrainerConfig
from curriculum_rl.trainer.signals import SignalTracker


@dataclass
class RunRecord:
    """Everything one run produced; ``to_dict`` is JSON-serialisable.

    Curves hold one entry per decision (the first before any training). ``final_*`` and
    ``best_*`` are on the full test split, with the final parameters and with those at the
    best validation-probe J (the two checkpoint rules of the evaluation protocol).
    """

    suite: str
    controller: str
    seed: int
    tasks: list[str]
    higher_is_better: list[bool]
    steps: list[int] = field(default_factory=list)
    j_curve: list[float] = field(default_factory=list)
    val_loss_curve: list[list[float]] = field(default_factory=list)
    train_loss_curve: list[list[float]] = field(default_factory=list)
    weights: list[list[float]] = field(default_factory=list)
    sampling: list[list[float]] = field(default_factory=list)
    final_test_loss: list[float] = field(default_factory=list)
    final_test_metric: list[float] = field(default_factory=list)
    best_test_loss: list[float] = field(default_factory=list)
    best_test_metric: list[float] = field(default_factory=list)
    final_test_j: float = math.nan
    best_test_j: float = math.nan
    diverged: bool = False
    info: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {k: _jsonable(v) for k, v in self.__dict__.items()}


def _jsonable(value):
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def split_j(losses: torch.Tensor, objective: torch.Tensor) -> torch.Tensor:
    """J on a split: mean over objective tasks of log loss, per run."""
    logs = losses.clamp_min(1e-12).log().nan_to_num(math.inf)
    return (logs * objective).nan_to_num(0.0).sum(1) / objective.sum(1).clamp_min(1)


def run_controller(
    instances: Sequence[SuiteInstance],
    seeds: Sequence[int],
    controller: Controller,
    budget: int = 1500,
    interval: int = 25,
    config: TrainerConfig | None = None,
    objective_tasks: Sequence[Sequence[int] | None] | None = None,
    on_decision: Callable[[int, int], None] | None = None,
) -> list[RunRecord]:
    """Train one run per (instance, seed) under ``controller``; return their records.

    Args:
        budget: inner optimisation steps per run. interval: inner steps per decision.
        on_decision: called as ``on_decision(done, total)`` after each decision
            (progress bars).
    """
    if budget < 1 or interval < 1:
        raise ValueError(f"budget and interval must be >= 1, got {budget} and {interval}")
    trainer = BatchedMultitaskTrainer(instances, seeds, config, objective_tasks=objective_tasks)
    tracker = SignalTracker(trainer.num_runs, trainer.max_tasks, device=trainer.device)
    context = RunContext(trainer.mask.clone(), trainer.sizes.clone(), budget, interval, list(seeds))
    controller.reset(context)
    records = [
        _new_record(inst, controller.name, seed)
        for inst, seed in zip(instances, seeds, strict=True)
    ]
    decision = uniform_decision(trainer.mask)
    total = context.num_decisions
    for done in range(total + 1):
        signals = tracker.update(trainer.measure(), budget, trainer.sizes)
        if done < total:
            decision = controller.decide(signals)
            trainer.set_schedule(decision.weights, decision.sampling)
        _append(records, trainer, signals, decision)
        if done < total:
            trainer.train(min(interval, budget - done * interval), controller.hook)
            if on_decision is not None:
                on_decision(done + 1, total)
    _finish(records, trainer)
    return records


def _new_record(instance: SuiteInstance, controller: str, seed: int) -> RunRecord:
    return RunRecord(
        suite=instance.name,
        controller=controller,
        seed=seed,
        tasks=[t.name for t in instance.tasks],
        higher_is_better=[t.higher_is_better for t in instance.tasks],
        info=dict(instance.info),
    )


def _append(records, trainer, signals, decision: Decision) -> None:
    for run, rec in enumerate(records):
        k = len(rec.tasks)
        rec.steps.append(int(signals.steps[run]))
        rec.j_curve.append(float(signals.j[run]))
        rec.val_loss_curve.append(signals.val_loss[run, :k].tolist())
        rec.train_loss_curve.append(signals.train_loss[run, :k].tolist())
        rec.weights.append(decision.weights[run, :k].tolist())
        rec.sampling.append(decision.sampling[run, :k].tolist())


def _finish(records, trainer: BatchedMultitaskTrainer) -> None:
    for checkpoint in ("final", "best"):
        losses, metrics = trainer.evaluate("test", checkpoint)
        js = split_j(losses, trainer.objective)
        for run, rec in enumerate(records):
            k = len(rec.tasks)
            setattr(rec, f"{checkpoint}_test_loss", losses[run, :k].tolist())
            setattr(rec, f"{checkpoint}_test_metric", metrics[run, :k].tolist())
            setattr(rec, f"{checkpoint}_test_j", float(js[run]))
    for run, rec in enumerate(records):
        rec.diverged = bool(trainer.diverged[run])
