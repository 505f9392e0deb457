"""Gymnasium and stable-baselines3 environments around the batched trainer."""

import gymnasium as gym

from curriculum_rl.env.core import CurriculumCore, EnvConfig
from curriculum_rl.env.single import CurriculumEnv, env_config, make_spaces
from curriculum_rl.env.vec import BatchedCurriculumVecEnv

ENV_ID = "curriculum_rl/Multitask-v0"

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="curriculum_rl.env.single:CurriculumEnv")

__all__ = [
    "ENV_ID",
    "BatchedCurriculumVecEnv",
    "CurriculumCore",
    "CurriculumEnv",
    "EnvConfig",
    "env_config",
    "make_spaces",
]
