"""What a training run saves: SB3's resumable checkpoint and the safe policy artifact."""

from __future__ import annotations

import json
from pathlib import Path

from curriculum_rl.agents.config import TrainConfig
from curriculum_rl.atomic import atomic_path
from curriculum_rl.controllers.learned.artifact import save_artifact


def export_policy(model, config: TrainConfig, path: str | Path, notes: dict | None = None) -> Path:
    """Write the model's actor as a safe policy artifact (``PATH.json`` + ``PATH.pt``)."""
    return save_artifact(
        path,
        model.policy.actor,
        max_tasks=config.env.max_tasks,
        action=config.env.action,
        training=config.to_dict(),
        notes={"timesteps": int(model.num_timesteps), **(notes or {})},
    )


def save_checkpoint(model, config: TrainConfig, out: Path, wall_time_s: float) -> None:
    """A safe policy artifact of this moment, noting the training wall time so far, then
    SB3's resumable zip; each file is written atomically, so a crash never leaves half a
    file. The artifact first: a ``last.zip`` at T always has its ``policy-T`` beside it,
    where a resume reads the wall time back (:func:`checkpoint_wall_time`)."""
    ckpt = out / "checkpoints"
    notes = {"wall_time_s": wall_time_s}
    export_policy(model, config, ckpt / f"policy-{model.num_timesteps}", notes=notes)
    with atomic_path(ckpt / "last.zip") as tmp:
        model.save(tmp)


def checkpoint_wall_time(out: Path, timesteps: int) -> float:
    """Training wall time up to the checkpoint at ``timesteps`` (what a resumed run adds
    its own time to, so a policy's ``wall_time_s`` is that of the whole run)."""
    return recorded_wall_time(out / "checkpoints" / f"policy-{timesteps}.json")


def recorded_wall_time(policy_json: Path) -> float:
    """The ``wall_time_s`` note of a policy artifact; 0 when absent (a checkpoint from a
    version that did not record it)."""
    try:
        return float(json.loads(policy_json.read_text())["notes"]["wall_time_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def load_model(config: TrainConfig, out: Path, env):
    """The PPO model of the run in ``out`` from its last checkpoint (policy weights,
    optimizer state, timestep counter)."""
    from stable_baselines3 import PPO

    path = out / "checkpoints" / "last.zip"
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume in {out} ({path} is missing)")
    return PPO.load(path, env=env, device=config.train.device)
