"""The plain multitask loop: a controller drives a batch of runs from start to finish.

This is what ``curriculum-rl run`` and the benchmark execute. Per decision: measure,
let the :class:`~curriculum_rl.loop.DecisionLoop` turn it into the controller's state,
apply the controller's decision, train ``interval`` inner steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from curriculum_rl.controllers.base import Controller, RunContext
from curriculum_rl.controllers.decision import Decision
from curriculum_rl.loop import DecisionLoop, put_in_force
from curriculum_rl.suites.base import SuiteInstance
from curriculum_rl.trainer import BatchedMultitaskTrainer, TrainerConfig
from curriculum_rl.trainer.objective import mean_log_loss
from curriculum_rl.trainer.signals import Signals


@dataclass
class RunRecord:
    """Everything one run produced; ``to_dict`` is JSON-serialisable.

    Curves hold one entry per decision (the first before any training), ``normalisation``
    and ``scale`` too (the decision's loss normalisation alpha, 0 for most controllers,
    and its objective scale, 1 for all but a latch that holds it); ``grad_cos``
    (pairwise task-gradient cosines) and ``cos_update`` feed :mod:`curriculum_rl.diagnostics`.
    ``final_*`` and ``best_*`` are on the full test split, with the final parameters and
    with those at the best validation-probe J (the two checkpoint rules of the evaluation
    protocol).
    ``kinds``, ``test_sizes`` (scored test predictions per task: examples, or tokens for
    tagging) and ``targets`` (the tasks that count in J and in the scores) are what
    :mod:`curriculum_rl.scores` needs besides the metrics.
    """

    suite: str
    controller: str
    seed: int
    tasks: list[str]
    higher_is_better: list[bool]
    kinds: list[str] = field(default_factory=list)
    test_sizes: list[int] = field(default_factory=list)
    targets: list[bool] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    j_curve: list[float] = field(default_factory=list)
    val_loss_curve: list[list[float]] = field(default_factory=list)
    train_loss_curve: list[list[float]] = field(default_factory=list)
    weights: list[list[float]] = field(default_factory=list)
    sampling: list[list[float]] = field(default_factory=list)
    normalisation: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)
    grad_cos: list[list[list[float]]] = field(default_factory=list)
    cos_update: list[list[float]] = field(default_factory=list)
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


def run_controller(
    instances: Sequence[SuiteInstance],
    seeds: Sequence[int],
    controller: Controller,
    budget: int = 1500,
    interval: int = 25,
    config: TrainerConfig | None = None,
    objective_tasks: Sequence[Sequence[int] | None] | None = None,
    on_decision: Callable[[int, int], None] | None = None,
    max_tasks: int | None = None,
    out_max: int = 1,
) -> list[RunRecord]:
    """Train one run per (instance, seed) under ``controller``; return their records.

    Args:
        budget: inner optimisation steps per run. interval: inner steps per decision.
        objective_tasks: per run, the tasks that define J (default: the instance's
            target tasks).
        on_decision: called as ``on_decision(done, total)`` after each decision
            (progress bars).
        max_tasks / out_max: pad the trainer's task slots and head widths (as the
            environment does, which sizes them for the whole training distribution);
            by default they fit the instances.
    """
    if budget < 1 or interval < 1:
        raise ValueError(f"budget and interval must be >= 1, got {budget} and {interval}")
    trainer = BatchedMultitaskTrainer(
        instances, seeds, config, max_tasks, objective_tasks=objective_tasks, out_max=out_max
    )
    loop = DecisionLoop(trainer.mask, trainer.sizes, budget)
    context = RunContext(trainer.mask.clone(), trainer.sizes.clone(), budget, interval, list(seeds))
    controller.reset(context)
    records = [
        _new_record(inst, controller.name, seed, trainer.objective[run, : inst.num_tasks])
        for run, (inst, seed) in enumerate(zip(instances, seeds, strict=True))
    ]
    total = context.num_decisions
    for done in range(total + 1):
        state = loop.observe(trainer.measure())
        if done < total:
            decision = loop.decide(controller)
            put_in_force(trainer, decision)
        _append(records, state, loop.previous)
        if done < total:
            trainer.train(min(interval, budget - done * interval), controller.hook)
            if on_decision is not None:
                on_decision(done + 1, total)
    _finish(records, trainer)
    return records


def _new_record(
    instance: SuiteInstance, controller: str, seed: int, targets: torch.Tensor
) -> RunRecord:
    return RunRecord(
        suite=instance.name,
        controller=controller,
        seed=seed,
        tasks=[t.name for t in instance.tasks],
        higher_is_better=[t.higher_is_better for t in instance.tasks],
        kinds=[t.kind for t in instance.tasks],
        test_sizes=[
            _scored_predictions(t.kind, d.y_test)
            for t, d in zip(instance.tasks, instance.data, strict=True)
        ],
        targets=targets.tolist(),
        info=dict(instance.info),
    )


def _scored_predictions(kind: str, targets: torch.Tensor) -> int:
    """Test predictions a task's metric averages over: one per example, one per token
    for tagging."""
    return int(targets.numel()) if kind == "tagging" else len(targets)


def _append(records: list[RunRecord], signals: Signals, decision: Decision) -> None:
    for run, rec in enumerate(records):
        k = len(rec.tasks)
        rec.steps.append(int(signals.steps[run]))
        rec.j_curve.append(float(signals.j[run]))
        rec.val_loss_curve.append(signals.val_loss[run, :k].tolist())
        rec.train_loss_curve.append(signals.train_loss[run, :k].tolist())
        rec.weights.append(decision.weights[run, :k].tolist())
        rec.sampling.append(decision.sampling[run, :k].tolist())
        rec.normalisation.append(float(decision.normalisation[run]))
        rec.scale.append(float(decision.scale[run]))
        rec.grad_cos.append(signals.grad_cos[run, :k, :k].tolist())
        rec.cos_update.append(signals.cos_update[run, :k].tolist())


def _finish(records, trainer: BatchedMultitaskTrainer) -> None:
    for checkpoint in ("final", "best"):
        losses, metrics = trainer.evaluate("test", checkpoint)
        js = mean_log_loss(losses, trainer.objective)
        for run, rec in enumerate(records):
            k = len(rec.tasks)
            setattr(rec, f"{checkpoint}_test_loss", losses[run, :k].tolist())
            setattr(rec, f"{checkpoint}_test_metric", metrics[run, :k].tolist())
            setattr(rec, f"{checkpoint}_test_j", float(js[run]))
    for run, rec in enumerate(records):
        rec.diverged = bool(trainer.diverged[run])
