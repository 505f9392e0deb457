"""The Gymnasium environment around the batched trainer (the batched stable-baselines3
``VecEnv`` over the same decision core is :mod:`curriculum_rl.agents.vec_env`)."""

import gymnasium as gym

from curriculum_rl.env.core import CurriculumCore, EnvConfig
from curriculum_rl.env.single import CurriculumEnv, env_config, make_spaces

ENV_ID = "curriculum_rl/Multitask-v0"

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="curriculum_rl.env.single:CurriculumEnv")

__all__ = [
    "ENV_ID",
    "CurriculumCore",
    "CurriculumEnv",
    "EnvConfig",
    "env_config",
    "make_spaces",
]
