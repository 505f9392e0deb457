"""The tokens family (procedural attention-trunk training problems)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from helpers import assert_family_trains_in_one_batch

from curriculum_rl.agents.config import load_config
from curriculum_rl.controllers.actions import action_transform
from curriculum_rl.suites import (
    ScalesSuite,
    TokensFamilySuite,
    TokensSuite,
    resolve_suite,
    resolve_suites,
)

ROOT = Path(__file__).resolve().parent.parent
SMALL_FAMILY = TokensFamilySuite(n_train=(64, 128), n_val=16, n_test=16, dim=8)


def test_instances_are_reproducible_and_vary_by_seed():
    a, b = SMALL_FAMILY.sample(3), SMALL_FAMILY.sample(3)
    assert a.tasks == b.tasks and a.info == b.info
    for da, db in zip(a.data, b.data, strict=True):
        assert torch.equal(da.x_train, db.x_train) and torch.equal(da.y_test, db.y_test)
    draws = {
        (tuple(t.name for t in i.tasks), i.info["concentration"])
        for i in (SMALL_FAMILY.sample(s) for s in range(10))
    }
    assert len(draws) == 10


def test_draws_stay_in_their_ranges_and_keep_a_target():
    seen_k, seen_aux, kinds = set(), set(), set()
    for seed in range(60):
        instance = SMALL_FAMILY.sample(seed)
        k = instance.num_tasks
        aux = sum(t.auxiliary for t in instance.tasks)
        assert 2 <= k <= 5 and 0 <= aux <= min(2, k - 1)
        assert instance.target_tasks
        assert 0.2 <= instance.info["concentration"] <= 3.0
        assert 64 <= instance.info["sizes"][0] <= 128
        seen_k.add(k)
        seen_aux.add(aux)
        kinds.update(t.kind for t in instance.tasks)
    assert seen_k == {2, 3, 4, 5} and seen_aux == {0, 1, 2}
    assert kinds == {"regression", "classification", "tagging"}


def test_two_trunks_draw_different_problems_for_one_seed():
    other = TokensFamilySuite(n_train=(64, 128), n_val=16, n_test=16, dim=8, vocab=7)
    drawn = [
        [t.name for t in suite.sample(s).tasks] for suite in (SMALL_FAMILY, other) for s in range(8)
    ]
    assert drawn[:8] != drawn[8:]


def _tokens_trunks(path: Path) -> set[tuple[int, int, int, int]]:
    """(vocab, length, dim, layers) of every attention-trunk suite a suite file holds."""
    trunks = set()
    for suite in resolve_suites(path):
        if isinstance(suite, TokensSuite | TokensFamilySuite):
            trunks.add((suite.vocab, suite.length, suite.dim, suite.layers))
    return trunks


def test_no_training_trunk_is_a_held_out_or_validation_suites_trunk():
    """The training families must not hold an evaluated suite's trunk (held-out honesty:
    a switch must read a regime, not recognise a trunk it was shown)."""
    training = _tokens_trunks(ROOT / "envs" / "train-tokens.toml")
    assert len(training) == 5
    evaluated = set()
    for path in sorted((ROOT / "envs").glob("*.toml")):
        if not path.name.startswith("train"):
            evaluated |= _tokens_trunks(path)
    assert len(evaluated) >= 15 and not training & evaluated


def test_the_training_file_loads_and_instances_train_in_one_batch():
    for name in ("shallow", "deep", "raw-wide", "raw-short"):
        name = f"tokens-family-{name}"
        assert isinstance(resolve_suite(f"envs/train-tokens.toml#{name}"), TokensFamilySuite)
    assert_family_trains_in_one_batch(SMALL_FAMILY, max_tasks=5)


def test_auxiliary_kinds_restrict_which_tasks_may_be_auxiliary():
    family = replace(SMALL_FAMILY, auxiliary=(1, 2), auxiliary_kinds=("classification", "tagging"))
    seen = set()
    for seed in range(30):
        instance = family.sample(seed)
        auxiliaries = [t for t in instance.tasks if t.auxiliary]
        assert all(t.kind in ("classification", "tagging") for t in auxiliaries)
        assert any(not t.auxiliary for t in instance.tasks)  # a target always remains
        seen.update(t.name for t in auxiliaries)
    assert seen == {"first_count", "frequency"}
    free = [[t.name for t in SMALL_FAMILY.sample(s).tasks if t.auxiliary] for s in range(30)]
    assert any(name in ("distinct", "top_count", "token_sum") for aux in free for name in aux)
    with pytest.raises(ValueError, match="auxiliary_kinds"):
        replace(SMALL_FAMILY, auxiliary_kinds=("regresion",))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_tasks", (1, 3), "num_tasks"),
        ("num_tasks", (2, 6), "num_tasks"),
        ("concentration", (0.0, 1.0), "concentration"),
        ("auxiliary", (2, 1), "auxiliary"),
        ("vocab", 1, "vocab"),
    ],
)
def test_bad_settings_name_the_problem(field, value, message):
    with pytest.raises(ValueError, match=message):
        TokensFamilySuite(**{field: value})


def test_tokens_finetune_recipe_starts_from_v5_and_trains_on_both_trunks():
    """agents/tokens-finetune.toml (RESULTS §25): v5's actor and transform, anchored to v5,
    with both tokens trunks in the mix and in [eval]."""
    config = load_config(ROOT / "agents" / "tokens-finetune.toml")
    start = json.loads((ROOT / config.train.init_policy).read_text())
    assert config.train.init_policy == "agents/v5.json" and config.ppo.anchor_kl > 0
    assert start["action"]["transform"] == config.env.action
    trunks = {f"envs/train-tokens.toml#tokens-family-{t}" for t in ("shallow", "deep")}
    assert trunks <= {m.suite for m in config.train.mix} and trunks <= set(config.eval.suites)
    for mixed in config.train.mix:
        resolve_suite(mixed.suite)


def test_anchored_tokens_recipe_differs_only_in_the_kl_price():
    """agents/tokens-finetune-anchored.toml (RESULTS §25c): three times the KL anchor."""
    config = load_config(ROOT / "agents" / "tokens-finetune-anchored.toml")
    base = load_config(ROOT / "agents" / "tokens-finetune.toml")
    assert config.ppo.anchor_kl == pytest.approx(3 * base.ppo.anchor_kl)
    assert replace(config, ppo=replace(config.ppo, anchor_kl=base.ppo.anchor_kl)) == base


def test_sampling_anchored_tokens_recipe_prices_only_sampling_higher():
    """agents/tokens-finetune-sampling-anchored.toml (RESULTS §26): the base recipe with
    ten times its KL price on the sampling column, nothing else changed."""
    config = load_config(ROOT / "agents" / "tokens-finetune-sampling-anchored.toml")
    base = load_config(ROOT / "agents" / "tokens-finetune.toml")
    assert config.ppo.anchor_kl_columns == {"sampling": pytest.approx(10 * base.ppo.anchor_kl)}
    assert replace(config, ppo=replace(config.ppo, anchor_kl_columns={})) == base


def test_residual_tokens_recipe_frees_only_the_weight_residual():
    """agents/tokens-finetune-residual.toml (RESULTS §26b): every column priced ten times
    the base recipe's anchor but the per-task weight residual, which keeps the base price."""
    config = load_config(ROOT / "agents" / "tokens-finetune-residual.toml")
    base = load_config(ROOT / "agents" / "tokens-finetune.toml")
    columns = action_transform(config.env.action).columns
    prices = config.ppo.anchor_prices(columns)
    assert prices == [
        base.ppo.anchor_kl if c == "weight" else 10 * base.ppo.anchor_kl for c in columns
    ]
    plain = replace(config.ppo, anchor_kl=base.ppo.anchor_kl, anchor_kl_columns={})
    assert replace(config, ppo=plain) == base


def test_counter_example_recipe_adds_gradnorm_problems_unlike_any_test_tier():
    """agents/tokens-finetune-counter.toml (RESULTS §26c): the sampling-anchored recipe plus
    the two suites of envs/train-gradnorm.toml, whose settings no test tier's GradNorm suite
    shares (training must not hold a test suite)."""
    config = load_config(ROOT / "agents" / "tokens-finetune-counter.toml")
    base = load_config(ROOT / "agents" / "tokens-finetune-sampling-anchored.toml")
    added = [m for m in config.train.mix if m not in base.train.mix]
    assert [m.suite for m in added] == [
        f"envs/train-gradnorm.toml#gradnorm-train-{size}" for size in ("few", "many")
    ]
    assert replace(config, train=replace(config.train, mix=base.train.mix)) == base
    trained = {_gradnorm_settings(resolve_suite(m.suite)) for m in added}
    tiers = sorted((ROOT / "envs").glob("test*.toml"))
    tested = [s for tier in tiers for s in resolve_suites(tier) if isinstance(s, ScalesSuite)]
    assert len(tested) >= 10  # every tier holds one
    assert not trained & {_gradnorm_settings(s) for s in tested}


def _gradnorm_settings(suite: ScalesSuite) -> tuple:
    return (suite.num_tasks, suite.scale_spread, suite.in_dim, suite.out_dim)
