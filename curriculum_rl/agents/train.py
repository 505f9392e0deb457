"""PPO training of the meta-controller (``curriculum-rl train``).

A run is configured by a TOML file (``agents/default.toml`` is the shipped one), parsed
into a :class:`~curriculum_rl.agents.config.TrainConfig`. What a run writes under
``--out``::

    config.json            the resolved config (a resumed run reads it back)
    tb/                    TensorBoard: SB3's rollout/ and train/ scalars, inner/ statistics
                           of the inner runs, eval/ held-out gains
    progress-<T>.csv       the same scalars, one file per (re)start at timestep T
    episodes.csv           one row per finished inner run (learning curve)
    eval.csv               one row per held-out evaluation
    checkpoints/last.zip   SB3's own checkpoint (pickle inside): ONLY for ``--resume`` of
                           this run, never for sharing or loading policies
    checkpoints/policy-<T>.{json,pt}   safe policy artifacts along the way
    policy.{json,pt}       the final policy; best.{json,pt}: best held-out gain
    learning_curve.png     episode return and held-out gain over timesteps

Rollouts are collected in this process, or, with ``[train] workers`` W > 1 (``--workers``)
or an ``address``, from W Ray actors that each host the env this process would step (its
``n_envs`` runs and those of ``[[train.mix]]``; :mod:`curriculum_rl.agents.ray_vec_env`;
``pip install 'curriculum-rl[ray]'``); the PPO update and the held-out evaluation stay in
this process.

Interruptions lose no work and mix no runs: a fresh run checkpoints at timestep 0 (so even
one killed at once can be resumed, and the folder is marked as holding a run); the first
Ctrl-C stops at the next decision and saves a checkpoint and the policy; a (re)start at
timestep T first drops the rows that a dead process logged past T (they would be logged
again); ``--resume`` of a finished run changes nothing. Wall time adds up over resumes.
One process at a time may use a folder (:func:`curriculum_rl.atomic.folder_lock`).

Normalisation: observations are already scale-free and clipped by construction, and
SB3's ``VecNormalize`` would standardise each (task slot, feature) cell separately,
which breaks the task-permutation equivariance (slot 8 is mostly padding, slot 1 never
is) and would tie the policy to ``K_max``; so it is not used. Rewards are log-improvements
whose episode returns are O(1) (telescoping to J_start - J_end, typically 1-5), which is
the scale PPO's value loss and advantage normalisation handle well without a running
reward normaliser, and the artifact then needs no normalisation statistics.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.logger import CSVOutputFormat, Logger, TensorBoardOutputFormat
from stable_baselines3.common.vec_env import VecMonitor

from curriculum_rl.agents.callbacks import HeldOutEvalCallback, make_callbacks, stop_on_interrupt
from curriculum_rl.agents.checkpoints import (
    checkpoint_wall_time,
    export_policy,
    load_model,
    recorded_wall_time,
    save_checkpoint,
)
from curriculum_rl.agents.config import TrainConfig
from curriculum_rl.agents.plots import plot_learning_curve
from curriculum_rl.agents.policy import TaskSetPolicy
from curriculum_rl.agents.vec_env import make_worker_env
from curriculum_rl.atomic import atomic_path, folder_lock, write_json_atomic
from curriculum_rl.cluster import import_ray, ray_cluster
from curriculum_rl.controllers.actions import action_transform
from curriculum_rl.controllers.learned.artifact import PolicyArtifact, load_artifact
from curriculum_rl.controllers.learned.network import TaskSetActor


def make_env(config: TrainConfig):
    """The batched training VecEnv (wrapped in ``VecMonitor`` for SB3's episode stats):
    ``[train] n_envs`` runs on ``[env] suite`` and a block of runs per ``[[train.mix]]``
    suite, in this process, or the same in each of ``[train] workers`` Ray actors (which
    needs a Ray connection: :func:`rollout_cluster`)."""
    run = config.train
    blocks = [(run.n_envs, config.env)] + [
        (m.n_envs, replace(config.env, suite=m.suite)) for m in run.mix
    ]
    if run.uses_ray:
        from curriculum_rl.agents.ray_vec_env import RayVecEnv

        return VecMonitor(RayVecEnv(blocks, run.workers, run.torch_threads))
    return VecMonitor(make_worker_env(blocks))


def rollout_cluster(config: TrainConfig) -> AbstractContextManager:
    """The Ray connection the rollout workers need while training runs (a local Ray of
    ``workers`` CPUs, or the cluster at ``address``); nothing without Ray workers."""
    run = config.train
    if not run.uses_ray:
        return nullcontext()
    return ray_cluster("train --workers/--address", run.address or None, run.workers)


def make_model(config: TrainConfig, env):
    """A fresh PPO model with :class:`~curriculum_rl.agents.policy.TaskSetPolicy`, its
    actor taken from ``[train] init_policy`` when one is given (and anchored to it when
    ``[ppo] anchor_kl`` > 0)."""
    model = PPO(
        TaskSetPolicy,
        env,
        policy_kwargs={"net": asdict(config.policy)},
        seed=config.train.seed,
        device=config.train.device,
        verbose=0,
        **config.ppo.sb3_kwargs(),
    )
    start = load_artifact(config.train.init_policy) if config.train.init_policy else None
    if start is not None:
        _load_initial_actor(model, config, start)
    attach_anchor(model, config, start)
    return model


def attach_anchor(model, config: TrainConfig, start: PolicyArtifact | None = None) -> None:
    """With ``[ppo] anchor_kl`` (or ``anchor_kl_columns``) > 0, price KL(initial policy ‖
    policy) in ``model``'s loss, per action column. The anchor is ``start``, else rebuilt
    from the ``init_policy`` file (a resumed run anchors to where the run started, not to
    its last checkpoint), with the start's exploration noise."""
    if not config.ppo.anchored:
        return
    start = start or load_artifact(config.train.init_policy)
    anchor = TaskSetActor(model.policy.actor.config)
    anchor.load_state_dict(start.actor.state_dict())
    with torch.no_grad():
        anchor.log_std.fill_(config.policy.log_std_init)
    prices = config.ppo.anchor_prices(action_transform(config.env.action).columns)
    model.policy.set_anchor(anchor, prices, config.ppo.ent_coef)


def _load_initial_actor(model, config: TrainConfig, artifact: PolicyArtifact) -> None:
    """Copy the actor of ``artifact`` (``[train] init_policy``) into ``model``; the
    exploration noise starts at the config's ``log_std_init`` (a warm start explores
    around the clone)."""
    actor = model.policy.actor
    shape = ("num_features", "action_dim", "hidden", "activation", "ignore_features")
    theirs, mine = (tuple(getattr(c, k) for k in shape) for c in (artifact.network, actor.config))
    if artifact.action != config.env.action or theirs != mine:
        raise ValueError(
            f"[train] init_policy {config.train.init_policy} has action {artifact.action!r} "
            f"and network {dict(zip(shape, theirs, strict=True))}; this run has "
            f"{config.env.action!r} and {dict(zip(shape, mine, strict=True))}: they must match"
        )
    actor.load_state_dict(artifact.actor.state_dict())
    with torch.no_grad():
        actor.log_std.fill_(config.policy.log_std_init)


@dataclass
class TrainResult:
    """What a :func:`train` call produced. ``wall_time_s``: training time of the whole run
    (over resumes); ``trained_now``: timesteps this call trained (0: the run was already
    complete); ``interrupted``: stopped early by Ctrl-C (a checkpoint was saved)."""

    out: Path
    timesteps: int
    wall_time_s: float
    policy: Path
    best: Path | None
    evaluations: list[dict[str, Any]]
    model: Any = field(default=None, repr=False)  # the PPO model (not serialised)
    trained_now: int = 0
    interrupted: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"}
        return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}


def _jsonable(config: TrainConfig) -> dict[str, Any]:
    """The config as it reads back from config.json (tuples become lists)."""
    return json.loads(json.dumps(config.to_dict()))


RESUMABLE_WITH_CHANGES = ("total_timesteps", "workers", "address")
"""``[train]`` keys a resume may change: the length of the run, and how it executes."""


def _check_resume_config(config: TrainConfig, saved: dict[str, Any], out: Path) -> None:
    mine, defaults = _jsonable(config), _jsonable(TrainConfig())
    for section in mine:
        for key, value in mine[section].items():
            if section == "train" and key in RESUMABLE_WITH_CHANGES:
                continue
            # A setting added after the run started was, for that run, its default.
            theirs = saved.get(section, {}).get(key, defaults[section][key])
            if theirs != value:
                raise ValueError(
                    f"--resume continues the run in {out} with its own config, but [{section}] "
                    f"{key} differs ({theirs!r} there, {value!r} here); "
                    "only [train] total_timesteps, workers and address may change; start a "
                    "new --out to change more"
                )


def train(
    config: TrainConfig,
    out: str | Path,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train (or, with ``resume``, continue) a PPO meta-controller; see the module doc.

    Raises:
        ValueError / FileNotFoundError: a fresh run into a folder that already holds one,
            a resume without a checkpoint, a resume with a different config, or another
            process training in the same folder.
    """
    out = Path(out)
    if config.train.uses_ray:  # a missing Ray is an error before any work
        import_ray("train --workers/--address")
    with folder_lock(out, "curriculum-rl train"), rollout_cluster(config):
        return _train(config, out, resume, progress, log)


def _train(
    config: TrainConfig, out: Path, resume: bool, progress: bool, log: Callable[[str], None]
) -> TrainResult:
    if config.train.torch_threads:
        torch.set_num_threads(config.train.torch_threads)
    config_path = out / "config.json"
    if resume:
        if not config_path.is_file():
            raise FileNotFoundError(f"nothing to resume in {out}: {config_path} is missing")
        _check_resume_config(config, json.loads(config_path.read_text()), out)
    elif (out / "checkpoints" / "last.zip").exists():
        raise ValueError(
            f"{out} already holds a training run; pass --resume to continue it, or choose "
            "another --out"
        )
    env = make_env(config)
    try:
        if resume:
            model = load_model(config, out, env)
            attach_anchor(model, config)
        else:
            model = make_model(config, env)
        start = int(model.num_timesteps)
        if resume and start >= config.train.total_timesteps:
            return _already_complete(config, out, model)
        return _learn(config, out, env, model, resume, progress, log)
    finally:
        env.close()


def _learn(
    config: TrainConfig,
    out: Path,
    env: VecMonitor,
    model: PPO,
    resume: bool,
    progress: bool,
    log: Callable[[str], None],
) -> TrainResult:
    """Train from the model's timestep to ``total_timesteps``; save what the module doc
    lists. Stops early, saving the same, after a Ctrl-C."""
    start = int(model.num_timesteps)
    write_json_atomic(out / "config.json", config.to_dict())
    drop_rows_after(out, start)
    wall_before = checkpoint_wall_time(out, start) if resume else 0.0
    if not resume:  # resumable from the first moment, and marks the folder as a run's
        save_checkpoint(model, config, out, 0.0)
    # Fresh instances after a resume: seed the envs from the timestep counter.
    env.seed(config.train.seed + start)
    logger = Logger(
        str(out),
        [
            CSVOutputFormat(str(out / f"progress-{start}.csv")),
            TensorBoardOutputFormat(str(out / "tb")),
        ],
    )
    model.set_logger(logger)
    t0 = time.time()

    def clock() -> float:
        return wall_before + time.time() - t0

    try:
        with stop_on_interrupt(log) as stop:
            callbacks = make_callbacks(
                config, out, stop=stop, clock=clock, progress=progress, log=log
            )
            model.learn(
                config.train.total_timesteps - start,
                callback=CallbackList(callbacks),
                reset_num_timesteps=not resume,
            )
    finally:
        # The returned model may learn again; it must not write to the closed files.
        logger.close()
        model.set_logger(Logger(None, []))
    wall = clock()
    save_checkpoint(model, config, out, wall)
    policy = export_policy(model, config, out / "policy", notes={"wall_time_s": wall})
    _plot(out, log)
    evals = next((cb.history for cb in callbacks if isinstance(cb, HeldOutEvalCallback)), [])
    timesteps = int(model.num_timesteps)
    return TrainResult(
        out, timesteps, wall, policy, _best(out), evals, model, timesteps - start, stop.requested
    )


def _already_complete(config: TrainConfig, out: Path, model: PPO) -> TrainResult:
    """``--resume`` of a run that reached ``total_timesteps``: report it, write nothing
    (no zero wall time over the real one, no empty progress file)."""
    timesteps = int(model.num_timesteps)
    policy = out / "policy.json"
    if not policy.is_file():  # killed between its last checkpoint and the final export
        wall = checkpoint_wall_time(out, timesteps)
        policy = export_policy(model, config, out / "policy", notes={"wall_time_s": wall})
    return TrainResult(
        out, timesteps, recorded_wall_time(policy), policy, _best(out), read_evaluations(out), model
    )


def _best(out: Path) -> Path | None:
    best = out / "best.json"
    return best if best.exists() else None


def _plot(out: Path, log: Callable[[str], None]) -> None:
    try:
        plot_learning_curve(out, out / "learning_curve.png")
    except (OSError, ValueError) as err:
        log(f"could not plot the learning curve: {err}")


def read_evaluations(out: Path) -> list[dict[str, Any]]:
    """The held-out evaluations logged in ``eval.csv`` (numbers as floats, timesteps as
    int), oldest first; ``[]`` when there is none."""
    path = out / "eval.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [
            {k: int(v) if k == "timesteps" else float(v) for k, v in row.items()}
            for row in csv.DictReader(f)
        ]


LOGGED_STEPS = {"episodes.csv": "timesteps", "eval.csv": "timesteps"}
"""Row logs and their timestep column (``progress-<T>.csv``: ``time/total_timesteps``)."""


def drop_rows_after(out: Path, start: int) -> None:
    """Drop what a process that died after its last checkpoint logged past ``start``, the
    timestep this (re)start continues from: those rows would otherwise appear twice (or,
    in a fresh run, come from another run). Progress files of later starts go whole."""
    for name, column in LOGGED_STEPS.items():
        _keep_rows_upto(out / name, column, start)
    for path in out.glob("progress-*.csv"):
        begun = path.stem.removeprefix("progress-")
        if begun.isdigit() and int(begun) >= start:
            path.unlink()
        else:
            _keep_rows_upto(path, "time/total_timesteps", start)


def _keep_rows_upto(path: Path, column: str, start: int) -> None:
    if not path.is_file():
        return
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        rows, names = list(reader), reader.fieldnames
    if not names or column not in names:
        return
    kept = [r for r in rows if r[column] and float(r[column]) <= start]
    if len(kept) == len(rows):
        return
    if not kept:  # the next row written starts the file afresh, header included
        path.unlink()
        return
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        writer.writerows(kept)
