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

Normalisation: observations are already scale-free and clipped by construction, and
SB3's ``VecNormalize`` would standardise each (task slot, feature) cell separately,
which breaks the task-permutation equivariance (slot 8 is mostly padding, slot 1 never
is) and would tie the policy to ``K_max``; so it is not used. Rewards are log-improvements
whose episode returns are O(1) (telescoping to J_start - J_end, typically 1-5), which is
the scale PPO's value loss and advantage normalisation handle well without a running
reward normaliser, and the artifact then needs no normalisation statistics.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.logger import CSVOutputFormat, Logger, TensorBoardOutputFormat
from stable_baselines3.common.vec_env import VecMonitor

from curriculum_rl.agents.callbacks import HeldOutEvalCallback, make_callbacks
from curriculum_rl.agents.checkpoints import export_policy, load_model, save_checkpoint
from curriculum_rl.agents.config import TrainConfig
from curriculum_rl.agents.plots import plot_learning_curve
from curriculum_rl.agents.policy import TaskSetPolicy
from curriculum_rl.agents.vec_env import BatchedCurriculumVecEnv


def make_env(config: TrainConfig):
    """The batched training VecEnv (wrapped in ``VecMonitor`` for SB3's episode stats)."""
    return VecMonitor(BatchedCurriculumVecEnv(config.train.n_envs, config=config.env))


def make_model(config: TrainConfig, env):
    """A fresh PPO model with :class:`~curriculum_rl.agents.policy.TaskSetPolicy`."""
    return PPO(
        TaskSetPolicy,
        env,
        policy_kwargs={"net": asdict(config.policy)},
        seed=config.train.seed,
        device=config.train.device,
        verbose=0,
        **config.ppo.sb3_kwargs(),
    )


@dataclass
class TrainResult:
    """What a finished :func:`train` call produced."""

    out: Path
    timesteps: int
    wall_time_s: float
    policy: Path
    best: Path | None
    evaluations: list[dict[str, Any]]
    model: Any = field(default=None, repr=False)  # the PPO model (not serialised)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"}
        return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}


def _jsonable(config: TrainConfig) -> dict[str, Any]:
    """The config as it reads back from config.json (tuples become lists)."""
    return json.loads(json.dumps(config.to_dict()))


def _check_resume_config(config: TrainConfig, saved: dict[str, Any], out: Path) -> None:
    mine = _jsonable(config)
    for section in mine:
        for key, value in mine[section].items():
            if section == "train" and key == "total_timesteps":
                continue
            if saved.get(section, {}).get(key) != value:
                raise ValueError(
                    f"--resume continues the run in {out} with its own config, but [{section}] "
                    f"{key} differs ({saved.get(section, {}).get(key)!r} there, {value!r} here); "
                    "only [train] total_timesteps may change; start a new --out to change more"
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
            a resume without a checkpoint, or a resume with a different config.
    """
    out = Path(out)
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
    out.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(config.to_dict(), indent=1))

    env = make_env(config)
    model = load_model(config, out, env) if resume else make_model(config, env)
    start = int(model.num_timesteps)
    # Fresh instances after a resume: seed the envs from the timestep counter.
    env.seed(config.train.seed + start)
    model.set_logger(
        Logger(
            str(out),
            [
                CSVOutputFormat(str(out / f"progress-{start}.csv")),
                TensorBoardOutputFormat(str(out / "tb")),
            ],
        )
    )
    callbacks = make_callbacks(config, out, progress, log)
    remaining = max(0, config.train.total_timesteps - start)
    t0 = time.time()
    if remaining:
        model.learn(remaining, callback=CallbackList(callbacks), reset_num_timesteps=not resume)
    wall = time.time() - t0
    save_checkpoint(model, config, out)
    policy = export_policy(model, config, out / "policy", notes={"wall_time_s": wall})
    env.close()
    try:
        plot_learning_curve(out, out / "learning_curve.png")
    except (OSError, ValueError) as err:
        log(f"could not plot the learning curve: {err}")
    best = out / "best.json"
    evals = next((cb.history for cb in callbacks if isinstance(cb, HeldOutEvalCallback)), [])
    return TrainResult(
        out, int(model.num_timesteps), wall, policy, best if best.exists() else None, evals, model
    )
