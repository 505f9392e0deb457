"""Single-task references: each task of an instance trained alone with the same budget.

The evaluation protocol compares a multitask run with training each task *alone* under
the same budget: :func:`single_task_reference` produces those numbers (cached on disk);
:mod:`curriculum_rl.scores` turns a run's metrics into Δm% and worst-task changes
against them. This module sits above the runner (it trains).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from curriculum_rl.atomic import json_ready, write_json_atomic
from curriculum_rl.controllers.base import Uniform
from curriculum_rl.runner import run_controller
from curriculum_rl.suites.base import SuiteInstance
from curriculum_rl.trainer import TrainerConfig, resolve_device

CACHE_VERSION = 1
"""Bump when the reference procedure changes, so stale cache files are not reused."""


def single_task_instances(instance: SuiteInstance) -> list[SuiteInstance]:
    """One single-task :class:`SuiteInstance` per task of ``instance`` (same data, body)."""
    return [
        SuiteInstance(
            name=f"{instance.name}/{spec.name}",
            tasks=[dataclasses.replace(spec, auxiliary=False)],
            data=[data],
            body=instance.body,
            input_shape=tuple(instance.input_shape),
            info={**instance.info, "single_task": spec.name},
        )
        for spec, data in zip(instance.tasks, instance.data, strict=True)
    ]


def reference_key(
    instance: SuiteInstance,
    seed: int,
    budget: int,
    interval: int,
    config: TrainerConfig,
) -> str:
    """Hex digest identifying a reference: suite name, instance info, task specs, budget,
    interval, trainer config, seed, and a fingerprint of the data itself (so two
    instances whose ``info`` happens to coincide never share a cache entry)."""
    described = {
        "version": CACHE_VERSION,
        "suite": instance.name,
        "info": instance.info,
        "tasks": [dataclasses.asdict(t) for t in instance.tasks],
        "body": repr(instance.body),
        "budget": budget,
        "interval": interval,
        "config": dataclasses.asdict(config),
        # "auto" means different hardware on different machines, and CPU and GPU kernels
        # round differently: key on the device actually used.
        "device": resolve_device(config.device).type,
        "seed": seed,
    }
    digest = hashlib.sha256(json.dumps(described, sort_keys=True, default=repr).encode())
    for data in instance.data:
        for x, y in data.splits().values():
            digest.update(x.detach().cpu().contiguous().numpy().tobytes())
            digest.update(y.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def single_task_reference(
    instance: SuiteInstance,
    seed: int,
    budget: int,
    interval: int = 25,
    config: TrainerConfig | None = None,
    cache_dir: str | Path | None = None,
) -> dict:
    """Train every task of ``instance`` alone (uniform controller, same budget) and return
    its test metrics and losses.

    The K single-task runs share the instance's body and input shape, so they run as one
    batched trainer call of N=K runs, each with seed ``seed``. With ``cache_dir``, the
    result is stored as ``<cache_dir>/stl-<key>.json`` (see :func:`reference_key`) and a
    rerun with the same arguments reads it back instead of training.

    Returns:
        ``{"key", "suite", "seed", "budget", "interval", "tasks", "higher_is_better",
        "final_test_metric", "final_test_loss", "best_test_metric", "best_test_loss",
        "diverged"}``; the per-task lists follow ``instance.tasks``. ``final_*`` use the
        last parameters, ``best_*`` those at the best validation-probe loss (the two
        checkpoint rules of the evaluation protocol). Non-finite values are ``None``.
    """
    config = config or TrainerConfig()
    key = reference_key(instance, seed, budget, interval, config)
    path = Path(cache_dir) / f"stl-{key}.json" if cache_dir is not None else None
    if path is not None and path.exists():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:  # a damaged cache file: recompute and overwrite it
            pass
    singles = single_task_instances(instance)
    records = run_controller(singles, [seed] * len(singles), Uniform(), budget, interval, config)
    result = {
        "key": key,
        "suite": instance.name,
        "seed": seed,
        "budget": budget,
        "interval": interval,
        "tasks": [t.name for t in instance.tasks],
        "higher_is_better": [t.higher_is_better for t in instance.tasks],
        "diverged": [r.diverged for r in records],
    }
    for field in ("final_test_metric", "final_test_loss", "best_test_metric", "best_test_loss"):
        result[field] = [json_ready(float(getattr(r, field)[0])) for r in records]
    if path is not None:  # atomic: a concurrent reader never sees half a file
        write_json_atomic(path, result)
    return result
