"""The Gymnasium environment around the batched trainer (the batched stable-baselines3
``VecEnv`` over the same decision core is :mod:`curriculum_rl.agents.vec_env`)."""

from curriculum_rl import ENV_ID  # registered with Gymnasium by the package itself
from curriculum_rl.env.core import CurriculumCore, EnvConfig
from curriculum_rl.env.single import CurriculumEnv, env_config, make_spaces

__all__ = [
    "ENV_ID",
    "CurriculumCore",
    "CurriculumEnv",
    "EnvConfig",
    "env_config",
    "make_spaces",
]
