"""The sequence family (procedural sequence-trunk training problems) and training on
several trunks at once through ``[[train.mix]]``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_family_trains_in_one_batch

from curriculum_rl.agents.config import config_from_dict, load_config
from curriculum_rl.agents.train import make_env, train
from curriculum_rl.agents.vec_env import BatchedCurriculumVecEnv, MixedCurriculumVecEnv
from curriculum_rl.suites import SequenceFamilySuite, resolve_suite

ROOT = Path(__file__).resolve().parent.parent
SMALL_FAMILY = SequenceFamilySuite(n_train=96, n_val=32, n_test=32, dim=8)
ENV = {
    "budget": 50,
    "interval": 25,
    "max_tasks": 8,
    "trainer": {"batch_size": 16, "proj_dim": 8, "val_probe": 16, "device": "cpu"},
}


def test_instances_are_reproducible_and_vary_by_seed():
    a, b, c = (SMALL_FAMILY.sample(s) for s in (3, 3, 4))
    assert a.tasks == b.tasks and a.info == b.info
    for da, db in zip(a.data, b.data, strict=True):
        assert torch.equal(da.x_train, db.x_train) and torch.equal(da.y_test, db.y_test)
    kinds = {(t.kind, t.out_dim) for s in range(30) for t in SMALL_FAMILY.sample(s).tasks}
    assert {"regression", "classification", "tagging"} == {kind for kind, _ in kinds}
    assert a.info != c.info


def test_every_instance_keeps_a_target_and_makes_noise_tasks_auxiliary():
    suite = SequenceFamilySuite(n_train=64, n_val=16, n_test=16, auxiliary=(3, 6))
    for seed in range(40):
        instance = suite.sample(seed)
        k = len(instance.tasks)
        assert suite.num_tasks[0] <= k <= suite.num_tasks[1]
        assert any(t.is_target for t in instance.tasks)
        for task, drawn in zip(instance.tasks, instance.info["tasks"], strict=True):
            if drawn["kind"] == "noise":
                assert task.auxiliary
        widest = suite.describe()
        assert len(widest) == suite.num_tasks[1]
        assert max(t.out_dim for t in instance.tasks) <= max(t.out_dim for t in widest)


def test_targets_match_their_definitions():
    suite = SequenceFamilySuite(n_train=200, n_val=20, n_test=20, noisy_tasks=(0, 0))
    checked = set()
    for seed in range(30):
        instance = suite.sample(seed)
        for data, drawn in zip(instance.data, instance.info["tasks"], strict=True):
            tokens = data.x_test.long()
            y = data.y_test
            if drawn["kind"] == "prev_token":
                assert torch.equal(y[:, 1:], tokens[:, :-1] + 1) and (y[:, 0] == 0).all()
            elif drawn["kind"] == "rises":
                assert torch.equal(y[:, 1:], (tokens[:, 1:] > tokens[:, :-1]).long())
            elif drawn["kind"] == "parity":
                assert torch.equal(y, (tokens == drawn["token"]).sum(1) % 2)
            elif drawn["kind"] == "count":
                # an affine map of the count: equal counts, equal targets; more, larger
                count = (tokens == drawn["token"]).sum(1).float()
                order = torch.argsort(count)
                assert (torch.diff(y[order, 0]) >= -1e-4 * drawn["scale"]).all()
            else:
                continue
            checked.add(drawn["kind"])
    assert checked == {"prev_token", "rises", "parity", "count"}


def test_the_training_spec_file_loads_and_instances_train_in_one_batch():
    suite = resolve_suite("envs/train-sequences.toml")
    assert isinstance(suite, SequenceFamilySuite)
    assert_family_trains_in_one_batch(SMALL_FAMILY, max_tasks=8)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_tasks", (3, 2), "num_tasks"),
        ("scale", (0.0, 1.0), "scale"),
        ("imbalance", (0.5, 2.0), "imbalance"),
        ("vocab", 2, "vocab >= 3"),
    ],
)
def test_bad_settings_name_the_problem(field, value, message):
    with pytest.raises(ValueError, match=message):
        SequenceFamilySuite(**{field: value})


def _blocks():
    first = BatchedCurriculumVecEnv(2, suite="synthetic", **ENV)
    second = BatchedCurriculumVecEnv(1, suite=SMALL_FAMILY, **ENV)
    return first, second


def test_mixed_env_slots_equal_their_blocks_alone():
    steps = 3  # crosses an episode boundary (2 decisions per episode)
    mixed = MixedCurriculumVecEnv(list(_blocks()))
    assert mixed.num_envs == 3
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(steps, 3, *mixed.action_space.shape)).astype(np.float32)
    mixed.seed(7)
    got = [mixed.reset()] + [mixed.step(actions[t])[0] for t in range(steps)]
    first, second = _blocks()
    first.seed(7)
    second.seed(9)  # the mixed env's slot 2 got seed 7 + 2
    alone = [np.concatenate([first.reset(), second.reset()])]
    for t in range(steps):
        alone.append(
            np.concatenate([first.step(actions[t, :2])[0], second.step(actions[t, 2:])[0]])
        )
    np.testing.assert_allclose(np.stack(got), np.stack(alone), rtol=1e-5, atol=1e-6)


def test_mixed_env_attributes_answer_per_slot_from_the_owning_block():
    mixed = MixedCurriculumVecEnv(list(_blocks()))
    mixed.set_attr("tag", "sequence", indices=[2])
    mixed.set_attr("tag", "mlp", indices=[0, 1])
    assert mixed.get_attr("tag") == ["mlp", "mlp", "sequence"]
    assert [b.tag for b in mixed.blocks] == ["mlp", "sequence"]
    assert mixed.env_method("get_attr", "num_envs", indices=[1, 2]) == [[2, 2], [1]]


def test_mixed_env_refuses_blocks_with_other_spaces():
    first = BatchedCurriculumVecEnv(1, suite="synthetic", **ENV)
    other = BatchedCurriculumVecEnv(1, suite=SMALL_FAMILY, **{**ENV, "max_tasks": 9})
    with pytest.raises(ValueError, match="same max_tasks and action"):
        MixedCurriculumVecEnv([first, other])


TINY_MIX = {
    "env": {**ENV, "suite": "synthetic"},
    "ppo": {"n_steps": 4, "batch_size": 12, "n_epochs": 1},
    "train": {
        "n_envs": 2,
        "total_timesteps": 24,
        "checkpoint_every": 12,
        "mix": [{"suite": "envs/train-sequences.toml", "n_envs": 1}],
    },
    "eval": {"every": 0},
}


def test_training_with_a_mix_uses_every_suite(tmp_path: Path):
    config = config_from_dict(TINY_MIX)
    env = make_env(config)
    try:
        blocks = env.venv.blocks
        assert [b.num_envs for b in blocks] == [2, 1]
        assert isinstance(blocks[1]._core.suite, SequenceFamilySuite)
    finally:
        env.close()
    result = train(config, tmp_path, progress=False, log=lambda _: None)
    assert result.timesteps >= 24 and (tmp_path / "policy.json").is_file()


def test_a_mix_may_run_on_ray_workers():
    # Each worker hosts the whole mixed env (tests/test_ray.py steps it).
    data = {**TINY_MIX, "train": {**TINY_MIX["train"], "workers": 2}}
    run = config_from_dict(data).train
    assert run.uses_ray and [(m.suite, m.n_envs) for m in run.mix] == [
        ("envs/train-sequences.toml", 1)
    ]


def test_mixed_config_is_wide_eval_with_a_sequence_mix():
    config = load_config(ROOT / "agents" / "mixed.toml")
    wide = load_config(ROOT / "agents" / "wide-eval.toml")
    assert [(m.suite, m.n_envs) for m in config.train.mix] == [("envs/train-sequences.toml", 4)]
    assert replace(config, train=replace(config.train, mix=[])) == wide


def test_mix_finetune_config_is_mixed_started_from_the_shipped_policy():
    config = load_config(ROOT / "agents" / "mix-finetune.toml")
    mixed = load_config(ROOT / "agents" / "mixed.toml")
    assert config.train.init_policy == "agents/v3.json"
    assert (ROOT / config.train.init_policy).is_file()
    as_mixed = replace(
        config,
        train=replace(config.train, init_policy="", total_timesteps=mixed.train.total_timesteps),
    )
    assert as_mixed == mixed


def test_anchor_finetune_recipe_is_mix_finetune_priced_against_its_start():
    """agents/anchor-finetune.toml (RESULTS §12) differs from mix-finetune only in the
    price on leaving the policy it starts from."""
    config = load_config(ROOT / "agents" / "anchor-finetune.toml")
    control = load_config(ROOT / "agents" / "mix-finetune.toml")
    assert config.env.emphasis_anchor == config.train.init_policy == "agents/v3.json"
    assert config.env.emphasis_cost > 0
    unpriced = replace(config, env=replace(config.env, emphasis_cost=0.0, emphasis_anchor=""))
    assert unpriced == control


def test_anchor_strong_recipe_is_anchor_finetune_at_ten_times_the_price():
    config = load_config(ROOT / "agents" / "anchor-strong.toml")
    base = load_config(ROOT / "agents" / "anchor-finetune.toml")
    assert config.env.emphasis_cost == pytest.approx(10 * base.env.emphasis_cost)
    assert replace(config, env=replace(config.env, emphasis_cost=base.env.emphasis_cost)) == base


def test_kl_finetune_recipe_is_mix_finetune_with_a_kl_price_in_the_loss():
    """agents/kl-finetune.toml (RESULTS §13) differs from mix-finetune only in [ppo]
    anchor_kl, which anchors to the policy it starts from."""
    config = load_config(ROOT / "agents" / "kl-finetune.toml")
    control = load_config(ROOT / "agents" / "mix-finetune.toml")
    assert config.ppo.anchor_kl > 0 and config.train.init_policy == "agents/v3.json"
    assert replace(config, ppo=replace(config.ppo, anchor_kl=0.0)) == control
