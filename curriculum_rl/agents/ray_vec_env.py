"""``RayVecEnv``: one SB3 ``VecEnv`` front over batched VecEnvs hosted in Ray actors.

``curriculum-rl train --workers W`` collects PPO's rollouts from W processes (on this
machine or a Ray cluster) instead of one. Each actor hosts the env that training steps in
one process (:func:`~curriculum_rl.agents.vec_env.make_worker_env`): a
:class:`~curriculum_rl.agents.vec_env.BatchedCurriculumVecEnv` of ``[train] n_envs`` runs
or, with ``[[train.mix]]``, a :class:`~curriculum_rl.agents.vec_env.MixedCurriculumVecEnv`
of that block and one block per mix suite; hence the same
:class:`~curriculum_rl.env.CurriculumCore`, so every env option (``shadow``, ``budgets``,
rewards, actions) and the mix work unchanged. With m runs per actor (``n_envs`` plus the
mix's), the front has W x m slots, actor ``j`` serving slots ``j*m .. (j+1)*m - 1``. A
step sends each actor its block of the actions, the actors train their runs in parallel,
and the front concatenates the answers in slot order.

Why n_envs runs per actor rather than n_envs / W: a batched step costs a large fixed part
whatever its number of runs (``benchmarks/RESULTS.md`` section 1: about 63 ms fixed and
3.3 ms per run at N = 16 on CPU; on a GPU the fixed part dominates more), so splitting
16 runs over two processes would gain at most 1.3x, while two trainers of 16 runs make
twice the decisions per step. So ``n_envs`` is the number of runs per trainer, sized to
the device, and W multiplies the rollout: W x m runs per rollout (``n_steps`` each),
so ``total_timesteps`` takes 1/W as many rollouts, each with W times the PPO minibatches
(the same gradient steps per decision). W = 1 is exactly the in-process env, mix
included, in another process.

Seeding follows the in-process rule: front slot ``i`` seeded ``s`` is seeded ``s`` in
its actor (SB3's ``seed(base)`` gives slot ``i`` the seed ``base + i``, so actor 0
replays the in-process env's slots); an unseeded slot draws its seed from this process's
numpy generator, in slot order, as the in-process env does. So with W = 1 the
observations, rewards and the trained policy are those of the in-process path bit for
bit (``tests/test_ray.py``).

A lost actor (its node died) stops training with Ray's error; ``--resume`` continues
from the last checkpoint (with any W).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from curriculum_rl.agents.vec_env import concatenate_steps, make_worker_env
from curriculum_rl.cluster import import_ray, worker_resources
from curriculum_rl.env import EnvConfig, make_spaces


class EnvHost:
    """The actor: the env of one training process, built from its ``blocks`` of
    ``(num_envs, config)`` (:func:`~curriculum_rl.agents.vec_env.make_worker_env`)."""

    def __init__(self, blocks: list[tuple[int, EnvConfig]], torch_threads: int) -> None:
        if torch_threads:
            torch.set_num_threads(torch_threads)
        self.env = make_worker_env(blocks)

    def reset(self, seeds: list[int]) -> tuple[np.ndarray, list[dict]]:
        # VecEnv.reset reads each slot's seed from `_seeds`, which SB3's `seed(base)`
        # can only set to base + slot; the front's seeds for this block are arbitrary.
        self.env._seeds = list(seeds)
        obs = self.env.reset()
        return obs, self.env.reset_infos

    def step(self, actions: np.ndarray) -> tuple:
        # Ray hands arrays over read-only; the env makes tensors of them.
        return self.env.step(np.array(actions))

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``env.method(*args, **kwargs)``: attribute access and ``env_method``."""
        return getattr(self.env, method)(*args, **kwargs)


class RayVecEnv(VecEnv):
    """``workers`` Ray actors, each hosting the env of ``blocks`` (``(num_envs, config)``
    pairs: the main block, then one per ``[[train.mix]]`` suite), as one VecEnv of
    ``workers * sum(num_envs)`` slots. Needs a Ray connection
    (:func:`curriculum_rl.cluster.ray_cluster`) while it lives."""

    render_mode = None

    def __init__(
        self, blocks: list[tuple[int, EnvConfig]], workers: int, torch_threads: int = 1
    ) -> None:
        if not blocks or min(n for n, _ in blocks) < 1 or workers < 1:
            raise ValueError(
                f"every block needs num_envs >= 1 and workers must be >= 1, got "
                f"{[n for n, _ in blocks]}, {workers}"
            )
        self._ray = import_ray("train --workers")
        self.blocks = list(blocks)
        config = blocks[0][1]  # the blocks share every setting but the suite
        resources = worker_resources(self._ray, config.trainer.device, workers)
        host = self._ray.remote(EnvHost).options(**resources)
        n = sum(n for n, _ in blocks)
        # (actor, the front's slots it hosts)
        self.hosts = [
            (host.remote(self.blocks, torch_threads), range(j * n, (j + 1) * n))
            for j in range(workers)
        ]
        self._pending: list | None = None
        super().__init__(workers * n, *make_spaces(config))

    def reset(self) -> np.ndarray:
        # Drawn here, in slot order, as the in-process env draws them.
        seeds = [int(np.random.randint(0, 2**31)) if s is None else s for s in self._seeds]
        self._reset_seeds()
        answers = self._ray.get([h.reset.remote(seeds[b.start : b.stop]) for h, b in self.hosts])
        self.reset_infos = [info for _, infos in answers for info in infos]
        return np.concatenate([obs for obs, _ in answers])

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions, dtype=np.float32)
        self._pending = [h.step.remote(actions[b.start : b.stop]) for h, b in self.hosts]

    def step_wait(self):
        if self._pending is None:
            raise RuntimeError("call step_async() before step_wait()")
        answers, self._pending = self._ray.get(self._pending), None
        return concatenate_steps(answers)

    def close(self) -> None:
        for host, _ in self.hosts:
            self._ray.kill(host)
        self.hosts = []

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return self._each("get_attr", attr_name, indices=indices)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._each("set_attr", attr_name, value, indices=indices)

    def env_method(self, method_name: str, *args, indices: VecEnvIndices = None, **kwargs) -> list:
        return self._each("env_method", method_name, *args, indices=indices, **kwargs)

    def env_is_wrapped(self, wrapper_class, indices: VecEnvIndices = None) -> list[bool]:
        return self._each("env_is_wrapped", wrapper_class, indices=indices)

    def _each(self, method: str, *args: Any, indices: VecEnvIndices, **kwargs: Any) -> list:
        """``method`` of the hosted envs for the front's slots ``indices``, one answer per
        slot in their order (the hosted envs answer one per local slot, or ``None``)."""
        slots = list(self._get_indices(indices))
        asked = [(h, b, [i for i in slots if i in b]) for h, b in self.hosts]
        asked = [(h, b, mine) for h, b, mine in asked if mine]
        answers = self._ray.get(
            [
                h.call.remote(method, *args, indices=[i - b.start for i in mine], **kwargs)
                for h, b, mine in asked
            ]
        )
        by_slot = {}
        for (_, _, mine), answer in zip(asked, answers, strict=True):
            by_slot.update(zip(mine, answer or [None] * len(mine), strict=True))
        return [by_slot[i] for i in slots]
