"""PPO learns: from scratch, on a tiny fixed suite where pacing pays, the trained policy's
held-out return beats the zero policy's (uniform weighting). Slow tier (~4 min)."""

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
# The per-task `logits` actions: in 8192 decisions PPO learns them here; the default
# `loss_power` family did not, even in 16384 (2026-12-02): its single shared gamma is a
# harder credit assignment on two tasks. The shipped policy's learning (`error_power`) is
# its evaluation curve (RESULTS.md section 9b).
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


def _train_actor(tmp_path, seed: int):
    config = config_from_dict(
        {
            "env": {**ENV, "suite": "synthetic"},
            "ppo": {"n_steps": 8, "batch_size": 64, "n_epochs": 10, "learning_rate": 3e-3},
            "train": {
                "n_envs": 8,
                "total_timesteps": 8192,
                "checkpoint_every": 10**6,
                "seed": seed,
            },
            "eval": {"every": 0},
        }
    )
    config = replace(config, env=replace(config.env, suite=SUITE))
    result = train(config, tmp_path / f"seed{seed}", progress=False, log=lambda _: None)
    return result.model.policy.actor.cpu().eval(), result.model.action_space.shape[-1]


@pytest.mark.slow
def test_ppo_from_scratch_beats_the_zero_policy_on_held_out_seeds(tmp_path):
    """Two training seeds, 16 held-out episodes each. One training seed on 8 episodes was
    too thin: a last-bit change of gradient order flipped it (2026-12-02). So was a
    learning rate of 1e-3: after the round-off of a run's per-task sums changed
    (2026-12-07), training seeds 0 to 3 gave mean held-out returns 1.26, 1.00, 1.41, 1.35
    against the zero policy's 1.29 (1.46 and 1.51 on seeds 0 and 1 before). At 3e-3 the
    same seeds gave 1.84, 1.35, 2.02, 1.24, the learned policy ahead on 8 to 16 of the 16
    episodes."""
    held_out = list(range(100, 116))  # training draws its episodes from other streams
    learned = []
    for seed in (0, 1):
        actor, actions = _train_actor(tmp_path, seed)
        learned.append(_returns(actor, held_out, actions))
    zero = _returns(None, held_out, actions)
    assert np.mean(learned) > zero.mean(), (learned, zero)
