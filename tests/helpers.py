"""Shared test helpers: signals made by the real tracker, so no test lists Signals' fields;
controllers by name, with ``learned`` a fixed random policy."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from types import ModuleType

import torch

from curriculum_rl.controllers import Controller, make_controller
from curriculum_rl.controllers.learned.controller import LearnedController
from curriculum_rl.controllers.learned.network import NetworkConfig, TaskSetActor, init_weights
from curriculum_rl.suites import Suite
from curriculum_rl.trainer import BatchedMultitaskTrainer, Measurement, TrainerConfig, mean_log_loss
from curriculum_rl.trainer.signals import Signals, SignalTracker

# Plain SGD steps: a run's parameter change is its objective's gradient times lr, so tests
# compare a decision's steps with an objective written out by autograd.
SGD = TrainerConfig(
    batch_size=32, proj_dim=16, val_probe=16, device="cpu", optimizer="sgd", lr=0.05
)

# The root losses and the loss normalisation each must apply, written here rather than read
# from the package so that a changed exponent fails its tests.
ROOT_LOSSES = {"sqrt-loss": 0.5, "fourth-root-loss": 0.75}


def make_signals(
    mask: torch.Tensor, train_sizes: torch.Tensor | None = None, **values: torch.Tensor
) -> Signals:
    """Neutral signals (losses 1, orthonormal task gradients, no progress) of a run batch
    with valid tasks ``mask``, from a fresh :class:`SignalTracker`; ``values`` replace
    fields afterwards."""
    n, k = mask.shape
    ones = torch.ones(n, k)
    measurement = Measurement(
        train_loss=ones,
        val_loss=ones,
        grad_gram=torch.eye(k).expand(n, k, k).clone(),
        combined=mask.float(),
        mask=mask,
        objective=mask,
        diverged=torch.zeros(n, dtype=torch.bool),
        steps=torch.zeros(n, dtype=torch.long),
        j=mean_log_loss(ones, mask),
    )
    sizes = torch.ones(n, k) if train_sizes is None else train_sizes
    signals = SignalTracker(n, k).update(measurement, 100, sizes)
    return dataclasses.replace(signals, **values)


def with_gradients(signals: Signals, gradients: torch.Tensor, **values) -> Signals:
    """``signals`` whose per-task gradients on the last shared layer are ``gradients``
    (N, K, D): their norms and pairwise cosines (a zero gradient has cosine 0 with all);
    ``values`` replace further fields."""
    norm = gradients.norm(dim=-1)
    unit = gradients / norm.clamp_min(1e-12)[..., None]
    return dataclasses.replace(
        signals, grad_norm=norm, grad_cos=unit @ unit.transpose(1, 2), **values
    )


def make_test_controller(name: str) -> Controller:
    """A fresh controller; ``learned`` is a randomly initialised policy (fixed seed);
    ``gm-fallback-half`` is v8 with its ``gm-fallback`` switch held at 0.5 (half of the
    way to ``geometric-mean``: a loss normalisation between 0 and 1)."""
    if name == "learned":
        torch.manual_seed(0)
        actor = TaskSetActor(NetworkConfig(action_init_gain=1.0))
        init_weights(actor)
        return LearnedController(actor, 8)
    if name == "gm-fallback-half":
        from curriculum_rl.agents.switch_imitation import SWITCHES, switched_rules
        from curriculum_rl.controllers.learned import load_artifact

        (half,) = switched_rules(load_artifact("agents/v8.json"), SWITCHES["gm-fallback"], [0.5])
        return half
    return make_controller(name)


def record_run_seeds(monkeypatch) -> list[list[int]]:
    """Patch ``runner.run_controller`` to record the seeds of every call (the runs actually
    computed) and return that list, filled as the test goes on."""
    from curriculum_rl import runner

    calls: list[list[int]] = []
    real = runner.run_controller

    def counting(instances, seeds, *args, **kwargs):
        calls.append(list(seeds))
        return real(instances, seeds, *args, **kwargs)

    monkeypatch.setattr(runner, "run_controller", counting)
    return calls


def assert_family_trains_in_one_batch(family: Suite, max_tasks: int, seeds=(0, 1, 2)) -> None:
    """Instances of a procedural family (tasks varying by seed) train side by side in one
    trainer sized from ``describe()``, with finite validation losses."""
    trainer = BatchedMultitaskTrainer(
        [family.sample(s) for s in seeds],
        list(seeds),
        TrainerConfig(batch_size=16, proj_dim=8, val_probe=16, device="cpu"),
        max_tasks=max_tasks,
        out_max=max(t.out_dim for t in family.describe()),
    )
    trainer.train(5)
    measured = trainer.measure()
    assert torch.isfinite(measured.val_loss[measured.mask]).all()


def benchmark_script(name: str) -> ModuleType:
    """The module of ``benchmarks/<name>.py`` (the scripts are not a package)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
