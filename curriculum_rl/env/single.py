"""``CurriculumEnv``: one multitask run as a Gymnasium environment.

Registered as ``curriculum_rl/Multitask-v0``. Observation: (K_max, F) float32 in
[-10, 10] (see :mod:`curriculum_rl.controllers.observation`); action: (K_max, 2) in
[-1, 1] (see :mod:`curriculum_rl.controllers.actions`); reward: decrease of J per
decision. An episode is one whole run on a freshly sampled suite instance.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from curriculum_rl.controllers.observation import OBS_CLIP
from curriculum_rl.env.core import CurriculumCore, EnvConfig
from curriculum_rl.typed_config import build_dataclass


def make_spaces(config: EnvConfig) -> tuple[gym.spaces.Box, gym.spaces.Box]:
    """The observation and action spaces of an env with this config."""
    obs = gym.spaces.Box(-OBS_CLIP, OBS_CLIP, shape=config.obs_shape, dtype=np.float32)
    act = gym.spaces.Box(-1.0, 1.0, shape=config.action_shape, dtype=np.float32)
    return obs, act


def env_config(config: EnvConfig | None = None, **kwargs: Any) -> EnvConfig:
    """The :class:`EnvConfig` of ``gymnasium.make`` keyword arguments (its field names;
    ``trainer`` may be a dict), or ``config`` itself. Unknown names and wrong types raise
    ``ValueError`` naming them."""
    if config is not None:
        if kwargs:
            raise ValueError(f"give either config= or keyword arguments, not both ({kwargs})")
        return config
    return build_dataclass(EnvConfig, kwargs, "env")


class CurriculumEnv(gym.Env):
    """One multitask training run, paced by the agent one decision at a time."""

    metadata: ClassVar[dict] = {"render_modes": []}

    def __init__(self, **kwargs: Any) -> None:
        """Keyword arguments: the fields of :class:`~curriculum_rl.env.EnvConfig` (suite,
        budget, interval, max_tasks, divergence_penalty, trainer, emphasis_cost), or
        ``config=EnvConfig(...)``."""
        super().__init__()
        self.config = env_config(**kwargs)
        self.observation_space, self.action_space = make_spaces(self.config)
        self._core = CurriculumCore(self.config, num_runs=1)
        self._started = False

    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None or not self._started:
            # The run's own stream, derived from gymnasium's, so that reset(seed=s)
            # replays the same episodes in this env and in a VecEnv slot seeded s.
            self._core.seed(0, seed if seed is not None else int(self.np_random.integers(2**31)))
            self._started = True
        obs = self._core.reset_all()[0]
        return obs, {"num_tasks": int(self._core.trainer.mask[0].sum())}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._core.trainer is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action, dtype=np.float32)
        if action.shape != self.action_space.shape:
            raise ValueError(
                f"action must have shape {self.action_space.shape}, got {action.shape}"
            )
        obs, rewards, terminated, infos = self._core.step(action[None])
        return obs[0], float(rewards[0]), bool(terminated[0]), False, infos[0]
