"""The task-set policy: equivariance, task-count agnosticism, SB3 integration, controller."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from curriculum_rl.agents.policy import TaskSetPolicy
from curriculum_rl.agents.vec_env import BatchedCurriculumVecEnv
from curriculum_rl.controllers.actions import DEFAULT_TRANSFORM, TRANSFORMS
from curriculum_rl.controllers.learned.network import (
    NetworkConfig,
    TaskSetActor,
    TaskSetCritic,
    init_weights,
    run_statistic_names,
    run_statistics,
    run_statistics_width,
    target_mask,
    task_mask,
)
from curriculum_rl.controllers.observation import FEATURES, NUM_FEATURES

K_MAX = 8
A = TRANSFORMS[DEFAULT_TRANSFORM].dim  # numbers per task of the default action transform


def _obs(batch: int, ks: list[int], seed: int = 0) -> torch.Tensor:
    """Random observations with ``ks[b]`` valid task rows (mask feature 1) then padding."""
    gen = torch.Generator().manual_seed(seed)
    obs = torch.randn(batch, K_MAX, NUM_FEATURES, generator=gen)
    for b, k in enumerate(ks):
        obs[b, :, 0] = 0.0
        obs[b, :k, 0] = 1.0
        obs[b, k:] = 0.0
    return obs


def _networks(run_head: bool = False) -> tuple[TaskSetActor, TaskSetCritic]:
    torch.manual_seed(0)
    # a visible (non-near-zero) output; a run head, when asked, with random weights
    config = NetworkConfig(action_init_gain=1.0, run_head=run_head)
    actor, critic = TaskSetActor(config), TaskSetCritic(config)
    init_weights(actor, critic)
    if run_head:
        assert actor.run_head.weight.abs().sum() == 0  # it starts silent
        torch.nn.init.normal_(actor.run_head.weight, std=0.1)
    return actor, critic


RUN_HEAD = pytest.mark.parametrize("run_head", [False, True])


@RUN_HEAD
def test_permuting_tasks_permutes_actions_and_keeps_value(run_head):
    actor, critic = _networks(run_head)
    obs = _obs(3, [3, 7, 8])
    perm = torch.tensor([5, 2, 7, 0, 1, 6, 3, 4])  # moves padding rows around too
    with torch.no_grad():
        actions, value = actor(obs), critic(obs)
        actions_p, value_p = actor(obs[:, perm]), critic(obs[:, perm])
    torch.testing.assert_close(actions_p, actions[:, perm], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(value_p, value, rtol=1e-5, atol=1e-6)
    assert actions.abs().sum() > 0


def test_sb3_policy_is_equivariant():
    env = BatchedCurriculumVecEnv(1, budget=50, interval=25)
    policy = TaskSetPolicy(
        env.observation_space, env.action_space, lambda _: 3e-4, net={"action_init_gain": 1.0}
    )
    obs = _obs(2, [4, 6])
    perm = torch.randperm(K_MAX, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mean = policy.get_distribution(obs).distribution.mean.reshape(2, K_MAX, A)
        mean_p = policy.get_distribution(obs[:, perm]).distribution.mean.reshape(2, K_MAX, A)
        values = policy.predict_values(obs)
        values_p = policy.predict_values(obs[:, perm])
    torch.testing.assert_close(mean_p, mean[:, perm], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(values_p, values, rtol=1e-5, atol=1e-6)
    # the shared log std: one number per action kind
    assert policy.log_std.shape == (A,)


@RUN_HEAD
@pytest.mark.parametrize("k", [3, 7])
def test_one_policy_runs_on_any_task_count(k, run_head):
    actor, _ = _networks(run_head)
    obs = _obs(2, [k, k], seed=k)
    with torch.no_grad():
        padded = actor(obs)
        unpadded = actor(obs[:, :k])  # the network itself does not need K_max at all
    assert padded.shape == (2, K_MAX, A)
    assert torch.isfinite(padded).all()
    assert (padded[:, k:] == 0).all(), "padded task slots must get zero actions"
    torch.testing.assert_close(padded[:, :k], unpadded, rtol=1e-5, atol=1e-6)


@RUN_HEAD
def test_padding_contents_do_not_matter(run_head):
    actor, critic = _networks(run_head)
    obs = _obs(1, [3])
    noisy = obs.clone()
    noisy[:, 3:, 1:] = torch.randn(1, K_MAX - 3, NUM_FEATURES - 1)  # mask stays 0
    with torch.no_grad():
        torch.testing.assert_close(actor(noisy), actor(obs))
        torch.testing.assert_close(critic(noisy), critic(obs))


def test_run_statistics_summarise_all_tasks_targets_and_auxiliaries_apart():
    obs = _obs(3, [3, 8, 0])
    objective = FEATURES.index("is_objective")
    obs[..., objective] = 0.0
    obs[0, :2, objective] = 1.0  # run 0: two targets, one auxiliary
    obs[1, :, objective] = 1.0  # run 1: eight targets, no auxiliary
    stats = run_statistics(obs, task_mask(obs), target_mask(obs))
    f, width = NUM_FEATURES, 4 * NUM_FEATURES + 1
    assert stats.shape == (3, run_statistics_width(f)) == (3, 3 * width)
    for group, rows in enumerate((obs[0, :3], obs[0, :2], obs[0, 2:3])):
        part = stats[0, group * width : (group + 1) * width]
        torch.testing.assert_close(part[:f], rows.mean(0))
        torch.testing.assert_close(part[f : 2 * f], rows.std(0, unbiased=False))
        torch.testing.assert_close(part[2 * f : 3 * f], rows.amax(0))
        torch.testing.assert_close(part[3 * f : 4 * f], rows.amin(0))
    # 1 / K per group, not K: a readout fitted on few tasks stays bounded on many; a group
    # without tasks gives zeros
    inverse_counts = stats[:, width - 1 :: width]
    expected = [[1 / 3, 0.5, 1.0], [0.125, 0.125, 0.0], [0.0, 0.0, 0.0]]
    torch.testing.assert_close(inverse_counts, torch.tensor(expected))
    assert (stats[1, 2 * width :] == 0).all() and (stats[2] == 0).all()


def test_each_run_statistic_is_named_by_its_group_statistic_and_feature():
    obs = _obs(1, [3])
    objective, weight = FEATURES.index("is_objective"), FEATURES.index("log_weight")
    obs[0, :, objective] = torch.tensor([1.0, 1.0, 0.0] + [0.0] * (obs.shape[1] - 3))
    obs[0, :3, weight] = torch.tensor([2.0, 4.0, -5.0])  # targets 2 and 4, auxiliary -5
    stats = run_statistics(obs, task_mask(obs), target_mask(obs))[0]
    names = run_statistic_names()
    assert len(names) == len(set(names)) == run_statistics_width(NUM_FEATURES)
    value = dict(zip(names, stats.tolist(), strict=True))
    assert value["targets.mean.log_weight"] == 3.0 and value["targets.max.log_weight"] == 4.0
    assert value["auxiliaries.mean.log_weight"] == value["all.min.log_weight"] == -5.0
    assert value["targets.inverse_count"] == 0.5
    assert value["all.inverse_count"] == pytest.approx(1 / 3)


def test_initial_policy_is_near_uniform():
    torch.manual_seed(0)
    actor = TaskSetActor(NetworkConfig())
    init_weights(actor)
    with torch.no_grad():
        assert actor(_obs(4, [2, 5, 8, 8])).abs().max() < 0.1


def test_masked_log_prob_ignores_padded_slots():
    env = BatchedCurriculumVecEnv(1, budget=50, interval=25)
    policy = TaskSetPolicy(env.observation_space, env.action_space, lambda _: 3e-4)
    obs = _obs(1, [2])
    actions = torch.zeros(1, K_MAX * A)
    _, log_prob, entropy = policy.evaluate_actions(obs, actions)
    actions[:, 2 * A :] = 0.9  # padded slots' actions change nothing
    _, log_prob2, entropy2 = policy.evaluate_actions(obs, actions)
    torch.testing.assert_close(log_prob, log_prob2)
    torch.testing.assert_close(entropy, entropy2)


def test_ppo_learns_on_the_batched_vecenv():
    env = BatchedCurriculumVecEnv(2, budget=50, interval=25)
    model = PPO(TaskSetPolicy, env, n_steps=4, batch_size=8, n_epochs=2, seed=0, device="cpu")
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(16)
    assert model.num_timesteps == 16
    after = list(model.policy.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    actions, _ = model.predict(env.reset(), deterministic=True)
    assert actions.shape == (2, K_MAX, A) and np.isfinite(actions).all()


def _policy_with_anchor(
    kl_coef: float | list[float], ent_coef: float = 0.01
) -> tuple[TaskSetPolicy, object]:
    env = BatchedCurriculumVecEnv(1, budget=50, interval=25)
    policy = TaskSetPolicy(
        env.observation_space, env.action_space, lambda _: 3e-4, net={"action_init_gain": 1.0}
    )
    anchor, _ = _networks()  # another network than the policy's
    with torch.no_grad():
        anchor.log_std.fill_(-1.0)
    policy.set_anchor(anchor, kl_coef, ent_coef)
    return policy, anchor


def test_the_anchor_kl_is_the_closed_form_over_valid_tasks():
    policy, anchor = _policy_with_anchor(kl_coef=0.5)
    obs = _obs(3, [2, 5, 8])
    features = policy.extract_features(obs)
    with torch.no_grad():
        kl = policy.kl_to_anchor(features, policy.get_distribution(obs))
        mu0, mu = anchor(obs), policy.actor(obs)
    s0, s = anchor.log_std.exp(), policy.actor.log_std.exp()
    expected_per_dim = torch.log(s / s0) + (s0**2 + (mu0 - mu) ** 2) / (2 * s**2) - 0.5
    valid = obs[..., 0:1] > 0.5  # padded task slots count nothing
    expected = (expected_per_dim * valid).sum((1, 2))
    torch.testing.assert_close(kl, expected.detach(), rtol=1e-5, atol=1e-5)
    assert (kl > 0).all()
    policy.set_anchor(policy.actor, 0.5, 0.01)  # anchored to itself: nothing to pay
    with torch.no_grad():
        assert policy.kl_to_anchor(features, policy.get_distribution(obs)).abs().max() < 1e-5


@pytest.mark.parametrize("kl_coef", [0.3, [0.0, 0.7, 0.0, 0.2]], ids=["one", "per-column"])
def test_the_anchor_adds_its_kl_gradient_and_leaves_the_entropy_value(kl_coef):
    """PPO's loss holds -ent_coef * mean(entropy): the anchored entropy keeps its value
    and adds exactly mean(sum_d kl_coef_d * KL_d) in gradient (one number: the same
    price on every action column)."""
    ent_coef = 0.01
    policy, _ = _policy_with_anchor(kl_coef, ent_coef)
    prices = torch.tensor(kl_coef).expand(A)
    obs = _obs(4, [3, 4, 6, 8], seed=2)
    actions = torch.zeros(4, K_MAX * A)
    params = list(policy.actor.parameters())

    def grads(loss: torch.Tensor) -> list[torch.Tensor]:
        return torch.autograd.grad(loss, params, allow_unused=True, materialize_grads=True)

    _, _, anchored = policy.evaluate_actions(obs, actions)
    plain = policy.get_distribution(obs).entropy()
    torch.testing.assert_close(anchored, plain)
    features = policy.extract_features(obs)
    kl = policy._kl_per_dimension(features, policy.get_distribution(obs)).unflatten(1, (K_MAX, A))
    expected = grads(-ent_coef * plain.mean() + (kl * prices).sum((1, 2)).mean())
    for got, want in zip(grads(-ent_coef * anchored.mean()), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)
    assert policy.anchor_kl == pytest.approx(kl.sum((1, 2)).mean().item(), rel=1e-5)


def _drift_per_column(kl_coef: float | list[float]) -> torch.Tensor:
    """(A,) mean |change| of the actor's action means per column after a few PPO updates
    from a start it is anchored to with ``kl_coef`` (0: no anchor)."""
    obs = _obs(6, [3, 5, 8, 4, 6, 7], seed=3)
    env = BatchedCurriculumVecEnv(2, budget=100, interval=25)
    model = PPO(
        TaskSetPolicy,
        env,
        n_steps=4,
        batch_size=8,
        n_epochs=4,
        learning_rate=3e-3,
        ent_coef=0.001,
        seed=0,
        device="cpu",
    )
    start = TaskSetActor(model.policy.actor.config)
    start.load_state_dict(model.policy.actor.state_dict())
    if kl_coef:
        model.policy.set_anchor(start, kl_coef, 0.001)
    model.learn(32)
    with torch.no_grad():
        return (model.policy.actor(obs) - start(obs)).abs().mean((0, 1))


@pytest.mark.slow
def test_a_strong_anchor_holds_ppo_at_the_initial_policy():
    """Through SB3's PPO.train: the same updates move the actor's action means much less
    with a large KL price to where it started."""
    free, held = _drift_per_column(0.0).mean(), _drift_per_column(100.0).mean()
    assert free > 0 and held < 0.5 * free, (free, held)


@pytest.mark.slow
def test_a_column_priced_alone_is_held_and_the_others_move():
    """Per-column prices (``[ppo] anchor_kl_columns``): a sampling column priced high stays
    near the start through PPO.train, the unpriced columns move as without an anchor."""
    sampling = TRANSFORMS[DEFAULT_TRANSFORM].columns.index("sampling")
    prices = [0.0] * A
    prices[sampling] = 100.0
    free, held = _drift_per_column(0.0), _drift_per_column(prices)
    others = [c for c in range(A) if c != sampling]
    assert held[sampling] < 0.5 * free[sampling], (free, held)
    assert held[others].sum() > 0.5 * free[others].sum(), (free, held)


def test_an_anchor_needs_an_entropy_term_and_a_matching_network():
    env = BatchedCurriculumVecEnv(1, budget=50, interval=25)
    policy = TaskSetPolicy(env.observation_space, env.action_space, lambda _: 3e-4)
    with pytest.raises(ValueError, match="ent_coef > 0"):
        policy.set_anchor(policy.actor, 1.0, 0.0)
    with pytest.raises(ValueError, match="must share the action transform"):
        policy.set_anchor(TaskSetActor(NetworkConfig(action_dim=2)), 1.0, 0.01)
    with pytest.raises(ValueError, match="one per action column"):
        policy.set_anchor(policy.actor, [1.0] * (A + 1), 0.01)
    with pytest.raises(ValueError, match=">= 0"):
        policy.set_anchor(policy.actor, [-1.0] + [0.0] * (A - 1), 0.01)
