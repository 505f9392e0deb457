"""Imitation warm start: labels from the loss_power family, cloning, and the PPO start."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from curriculum_rl.agents.config import config_from_dict
from curriculum_rl.agents.imitation import GAMMAS, GridDraw, clone, demonstrate, run_grids
from curriculum_rl.agents.train import make_env, make_model
from curriculum_rl.controllers.actions import GAMMA_SCALE
from curriculum_rl.controllers.inverse_error import ErrorPower
from curriculum_rl.controllers.learned import NetworkConfig, save_artifact
from curriculum_rl.suites import resolve_suite

TINY = {
    "env": {
        "suite": "synthetic-scales",
        "budget": 50,
        "interval": 25,
        "max_tasks": 8,
        "action": "loss_power",  # the family imitation clones
        "trainer": {"device": "cpu", "batch_size": 32, "proj_dim": 16, "val_probe": 16},
    },
    "ppo": {"n_steps": 4, "batch_size": 8, "n_epochs": 1},
    "train": {"n_envs": 2, "total_timesteps": 8},
    "eval": {"every": 0},
    "policy": {"hidden": 16},
}


@pytest.fixture(scope="module")
def demos():
    return demonstrate(config_from_dict(TINY), instances=3)


def test_each_instance_is_labelled_with_its_best_gamma(demos):
    assert len(demos.labels) == 3
    for label in demos.labels:
        scores = {float(g): s for g, s in label["scores"].items()}
        assert set(scores) == set(GAMMAS)
        assert scores[label["gamma"]] == min(scores.values())
    # one observation per decision of each best run, the label's gamma on its valid rows
    assert demos.observations.shape == (3 * 2, 8, demos.observations.shape[-1])
    valid = demos.observations[..., 0] > 0.5
    gammas = torch.tensor([label["gamma"] for label in demos.labels]).repeat_interleave(2)
    expected = (gammas / GAMMA_SCALE)[:, None].expand_as(valid)
    torch.testing.assert_close(demos.actions[..., 2][valid], expected[valid])
    assert (demos.actions[~valid] == 0).all() and (demos.actions[..., :2] == 0).all()


def test_the_clone_fits_the_demonstrations(demos):
    network = NetworkConfig(num_features=demos.observations.shape[-1], action_dim=3, hidden=16)
    actor = clone(demos, network, epochs=200, batch_size=8)
    valid = demos.observations[..., 0] > 0.5
    with torch.no_grad():
        predicted = actor(demos.observations)
    error = (predicted - demos.actions)[valid].abs().max()
    assert error < 0.05, error


def test_ppo_starts_from_the_initial_policy(demos, tmp_path):
    config = config_from_dict(TINY)
    env = make_env(config)
    try:
        fresh = make_model(config, env)
        policy = save_artifact(tmp_path / "bc", fresh.policy.actor, 8, action="loss_power")
        with torch.no_grad():
            fresh.policy.actor.head.bias.fill_(0.25)  # make the saved actor distinguishable
        save_artifact(tmp_path / "bc", fresh.policy.actor, 8, action="loss_power")
        warm = make_model(
            replace(config, train=replace(config.train, init_policy=str(policy))), env
        )
        torch.testing.assert_close(warm.policy.actor.head.bias, torch.full((3,), 0.25))
        assert warm.policy.actor.log_std.tolist() == [config.policy.log_std_init] * 3
        wrong = replace(config, policy=replace(config.policy, hidden=32))
        with pytest.raises(ValueError, match="must match"):
            make_model(replace(wrong, train=replace(wrong.train, init_policy=str(policy))), env)
    finally:
        env.close()


def test_grid_runs_give_the_same_numbers_batched_and_one_by_one():
    """Draws of one budget and shape train side by side; each keeps the numbers it has
    alone, in the order given, whatever it is batched with (here: 2 to 4 tasks)."""
    env = config_from_dict(TINY).env
    suite = resolve_suite("synthetic")
    draws = [GridDraw(suite.sample(s), s, 50, 100 + s) for s in range(4)]
    draws.append(GridDraw(suite.sample(9), 9, 75, 109))  # another budget: its own batch
    assert len({d.instance.num_tasks for d in draws}) > 1
    rules = [ErrorPower(0.0), ErrorPower(1.0)]
    one_by_one = run_grids(env, draws, rules, batch=1)
    batched = run_grids(env, draws, rules, batch=3)
    for alone, together, draw in zip(one_by_one, batched, draws, strict=True):
        assert (together.seed, together.budget, together.run_seed) == draw[1:]
        assert together.scores == alone.scores and alone.scores[0] != alone.scores[1]
        assert torch.equal(together.observations, alone.observations)
        assert together.observations.shape[:2] == (draw.budget // 25, 2)


class _Normalised(ErrorPower):
    """``ErrorPower(0)``'s decision with a loss normalisation of 1: it differs from its
    base only in the trainer's per-step objective."""

    def decide(self, signals):
        return replace(super().decide(signals), normalisation=torch.ones(signals.num_runs))


def test_a_grid_passes_each_rule_s_loss_normalisation_to_its_runs():
    """A rule that differs only in its loss normalisation scores in a grid as it does
    alone, not as its base."""
    env = config_from_dict(TINY).env
    draw = GridDraw(resolve_suite("synthetic-scales").sample(1), 1, 50, 101)
    (run,) = run_grids(env, [draw], [ErrorPower(0.0), _Normalised(0.0)])
    (alone,) = run_grids(env, [draw], [_Normalised(0.0)])
    assert run.scores[1] == alone.scores[0] and run.scores[0] != run.scores[1]
