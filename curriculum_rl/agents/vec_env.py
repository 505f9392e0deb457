"""``BatchedCurriculumVecEnv``: N multitask runs stepped as one batched computation.

A stable-baselines3 ``VecEnv`` (so it lives with the SB3 training code) whose N
environments share one trainer, so one
``step`` trains all N runs in the same tensor operations (on GPU when present). Slot
``i`` seeded ``s`` behaves exactly like a :class:`~curriculum_rl.env.CurriculumEnv`
reset with ``seed=s``. Finished runs restart on a fresh instance at once (SB3's
auto-reset convention: the last observation goes to ``info["terminal_observation"]``).
:class:`MixedCurriculumVecEnv` joins several such blocks (one per suite) into one VecEnv,
and :func:`make_worker_env` builds the env one training process steps from its blocks.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from curriculum_rl.env import CurriculumCore, EnvConfig, env_config, make_spaces


class BatchedCurriculumVecEnv(VecEnv):
    """``num_envs`` runs of the curriculum decision process, batched."""

    render_mode = None

    def __init__(self, num_envs: int = 16, **kwargs: Any) -> None:
        """Keyword arguments: the fields of :class:`~curriculum_rl.env.EnvConfig`, or
        ``config=EnvConfig(...)``."""
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.config = env_config(**kwargs)
        observation_space, action_space = make_spaces(self.config)
        super().__init__(num_envs, observation_space, action_space)
        self._core = CurriculumCore(self.config, num_envs)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        for run, seed in enumerate(self._seeds):
            if seed is None:
                seed = int(np.random.randint(0, 2**31))
            self._core.seed(run, seed)
        self._reset_seeds()
        obs = self._core.reset_all()
        self.reset_infos = [{"num_tasks": int(k)} for k in self._core.trainer.mask.sum(1)]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.float32)

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("call step_async() before step_wait()")
        if self._core.trainer is None:
            raise RuntimeError("call reset() before step()")
        obs, rewards, dones, infos = self._core.step(self._actions)
        self._actions = None
        finished = [run for run in range(self.num_envs) if dones[run]]
        for run in finished:
            infos[run]["terminal_observation"] = obs[run]
            infos[run]["TimeLimit.truncated"] = False
        if finished:
            obs = self._core.reset_runs(finished)
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self._core.trainer = None

    # The N environments are one object, so attribute access answers for all of them.
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args, indices: VecEnvIndices = None, **kwargs) -> list:
        return [getattr(self, method_name)(*args, **kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


class MixedCurriculumVecEnv(VecEnv):
    """Several :class:`BatchedCurriculumVecEnv` blocks as one VecEnv: slot ``i`` is the
    ``i``-th slot of the blocks taken in order.

    A trainer batches only runs whose trunks are equal, so a training distribution that
    mixes trunks (an MLP, a sequence encoder) needs one block per suite; the policy sees
    one rollout of all of them. Every block must share the observation and action spaces
    (the same ``max_tasks`` and action transform). Slot ``i`` seeded ``s`` seeds its
    block's slot with ``s``; unseeded slots draw from numpy's generator in slot order, as
    a single block does.
    """

    render_mode = None

    def __init__(self, blocks: list[BatchedCurriculumVecEnv]) -> None:
        if not blocks:
            raise ValueError("MixedCurriculumVecEnv needs at least one block")
        first = blocks[0]
        for block in blocks[1:]:
            if (block.observation_space, block.action_space) != (
                first.observation_space,
                first.action_space,
            ):
                raise ValueError(
                    f"suite {block.config.suite!r} has other observation/action spaces than "
                    f"{first.config.suite!r}: every block needs the same max_tasks and action"
                )
        self.blocks = blocks
        starts = np.cumsum([0] + [b.num_envs for b in blocks])
        self._slots = [range(int(a), int(b)) for a, b in itertools.pairwise(starts)]
        self._actions: np.ndarray | None = None
        super().__init__(int(starts[-1]), first.observation_space, first.action_space)

    def reset(self) -> np.ndarray:
        seeds = [int(np.random.randint(0, 2**31)) if s is None else s for s in self._seeds]
        self._reset_seeds()
        obs = []
        for block, slots in zip(self.blocks, self._slots, strict=True):
            block._seeds = seeds[slots.start : slots.stop]
            obs.append(block.reset())
        self.reset_infos = [info for block in self.blocks for info in block.reset_infos]
        return np.concatenate(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.float32)

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("call step_async() before step_wait()")
        answers = [
            block.step(self._actions[slots.start : slots.stop])
            for block, slots in zip(self.blocks, self._slots, strict=True)
        ]
        self._actions = None
        return concatenate_steps(answers)

    def close(self) -> None:
        for block in self.blocks:
            block.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self._block_of(i), attr_name) for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        chosen = set(self._get_indices(indices))
        for block, slots in zip(self.blocks, self._slots, strict=True):
            if chosen.intersection(slots):
                setattr(block, attr_name, value)

    def env_method(self, method_name: str, *args, indices: VecEnvIndices = None, **kwargs) -> list:
        return [
            getattr(self._block_of(i), method_name)(*args, **kwargs)
            for i in self._get_indices(indices)
        ]

    def env_is_wrapped(self, wrapper_class, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def _block_of(self, slot: int) -> BatchedCurriculumVecEnv:
        return next(b for b, slots in zip(self.blocks, self._slots, strict=True) if slot in slots)


def make_worker_env(blocks: list[tuple[int, EnvConfig]]) -> VecEnv:
    """The env of one training process from its blocks of ``(num_envs, config)``: a
    :class:`BatchedCurriculumVecEnv` of the one block, or a :class:`MixedCurriculumVecEnv`
    of several (``[train] n_envs`` runs on ``[env] suite``, then one block per
    ``[[train.mix]]`` suite). Training steps it in its own process, or one per Ray actor
    (:mod:`curriculum_rl.agents.ray_vec_env`)."""
    envs = [BatchedCurriculumVecEnv(n, config=config) for n, config in blocks]
    return envs[0] if len(envs) == 1 else MixedCurriculumVecEnv(envs)


def concatenate_steps(answers: list[tuple]) -> tuple:
    """One VecEnv step answer from the answers of consecutive blocks of slots."""
    obs, rewards, dones, infos = zip(*answers, strict=True)
    return (
        np.concatenate(obs),
        np.concatenate(rewards),
        np.concatenate(dones),
        [info for block in infos for info in block],
    )
