"""Fuzzing the environment (hypothesis): whatever the suite and whatever the actions, the
env answers with finite observations inside its space and finite rewards, and never
raises.

Suites: K = 1 up to K_max tasks, regression and classification, splits of one example,
constant targets, inputs and targets scaled from 1e-30 to 1e30 (runs that blow up must
end as diverged episodes, not as errors). Actions: anything float32 holds, NaN and
infinities included. The default tier draws a few examples (seconds, derandomized so CI
is reproducible); the slow tier draws many, at random.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from curriculum_rl.env import CurriculumEnv, EnvConfig
from curriculum_rl.suites.base import MLPBody, SuiteInstance, TaskData, TaskSpec
from curriculum_rl.trainer import TrainerConfig

K_MAX = 8
IN_DIM = 3
TINY_TRAINER = TrainerConfig(batch_size=8, proj_dim=8, val_probe=4, device="cpu")


@dataclass(frozen=True)
class TaskRecipe:
    kind: str  # "regression" or "classification"
    width: int  # outputs or classes
    sizes: tuple[int, int, int]  # train, val, test examples
    x_scale: float
    y_scale: float
    constant: bool  # every target the same


@dataclass(frozen=True)
class FuzzSuite:
    """A suite made from drawn task recipes (the protocol: ``sample`` and ``describe``)."""

    recipes: tuple[TaskRecipe, ...]
    name: str = "fuzz"

    def describe(self) -> list[TaskSpec]:
        return [_spec(i, r) for i, r in enumerate(self.recipes)]

    def sample(self, seed: int) -> SuiteInstance:
        rng = np.random.default_rng(seed)
        data = [_data(r, rng) for r in self.recipes]
        return SuiteInstance(self.name, self.describe(), data, MLPBody(IN_DIM, (8,)), (IN_DIM,))


def _spec(i: int, recipe: TaskRecipe) -> TaskSpec:
    metric = "mse" if recipe.kind == "regression" else "accuracy"
    return TaskSpec(f"t{i}", recipe.kind, recipe.width, metric)


def _data(recipe: TaskRecipe, rng: np.random.Generator) -> TaskData:
    splits = []
    for n in recipe.sizes:
        z = rng.normal(size=(n, IN_DIM))  # float64: scaling never overflows before the cast
        x = (z * recipe.x_scale).astype(np.float32)
        if recipe.kind == "regression":
            y = z[:, :1].repeat(recipe.width, 1) * recipe.y_scale
            y = np.full_like(y, recipe.y_scale) if recipe.constant else y
        else:
            y = np.zeros(n, np.int64) if recipe.constant else rng.integers(0, recipe.width, n)
        splits += [x, y.astype(np.float32) if recipe.kind == "regression" else y]
    return TaskData(*splits)


SCALES = st.sampled_from([1e-30, 1e-6, 1.0, 1e6, 1e30])
recipes = st.builds(
    TaskRecipe,
    kind=st.sampled_from(["regression", "classification"]),
    width=st.integers(2, 4),
    sizes=st.tuples(st.integers(1, 12), st.integers(1, 4), st.integers(1, 4)),
    x_scale=SCALES,
    y_scale=SCALES,
    constant=st.booleans(),
)
suites = st.lists(recipes, min_size=1, max_size=K_MAX).map(lambda r: FuzzSuite(tuple(r)))


def _actions(dim: int) -> st.SearchStrategy:
    anything = st.floats(width=32, allow_nan=True, allow_infinity=True)
    return arrays(np.float32, (K_MAX, dim), elements=anything)


def _check_episode(env: CurriculumEnv, seed: int, actions: list[np.ndarray]) -> None:
    obs, _ = env.reset(seed=seed)
    assert env.observation_space.contains(obs) and np.isfinite(obs).all()
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs), obs
        assert np.isfinite(obs).all() and np.isfinite(reward), (obs, reward)
        assert isinstance(info["diverged"], bool)
        if terminated or truncated:
            obs, _ = env.reset()
            assert env.observation_space.contains(obs)


def _env(suite: FuzzSuite) -> CurriculumEnv:
    config = EnvConfig(suite=suite, budget=6, interval=2, max_tasks=K_MAX, trainer=TINY_TRAINER)
    return CurriculumEnv(config=config)


@st.composite
def episodes(draw, count: int):
    suite = draw(suites)
    dim = _env(suite).action_space.shape[1]
    return suite, draw(st.integers(0, 2**31 - 1)), draw(st.lists(_actions(dim), max_size=count))


FAST = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SLOW = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FAST
@given(episodes(count=5))
def test_env_survives_any_suite_and_any_actions(episode):
    suite, seed, actions = episode
    _check_episode(_env(suite), seed, actions)


@pytest.mark.slow
@SLOW
@given(episodes(count=8))
def test_env_survives_any_suite_and_any_actions_at_length(episode):
    suite, seed, actions = episode
    _check_episode(_env(suite), seed, actions)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 3.4e38, -3.4e38])
def test_extreme_actions_on_the_widest_suite(value):
    suite = FuzzSuite(
        tuple(TaskRecipe("regression", 2, (4, 2, 2), 1.0, 1.0, False) for _ in range(K_MAX))
    )
    env = _env(suite)
    _check_episode(env, 0, [np.full(env.action_space.shape, value, np.float32)] * 4)
