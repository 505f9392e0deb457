"""The environments: Gymnasium/SB3 contracts, batching equivalence, divergence, K padding."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from curriculum_rl.agents.vec_env import BatchedCurriculumVecEnv
from curriculum_rl.controllers.actions import DEFAULT_TRANSFORM, TRANSFORMS, emphasis_divergence
from curriculum_rl.controllers.learned import LearnedController, NetworkConfig, TaskSetActor
from curriculum_rl.controllers.learned.artifact import save_artifact
from curriculum_rl.controllers.observation import FEATURES
from curriculum_rl.env import ENV_ID, CurriculumEnv
from curriculum_rl.env.core import potential, worst_task_excess
from curriculum_rl.suites import SyntheticSetting, SyntheticSuite

SMALL = {
    "budget": 50,
    "interval": 25,
    "trainer": {"batch_size": 32, "proj_dim": 16, "val_probe": 16, "device": "cpu"},
}
D = CurriculumEnv(**SMALL).action_space.shape[1]  # numbers per task of the default action
# An action transform whose all-zero action is uniform weighting and sampling (the default
# one is centred on the scale-normalised rule instead).
UNIFORM_AT_ZERO = {**SMALL, "action": "loss_power"}
D_U = TRANSFORMS["loss_power"].dim
# An absurd learning rate: SGD blows the parameters up within a few steps.
DIVERGING = {**SMALL["trainer"], "lr": 1e12, "optimizer": "sgd"}


def small_suite(name: str, setting: SyntheticSetting) -> SyntheticSuite:
    """One setting on little data and a small trunk: fast envs."""
    return SyntheticSuite(
        name=name, settings=(setting,), n_train=128, n_val=64, n_test=64, hidden=(16,)
    )


def fixed_k_suite(k: int) -> SyntheticSuite:
    setting = SyntheticSetting("fixed", num_tasks=(k, k), scale_spread=(1.0, 50.0))
    return small_suite(f"k{k}", setting)


def _one_per_action_shape() -> list[str]:
    """The default transform and the first of each action width: the env's spaces depend
    on a transform only through its width (its decisions are tested in
    test_actions_observation.py), so the others run in the slow step."""
    first: dict[int, str] = {}
    for name in sorted(TRANSFORMS):
        first.setdefault(TRANSFORMS[name].dim, name)
    return sorted({*first.values(), DEFAULT_TRANSFORM})


SHAPES = _one_per_action_shape()
CHECKED_TRANSFORMS = [
    *SHAPES,
    *(pytest.param(a, marks=pytest.mark.slow) for a in sorted(TRANSFORMS) if a not in SHAPES),
]


@pytest.mark.parametrize("action", CHECKED_TRANSFORMS)
def test_registered_env_passes_gymnasium_and_sb3_checkers(action):
    env = gym.make(ENV_ID, **SMALL, action=action)
    assert env.action_space.shape == (8, TRANSFORMS[action].dim)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)


def test_ppo_learns_on_the_batched_vecenv():
    vec = BatchedCurriculumVecEnv(4, **SMALL)
    model = PPO("MlpPolicy", vec, n_steps=4, batch_size=8, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=32)
    assert model.num_timesteps >= 32


def rollout_single(seed: int, actions: np.ndarray, steps: int, **kwargs):
    env = CurriculumEnv(**kwargs)
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for t in range(steps):
        obs, reward, terminated, _, _ = env.step(actions[t])
        rewards.append(reward)
        if terminated:
            obs, _ = env.reset()
        observations.append(obs)
    return np.stack(observations), np.array(rewards)


@pytest.mark.parametrize("num_envs", [1, 3])
def test_vecenv_slots_equal_single_envs_with_the_same_seeds(num_envs):
    steps = 5  # crosses an episode boundary (2 decisions per episode)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(steps, num_envs, 8, D)).astype(np.float32)
    vec = BatchedCurriculumVecEnv(num_envs, **SMALL)
    vec.seed(100)
    observations, rewards = [vec.reset()], []
    for t in range(steps):
        obs, reward, _, _ = vec.step(actions[t])
        observations.append(obs)
        rewards.append(reward)
    observations, rewards = np.stack(observations), np.stack(rewards)
    for i in range(num_envs):
        single_obs, single_rew = rollout_single(100 + i, actions[:, i], steps, **SMALL)
        np.testing.assert_allclose(observations[:, i], single_obs, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(rewards[:, i], single_rew, rtol=1e-4, atol=1e-5)


def test_divergence_ends_the_episode_and_keeps_observations_valid():
    env = CurriculumEnv(budget=100, interval=25, trainer=DIVERGING)
    obs, _ = env.reset(seed=0)
    for _ in range(4):
        obs, reward, terminated, _truncated, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        assert np.isfinite(reward)
        if terminated:
            break
    assert terminated and info["diverged"]
    assert reward == -env.config.divergence_penalty


def test_vecenv_restarts_a_diverged_run_alone():
    vec = BatchedCurriculumVecEnv(2, budget=100, interval=25, trainer=DIVERGING)
    vec.seed(0)
    vec.reset()
    for _ in range(3):
        obs, _, dones, infos = vec.step(np.zeros((2, 8, D), np.float32))
        assert np.isfinite(obs).all() and vec.observation_space.contains(obs[0])
        if dones.any():
            break
    assert dones.any() and any(info["diverged"] for info in infos)
    assert all("terminal_observation" in infos[i] for i in np.flatnonzero(dones))


@pytest.mark.parametrize("k", [2, 8])
def test_k2_and_k8_suites_work_in_the_same_env_class(k):
    env = CurriculumEnv(suite=fixed_k_suite(k), **UNIFORM_AT_ZERO)
    obs, info = env.reset(seed=0)
    assert info["num_tasks"] == k
    assert obs.shape == (8, env.observation_space.shape[1])
    assert (obs[:k, 0] == 1).all() and (obs[k:] == 0).all()
    _, reward, _, _, info = env.step(np.zeros((8, D_U), np.float32))
    assert np.isfinite(reward) and len(info["weights"]) == k
    np.testing.assert_allclose(info["weights"], np.ones(k), rtol=1e-5)


def test_reward_telescopes_to_the_log_improvement_of_the_run():
    env = CurriculumEnv(**SMALL)
    env.reset(seed=3)
    j_start = float(env._core.loop.state.j[0])
    total, terminated = 0.0, False
    while not terminated:
        _, reward, terminated, _, info = env.step(np.zeros((8, D), np.float32))
        total += reward
    assert total == pytest.approx(j_start - info["j"], abs=1e-5)


@pytest.mark.parametrize("action", ["loss_power", "error_power"])
def test_emphasis_cost_prices_leaving_the_centre_rule_and_nothing_else(action):
    """The zero action (uniform for loss_power, the scale-normalised rule for error_power)
    pays nothing; any other pays KL(centre emphasis || its emphasis) times the cost."""
    cost, dim = 0.05, TRANSFORMS[action].dim
    plain = CurriculumEnv(**SMALL, action=action)
    priced = CurriculumEnv(**SMALL, action=action, emphasis_cost=cost)
    plain.reset(seed=4)
    priced.reset(seed=4)
    zero = np.zeros((8, dim), np.float32)
    assert plain.step(zero)[1] == pytest.approx(priced.step(zero)[1], abs=1e-6)  # float32 KL
    mask = priced._core.trainer.mask
    rule_is_uniform = float(emphasis_divergence(priced._core.loop.state.previous, mask)[0]) < 1e-6
    assert rule_is_uniform == (action == "loss_power")
    centre = TRANSFORMS[action].decision(torch.zeros(1, 8, dim), priced._core.loop.state)
    skewed = zero.copy()
    skewed[:, 0] = np.linspace(-1, 1, 8)
    _, r_plain, *_ = plain.step(skewed)
    _, r_priced, *_ = priced.step(skewed)
    decision = priced._core.loop.state.previous  # the decision the skewed action made
    expected = cost * float(emphasis_divergence(decision, mask, centre)[0])
    assert expected > 0
    assert r_plain - r_priced == pytest.approx(expected, rel=1e-5)


def test_emphasis_anchor_prices_leaving_the_anchor_policy_and_nothing_else(tmp_path):
    """With an anchor policy, acting as the anchor pays nothing; any other action pays
    KL(anchor emphasis || its emphasis) times the cost (fine-tuning without forgetting)."""
    torch.manual_seed(0)
    actor = TaskSetActor(NetworkConfig(action_dim=D, action_init_gain=1.0))
    anchor = save_artifact(tmp_path / "anchor", actor, max_tasks=8, action="error_power")
    cost = 0.05
    plain = CurriculumEnv(**SMALL)
    priced = CurriculumEnv(**SMALL, emphasis_cost=cost, emphasis_anchor=str(anchor))
    obs, _ = plain.reset(seed=4)
    priced.reset(seed=4)
    with torch.no_grad():
        own = actor(torch.as_tensor(obs)[None])[0].numpy()
    assert np.abs(own).max() > 0.01  # the anchor is not the centre rule
    assert plain.step(own)[1] == pytest.approx(priced.step(own)[1], abs=1e-6)
    anchored = LearnedController.load(anchor).decide(priced._core.loop.state)
    _, r_plain, *_ = plain.step(np.zeros_like(own))
    _, r_priced, *_ = priced.step(np.zeros_like(own))
    mask = priced._core.trainer.mask
    decision = priced._core.loop.state.previous
    expected = cost * float(emphasis_divergence(decision, mask, anchored)[0])
    assert expected > 1e-4
    assert r_plain - r_priced == pytest.approx(expected, rel=1e-4)


def test_bad_env_config_names_the_problem():
    with pytest.raises(ValueError, match="multiple of interval"):
        CurriculumEnv(budget=60, interval=25)
    with pytest.raises(ValueError, match="unknown suite"):
        CurriculumEnv(suite="no-such-suite")
    with pytest.raises(ValueError, match="emphasis_cost must be >= 0"):
        CurriculumEnv(emphasis_cost=-0.1)
    with pytest.raises(ValueError, match="set emphasis_cost > 0"):
        CurriculumEnv(emphasis_anchor="agents/default.json")
    with pytest.raises(ValueError, match=r"nope\.json not found"):
        CurriculumEnv(emphasis_cost=0.1, emphasis_anchor="nope.json")


@pytest.mark.parametrize("reward", ["error", "loss"])
def test_reward_telescopes_to_the_improvement_of_its_potential(reward):
    """The error potential on a suite with classification tasks (soft error differs from
    the loss there), the loss potential: each return is its potential's improvement."""
    suite = small_suite(
        "mixed-kinds", SyntheticSetting("mixed", num_tasks=(3, 3), classification=(0.5, 0.5))
    )
    env = CurriculumEnv(suite=suite, reward=reward, **SMALL)
    env.reset(seed=5)
    start = float(potential(env._core.loop.state, reward)[0])
    total, terminated = 0.0, False
    while not terminated:
        _, r, terminated, _, _ = env.step(np.full((8, D), 0.3, np.float32))
        total += r
    end = float(potential(env._core.loop.state, reward)[0])
    assert total == pytest.approx(start - end, abs=1e-5)


def test_shadow_reward_is_the_gain_over_a_uniform_twin():
    env = CurriculumEnv(shadow=True, **UNIFORM_AT_ZERO)
    env.reset(seed=2)
    # Uniform actions: the agent run and its shadow are the same computation.
    _, reward, *_ = env.step(np.zeros((8, D_U), np.float32))
    assert reward == 0.0
    env.reset(seed=2)
    core = env._core
    total, terminated = 0.0, False
    while not terminated:
        _, r, terminated, _, _ = env.step(np.full((8, D_U), -0.5, np.float32))
        total += r
    phi = potential(core.loop.state, "error")
    assert total == pytest.approx(float(phi[1] - phi[0]), abs=1e-5)  # shadow end - agent end
    assert core.trainer.num_runs == 2 and torch.equal(core.trainer.mask[0], core.trainer.mask[1])


def test_worst_task_price_charges_the_final_excess_over_the_shadow_once():
    actions = np.full((8, D_U), -0.5, np.float32)
    returns, cores = [], []
    for cost in (0.0, 2.0):
        env = CurriculumEnv(shadow=True, worst_task_cost=cost, **UNIFORM_AT_ZERO)
        env.reset(seed=2)
        total, terminated = 0.0, False
        while not terminated:
            _, r, terminated, _, _ = env.step(actions)
            total += r
        returns.append(total)
        cores.append(env._core)
    state = cores[1].loop.state
    excess = float(worst_task_excess(state, "error", 1)[0])
    # Same runs either way; the price telescopes to the excess at the episode's end.
    assert torch.equal(state.val_error, cores[0].loop.state.val_error)
    assert excess > 0
    assert returns[1] == pytest.approx(returns[0] - 2.0 * excess, abs=1e-5)
    # The excess is the worst target task's log error ratio to the shadow, floored at 0.
    ratios = (state.val_error[0] / state.val_error[1]).log()[state.objective[0]]
    assert excess == pytest.approx(max(float(ratios.max()), 0.0), rel=1e-5)


def test_worst_task_price_is_zero_when_the_agent_is_uniform():
    env = CurriculumEnv(shadow=True, worst_task_cost=5.0, **UNIFORM_AT_ZERO)
    env.reset(seed=2)
    _, reward, *_ = env.step(np.zeros((8, D_U), np.float32))
    assert reward == 0.0


def test_worst_task_price_needs_the_shadow_and_a_valid_cost():
    with pytest.raises(ValueError, match="set shadow = true"):
        CurriculumEnv(worst_task_cost=1.0, **SMALL)
    with pytest.raises(ValueError, match="worst_task_cost must be >= 0"):
        CurriculumEnv(shadow=True, worst_task_cost=-1.0, **SMALL)


def test_episodes_draw_their_budget_from_budgets():
    env = CurriculumEnv(budgets=(50, 100), **SMALL)
    lengths = set()
    for seed in range(6):
        obs, _ = env.reset(seed=seed)
        steps, terminated = 0, False
        budget = float(env._core.loop.state.budget[0])
        assert obs[0, FEATURES.index("log_budget")] == pytest.approx(np.log10(budget / 1000))
        while not terminated:
            obs, _, terminated, _, _ = env.step(np.zeros((8, D), np.float32))
            steps += 1
        assert steps * 25 == budget
        lengths.add(steps)
    assert lengths == {2, 4}


def test_reward_counts_target_tasks_only():
    """Auxiliary tasks train but do not count: the potential reads the targets alone."""
    suite = small_suite("aux", SyntheticSetting("aux", num_tasks=(4, 4), auxiliary=(3, 3)))
    env = CurriculumEnv(suite=suite, **SMALL)
    env.reset(seed=1)
    state = env._core.loop.state
    targets = state.objective[0, :4]
    assert targets.sum() == 1
    target = int(targets.nonzero())
    expected = float(state.val_error[0, target].log())
    assert float(potential(state, "error")[0]) == pytest.approx(expected)
    obs, *_ = env.step(np.zeros((8, D), np.float32))
    assert obs[:4, FEATURES.index("is_objective")].tolist() == targets.float().tolist()
