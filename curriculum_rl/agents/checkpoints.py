"""What a training run saves: SB3's resumable checkpoint and the safe policy artifact."""

from __future__ import annotations

from pathlib import Path

from curriculum_rl.agents.config import TrainConfig
from curriculum_rl.controllers.learned.artifact import save_artifact


def export_policy(model, config: TrainConfig, path: str | Path, notes: dict | None = None) -> Path:
    """Write the model's actor as a safe policy artifact (``PATH.json`` + ``PATH.pt``)."""
    return save_artifact(
        path,
        model.policy.actor,
        max_tasks=config.env.max_tasks,
        training=config.to_dict(),
        notes={"timesteps": int(model.num_timesteps), **(notes or {})},
    )


def save_checkpoint(model, config: TrainConfig, out: Path) -> None:
    """SB3's resumable zip (written then renamed, so a crash never leaves half a file) and
    a safe policy artifact of the same moment."""
    ckpt = out / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    tmp = ckpt / "last.tmp.zip"
    model.save(tmp)
    tmp.replace(ckpt / "last.zip")
    export_policy(model, config, ckpt / f"policy-{model.num_timesteps}")


def load_model(config: TrainConfig, out: Path, env):
    """The PPO model of the run in ``out`` from its last checkpoint (policy weights,
    optimizer state, timestep counter)."""
    from stable_baselines3 import PPO

    path = out / "checkpoints" / "last.zip"
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume in {out} ({path} is missing)")
    return PPO.load(path, env=env, device=config.train.device)
