"""PPO learns: from scratch, on a tiny fixed suite where pacing pays, the trained policy's
held-out return beats the zero policy's (uniform weighting). Slow tier (~3 min)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from curriculum_rl.agents.config import config_from_dict
from curriculum_rl.agents.train import train
from curriculum_rl.env import CurriculumEnv
from curriculum_rl.suites import SyntheticSetting, SyntheticSuite

# Two regression tasks whose outputs differ 1000-fold in scale: uniform weighting lets the
# large task's loss drown the small one's, and re-weighting gains ~0.6 in J here.
SUITE = SyntheticSuite(
    name="two-scales",
    settings=(
        SyntheticSetting(
            name="two-scales",
            num_tasks=(2, 2),
            scale_spread=(1000.0, 1000.0),
            relatedness=(0.5, 0.5),
            difficulty=(0.0, 0.2),
        ),
    ),
)
# The per-task `logits` actions: in 8192 decisions PPO learns them here (held-out return
# 1.49 vs 1.35); the default `loss_power` family did not, even in 16384 (1.25 vs 1.35,
# 2026-12-02): its single shared gamma is a harder credit assignment on two tasks. The
# shipped policy's learning (`error_power`) is its evaluation curve (RESULTS.md section 9b).
ENV = {
    "budget": 200,
    "interval": 25,
    "max_tasks": 4,
    "action": "logits",
    "trainer": {"device": "cpu"},
}


def _returns(actor, seeds: list[int], actions: int) -> np.ndarray:
    """Episode returns of the deterministic actor (``None``: the zero action)."""
    totals = []
    for seed in seeds:
        env = CurriculumEnv(suite=SUITE, **ENV)
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            if actor is None:
                action = np.zeros((ENV["max_tasks"], actions), np.float32)
            else:
                with torch.no_grad():
                    action = actor(torch.from_numpy(obs)[None])[0].numpy()
            obs, reward, done, _, _ = env.step(action)
            total += reward
        totals.append(total)
    return np.array(totals)


@pytest.mark.slow
def test_ppo_from_scratch_beats_the_zero_policy_on_held_out_seeds(tmp_path):
    config = config_from_dict(
        {
            "env": {**ENV, "suite": "synthetic"},
            "ppo": {"n_steps": 8, "batch_size": 64, "n_epochs": 10, "learning_rate": 1e-3},
            "train": {"n_envs": 8, "total_timesteps": 8192, "checkpoint_every": 10**6},
            "eval": {"every": 0},
        }
    )
    config = replace(config, env=replace(config.env, suite=SUITE))
    result = train(config, tmp_path, progress=False, log=lambda _: None)
    actor = result.model.policy.actor.cpu().eval()
    seeds = list(range(100, 108))  # training draws its episodes from other streams
    actions = result.model.action_space.shape[-1]
    zero, learned = _returns(None, seeds, actions), _returns(actor, seeds, actions)
    assert learned.mean() > zero.mean(), (learned, zero)
