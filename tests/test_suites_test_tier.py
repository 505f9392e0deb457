"""The test tiers (envs/test.toml, envs/test-b.toml to envs/test-t.toml): every suite
resolves, is deterministic given the seed, validates, has its stated K and auxiliaries, and
trains in the batched trainer; each later tier shares no suite with the earlier ones,
training or validation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from curriculum_rl.suites import Suite, SuiteInstance, resolve_suite, resolve_suites
from curriculum_rl.suites.registry import registered_suites
from curriculum_rl.suites.spec_file import load_suites
from curriculum_rl.trainer import BatchedMultitaskTrainer, TrainerConfig

TEST_TIER = "envs/test.toml"
TIER_B = "envs/test-b.toml"
TIER_C = "envs/test-c.toml"
TIER_D = "envs/test-d.toml"
TIER_E = "envs/test-e.toml"
TIER_F = "envs/test-f.toml"
TIER_G = "envs/test-g.toml"
TIER_H = "envs/test-h.toml"
TIER_I = "envs/test-i.toml"
TIER_J = "envs/test-j.toml"
TIER_K = "envs/test-k.toml"
TIER_L = "envs/test-l.toml"
TIER_M = "envs/test-m.toml"
TIER_N = "envs/test-n.toml"
TIER_O = "envs/test-o.toml"
TIER_P = "envs/test-p.toml"
TIER_Q = "envs/test-q.toml"
TIER_R = "envs/test-r.toml"
TIER_S = "envs/test-s.toml"
TIER_T = "envs/test-t.toml"

EXPECTED = {  # suite -> (K, auxiliary tasks)
    "wine": (5, set()),
    "breast-cancer": (2, set()),
    "diabetes": (4, set()),
    "digits-conv": (5, {"row_peak"}),
    "tokens": (5, set()),
    "gradnorm-scales": (10, set()),
    "near-zero": (6, set()),
    "teacher-aux": (
        12,
        {f"helpful{i}" for i in range(6)}
        | {f"unrelated{i}" for i in range(3)}
        | {"noise0", "noise1"},
    ),
}

EXPECTED_B = {  # suite -> (K of seed 0, auxiliary tasks); tier B's names are not registered
    "iris": (3, set()),
    "diabetes-blood": (6, set()),
    "gradnorm-wide": (16, set()),
    "tokens-deep": (5, set()),
    "near-zero-noisy": (6, {"wave", "xor"}),
    "teacher-noisy": (
        9,
        {"helpful0", "helpful1", "unrelated0", "unrelated1"} | {f"noise{i}" for i in range(4)},
    ),
    "digits-conv-thin": (5, set()),
    "synthetic-raw-xl": (6, set()),
}
EXPECTED_C = {  # suite -> (K of seed 0, auxiliary tasks of seed 0); not registered either
    "wine-chem": (5, set()),
    "breast-cancer-shape": (5, set()),
    "gradnorm-many": (24, set()),
    "tokens-aux": (5, {"distinct", "top_count", "token_sum"}),
    "near-zero-clean": (6, set()),
    "teacher-wide": (
        21,
        {f"helpful{i}" for i in range(10)}
        | {f"unrelated{i}" for i in range(4)}
        | {f"noise{i}" for i in range(6)},
    ),
    "synthetic-duo": (2, set()),
    "synthetic-aux-easy": (12, {"task1", "task2", "task6", "task9", "task11"}),
}
EXPECTED_D = {  # suite -> (K of seed 0, auxiliary tasks of seed 0); not registered either
    "tokens-raw-targets": (5, {"first_count", "frequency"}),
    "wine-raw-aux": (5, {"proline", "magnesium", "color_intensity"}),
    "diabetes-one-target": (6, {"sex", "bp", "s1", "s3", "s6"}),
    "teacher-noise-heavy": (
        13,
        {"helpful0", "helpful1", "unrelated0", "unrelated1"} | {f"noise{i}" for i in range(8)},
    ),
    "digits-conv-aux": (5, {"ink", "mirror", "row_peak"}),
    "near-zero-aux": (6, {"linear", "separable", "product"}),
    "synthetic-aux-wide": (10, {"task0", "task5", "task7", "task8"}),
    "synthetic-conflict": (5, set()),
    "gradnorm-steep": (6, set()),
}
EXPECTED_E = {  # suite -> (K of seed 0, auxiliary tasks of seed 0); not registered either
    "breast-cancer-diagnosis": (2, {"worst_area"}),
    "cancer-smoothness-target": (4, {"mean_texture", "mean_area", "area_error"}),
    "iris-species-aux": (3, {"petal_length", "petal_width"}),
    "teacher-helpful": (15, {f"helpful{i}" for i in range(12)} | {"unrelated0", "noise0"}),
    "digits-conv-class-aux": (5, {"class"}),
    "near-zero-thin-margin": (5, {"wave"}),
    "synthetic-classes-raw-aux": (7, {"task1", "task2"}),
    "tokens-flat": (4, set()),
    "gradnorm-extreme": (4, set()),
    "synthetic-many-classes": (6, set()),
}
EXPECTED_F = {  # suite -> (K of seed 0, auxiliary tasks of seed 0); not registered either
    "wine-cultivar-hue": (4, {"proline", "magnesium"}),
    "diabetes-blood-scored": (4, set()),
    "iris-petal-width-target": (3, {"species", "petal_length"}),
    "teacher-noisy-majority": (
        10,
        {"helpful0", "helpful1"}
        | {f"unrelated{i}" for i in range(3)}
        | {f"noise{i}" for i in range(4)},
    ),
    "digits-conv-narrow": (4, {"row_peak"}),
    "near-zero-wide-margin": (4, set()),
    "synthetic-pair-conflict": (2, set()),
    "tokens-long-aux": (5, {"distinct", "top_count"}),
    "gradnorm-many-mild": (14, set()),
    "synthetic-wide-aux": (14, {"task3", "task5", "task8", "task10", "task13"}),
}
EXPECTED_G = {  # suite -> (K of seed 0, auxiliary tasks of seed 0); not registered either
    "wine-chem-cultivar-aux": (5, {"cultivar"}),
    "cancer-worst-area-target": (2, {"diagnosis"}),
    "diabetes-sex-bmi-s5": (3, set()),
    "teacher-unrelated-majority": (
        17,
        {f"helpful{i}" for i in range(3)}
        | {f"unrelated{i}" for i in range(9)}
        | {f"noise{i}" for i in range(4)},
    ),
    "digits-conv-mirror-aux": (5, {"mirror", "top_heavy"}),
    "near-zero-xor-aux": (4, {"xor"}),
    "synthetic-raw-offset-aux": (8, {"task0", "task2", "task5"}),
    "tokens-peaked-counts": (3, set()),
    "gradnorm-wide-saturated": (18, set()),
    "synthetic-easy-beside-noisy": (5, set()),
}
EXPECTED_H = {  # suite -> (K of seed 0, auxiliary tasks of seed 0); not registered either
    "cancer-area-error-texture": (4, {"diagnosis", "mean_smoothness"}),
    "iris-petal-length-target": (2, {"species"}),
    "diabetes-hdl-glucose-sex": (3, set()),
    "teacher-noise-dominated": (
        16,
        {f"helpful{i}" for i in range(4)} | {"unrelated0"} | {f"noise{i}" for i in range(10)},
    ),
    "digits-conv-class-ink-aux": (4, {"class", "ink"}),
    "near-zero-easy-aux": (4, {"hinge", "separable"}),
    "synthetic-conflict-raw-aux": (11, {"task0", "task1", "task7", "task10"}),
    "tokens-short-wide-vocab": (4, set()),
    "gradnorm-many-outputs": (20, set()),
    "synthetic-tiny-noisy-raw": (3, set()),
}
EXPECTED_I = {  # suite -> (K of seed 0, auxiliary tasks of seed 0); not registered either
    "wine-color-proline-aux": (4, {"cultivar", "proline"}),
    "chem-alcohol-cultivar-aux": (2, {"cultivar"}),
    "diabetes-progression-s5-sex": (3, set()),
    "teacher-tiny-main-few-aux": (
        12,
        {f"helpful{i}" for i in range(7)} | {"unrelated0", "unrelated1"} | {"noise0", "noise1"},
    ),
    "digits-conv-row-peak-scored": (3, set()),
    "near-zero-product-wave": (4, set()),
    "synthetic-easy-raw-aux": (6, {"task0", "task1"}),
    "tokens-frequency-sum-aux": (3, {"token_sum"}),
    "gradnorm-steep-many": (22, set()),
    "synthetic-noisy-raw-spread": (7, set()),
}
EXPECTED_J = {  # suite -> (K of seed 0, auxiliary tasks of seed 0); not registered either
    "blood-cholesterol-target": (4, {"s3", "bp", "progression"}),
    "teacher-crowded-balanced": (
        23,
        {f"helpful{i}" for i in range(9)}
        | {f"unrelated{i}" for i in range(6)}
        | {f"noise{i}" for i in range(7)},
    ),
    "digits-conv-mirror-target": (3, {"class", "row_peak"}),
    "near-zero-product-hinge-aux": (5, {"linear", "wave", "xor"}),
    "synthetic-noise-aux-many": (16, {"task5", "task10"}),
    "iris-width-species-scored": (2, set()),
    "cancer-area-smoothness-scored": (3, set()),
    "tokens-long-count-tags": (4, set()),
    "gradnorm-tight-four-outputs": (17, set()),
    "synthetic-noisy-offset-classes": (4, set()),
}
EXPECTED_K = {  # suite -> (K of seed 0, auxiliary tasks of seed 0); not registered either
    "diabetes-bmi-target": (2, {"progression"}),
    "teacher-distractors-no-noise": (14, {"helpful0"} | {f"unrelated{i}" for i in range(12)}),
    "near-zero-xor-target": (6, {"linear", "hinge", "separable", "product", "wave"}),
    "synthetic-crowd-easy-aux": (
        21,
        {"task4", "task6", "task9", "task10", "task12", "task13", "task14", "task17", "task18"},
    ),
    "tokens-top-count-target": (4, {"distinct", "first_count", "frequency"}),
    "wine-raw-columns-scored": (3, set()),
    "digits-conv-no-class-scored": (4, set()),
    "tokens-three-layer-small-vocab": (3, set()),
    "gradnorm-dissimilar-six-out": (21, set()),
    "synthetic-hard-noisy-spread": (8, set()),
}
EXPECTED_L = {  # suite -> (K of seed 0, auxiliary tasks of seed 0); not registered either
    "chem-flavanoids-target": (3, {"cultivar", "alcalinity"}),
    "teacher-rich-target-scarce-aux": (
        9,
        {f"helpful{i}" for i in range(5)} | {f"noise{i}" for i in range(3)},
    ),
    "near-zero-wave-target": (4, {"linear", "hinge", "separable"}),
    "synthetic-imbalanced-aux-rough": (9, {"task2", "task6", "task7"}),
    "tokens-first-count-target": (4, {"token_sum", "frequency", "distinct"}),
    "iris-petals-scored": (2, set()),
    "digits-conv-classes-scored": (3, set()),
    "tokens-four-layer-tiny-vocab": (3, set()),
    "gradnorm-crowd-steep": (26, set()),
    "synthetic-easy-conflict-classes": (11, set()),
}
EXPECTED_M = {  # suite -> (K of seed 0, auxiliary tasks of seed 0); not registered either
    "diabetes-progression-target": (3, {"bmi", "s5"}),
    "teacher-mid-main-mixed-aux": (
        10,
        {f"helpful{i}" for i in range(4)} | {f"unrelated{i}" for i in range(4)} | {"noise0"},
    ),
    "near-zero-product-xor-targets": (4, {"hinge", "wave"}),
    "synthetic-offset-helpful-aux": (7, {"task3"}),
    "tokens-frequency-target": (3, {"top_count", "distinct"}),
    "chem-malic-cultivar-scored": (2, set()),
    "digits-conv-class-mirror-ink": (3, set()),
    "tokens-sum-count-tags-scored": (4, set()),
    "gradnorm-mid-spread-three-out": (23, set()),
    "synthetic-moderate-broad-mix": (13, set()),
}
EXPECTED_N = {  # suite -> (K of seed 0, auxiliary tasks of seed 0); not registered either
    "chem-alcohol-malic-targets": (3, {"cultivar"}),
    "teacher-half-noise-aux": (
        9,
        {f"helpful{i}" for i in range(3)} | {"unrelated0"} | {f"noise{i}" for i in range(4)},
    ),
    "near-zero-four-targets-linear-aux": (5, {"linear"}),
    "synthetic-few-tasks-one-aux": (4, {"task0"}),
    "tokens-count-sum-targets": (4, {"frequency", "first_count"}),
    "diabetes-bmi-s5-scored": (2, set()),
    "digits-conv-mirror-ink-scored": (2, set()),
    "tokens-three-layer-sum-distinct": (2, set()),
    "gradnorm-one-layer-steep-one-out": (26, set()),
    "synthetic-offset-easy-rare-classes": (9, set()),
}
EXPECTED_O = {  # suite -> (K of seed 0, auxiliary tasks of seed 0); not registered either
    "blood-glucose-sex-targets": (3, {"progression"}),
    "teacher-crowd-thin-aux": (
        27,
        {f"helpful{i}" for i in range(10)}
        | {f"unrelated{i}" for i in range(6)}
        | {f"noise{i}" for i in range(10)},
    ),
    "near-zero-linear-hinge-xor-targets": (5, {"product", "wave"}),
    "synthetic-raw-aux-tiny-targets": (7, {"task1"}),
    "tokens-distinct-top-count-targets": (3, {"token_sum"}),
    "iris-length-species-scored": (2, set()),
    "digits-conv-no-ink-scored": (4, set()),
    "tokens-three-layer-even-counts": (3, set()),
    "gradnorm-thirty-saturated-three-out": (30, set()),
    "synthetic-rank-two-many-classes": (5, set()),
}
EXPECTED_P = {  # suite -> (K of seed 0, auxiliary tasks of seed 0); not registered either
    "diabetes-sex-target": (4, {"bmi", "progression", "s5"}),
    "teacher-unrelated-crowd-one-helpful": (11, {"helpful0"} | {f"unrelated{i}" for i in range(9)}),
    "near-zero-hinge-target-separable-aux": (2, {"separable"}),
    "synthetic-raw-conflict-seven-aux": (
        17,
        {"task3", "task5", "task6", "task8", "task11", "task13", "task14"},
    ),
    "tokens-frequency-top-first-targets": (5, {"distinct", "token_sum"}),
    "diabetes-sex-s5-scored": (2, set()),
    "digits-conv-class-mirror-scored": (2, set()),
    "tokens-three-layer-sum-top-first-scored": (3, set()),
    "gradnorm-saturated-alike-three-out": (23, set()),
    "synthetic-far-offset-conflict-classes": (11, set()),
}
EXPECTED_Q = {  # suite -> (K of seed 0, auxiliary tasks of seed 0); not registered either
    "chem-alcohol-flavanoids-targets": (3, {"malic_acid"}),
    "teacher-narrow-trunk-helpful-noise": (
        17,
        {f"helpful{i}" for i in range(8)} | {"unrelated0"} | {f"noise{i}" for i in range(7)},
    ),
    "near-zero-noisy-wave-aux": (5, {"wave"}),
    "synthetic-offset-shrunk-targets-raw-aux": (
        19,
        {"task1", "task2", "task4", "task7", "task16", "task17", "task18"},
    ),
    "tokens-sum-first-count-targets": (5, {"frequency", "top_count", "distinct"}),
    "cancer-diagnosis-texture-scored": (2, set()),
    "digits-conv-no-top-heavy-scored": (4, set()),
    "tokens-long-top-count-tags-scored": (2, set()),
    "gradnorm-mild-spread-eight-out": (26, set()),
    "synthetic-rank-two-far-offset-easy-noisy": (6, set()),
}
EXPECTED_R = {  # suite -> (K of seed 0, auxiliary tasks of seed 0); not registered either
    "blood-sex-pressure-targets": (4, {"s3", "s6"}),
    "teacher-ample-target-mixed-crowd": (
        26,
        {f"helpful{i}" for i in range(8)}
        | {f"unrelated{i}" for i in range(7)}
        | {f"noise{i}" for i in range(10)},
    ),
    "near-zero-heavy-wave-hinge-aux": (4, {"hinge"}),
    "synthetic-imbalanced-noisy-raw-aux": (
        8,
        {"task0", "task1", "task3", "task4", "task5", "task6", "task7"},
    ),
    "tokens-four-layer-counts-sum-aux": (4, {"token_sum"}),
    "wine-magnesium-color-scored": (2, set()),
    "digits-conv-top-heavy-ink-scored": (2, set()),
    "tokens-long-two-layer-top-first-scored": (2, set()),
    "gradnorm-loose-perturbed-four-out": (27, set()),
    "synthetic-rough-raw-offset-rare-classes": (14, set()),
}
EXPECTED_S = {  # suite -> (K of seed 0, auxiliary tasks of seed 0); not registered either
    "blood-hdl-target-three-aux": (4, {"bp", "s1", "sex"}),
    "teacher-tiny-clean-target-distracted": (
        15,
        {f"helpful{i}" for i in range(4)}
        | {f"unrelated{i}" for i in range(7)}
        | {f"noise{i}" for i in range(3)},
    ),
    "near-zero-linear-target-product-aux": (2, {"product"}),
    "synthetic-class-heavy-offset-noisy-aux": (
        15,
        {"task4", "task5", "task6", "task10", "task11", "task12", "task14"},
    ),
    "tokens-three-layer-sum-target-tags-aux": (2, {"frequency"}),
    "diabetes-progression-s5-scored": (2, set()),
    "digits-conv-no-mirror-scored": (4, set()),
    "tokens-three-layer-flat-distinct-tags-scored": (3, set()),
    "gradnorm-mild-spread-loose-six-out": (27, set()),
    "synthetic-rank-eight-conflict-imbalanced": (10, set()),
}
EXPECTED_T = {  # suite -> (K of seed 0, auxiliary tasks of seed 0); not registered either
    "diabetes-s5-target-sex-aux": (2, {"sex"}),
    "teacher-noisy-target-helpful-crowd": (
        27,
        {f"helpful{i}" for i in range(12)}
        | {f"unrelated{i}" for i in range(9)}
        | {f"noise{i}" for i in range(5)},
    ),
    "near-zero-easy-targets-wave-xor-aux": (4, {"xor", "wave"}),
    "synthetic-steep-spread-shrunk-targets-aux": (
        13,
        {"task1", "task3", "task5", "task10", "task12"},
    ),
    "tokens-long-distinct-target-sum-aux": (2, {"token_sum"}),
    "chem-alcohol-cultivar-scored": (2, set()),
    "digits-conv-class-ink-scored": (2, set()),
    "tokens-three-layer-peaked-no-first-count-scored": (4, set()),
    "gradnorm-steep-small-input-five-out": (24, set()),
    "synthetic-thin-trunk-offset-easy-classes": (12, set()),
}
# The synthetic generator draws K, task kinds and auxiliaries per seed.
VARIABLE_K = {
    "synthetic-raw-xl", "synthetic-duo", "synthetic-aux-easy", "synthetic-aux-wide",
    "synthetic-conflict", "synthetic-classes-raw-aux", "synthetic-many-classes",
    "synthetic-pair-conflict", "synthetic-wide-aux", "synthetic-raw-offset-aux",
    "synthetic-easy-beside-noisy", "synthetic-conflict-raw-aux", "synthetic-tiny-noisy-raw",
    "synthetic-easy-raw-aux", "synthetic-noisy-raw-spread", "synthetic-noise-aux-many",
    "synthetic-noisy-offset-classes", "synthetic-crowd-easy-aux", "synthetic-hard-noisy-spread",
    "synthetic-imbalanced-aux-rough", "synthetic-easy-conflict-classes",
    "synthetic-offset-helpful-aux", "synthetic-moderate-broad-mix",
    "synthetic-few-tasks-one-aux", "synthetic-offset-easy-rare-classes",
    "synthetic-raw-aux-tiny-targets", "synthetic-rank-two-many-classes",
    "synthetic-raw-conflict-seven-aux", "synthetic-far-offset-conflict-classes",
    "synthetic-offset-shrunk-targets-raw-aux", "synthetic-rank-two-far-offset-easy-noisy",
    "synthetic-imbalanced-noisy-raw-aux", "synthetic-rough-raw-offset-rare-classes",
    "synthetic-class-heavy-offset-noisy-aux", "synthetic-rank-eight-conflict-imbalanced",
    "synthetic-steep-spread-shrunk-targets-aux", "synthetic-thin-trunk-offset-easy-classes",
}  # fmt: skip
TIERS = {
    TEST_TIER: EXPECTED,
    TIER_B: EXPECTED_B,
    TIER_C: EXPECTED_C,
    TIER_D: EXPECTED_D,
    TIER_E: EXPECTED_E,
    TIER_F: EXPECTED_F,
    TIER_G: EXPECTED_G,
    TIER_H: EXPECTED_H,
    TIER_I: EXPECTED_I,
    TIER_J: EXPECTED_J,
    TIER_K: EXPECTED_K,
    TIER_L: EXPECTED_L,
    TIER_M: EXPECTED_M,
    TIER_N: EXPECTED_N,
    TIER_O: EXPECTED_O,
    TIER_P: EXPECTED_P,
    TIER_Q: EXPECTED_Q,
    TIER_R: EXPECTED_R,
    TIER_S: EXPECTED_S,
    TIER_T: EXPECTED_T,
}
CASES = [(path, name) for path, expected in TIERS.items() for name in expected]

CONFIG = TrainerConfig(batch_size=32, proj_dim=16, val_probe=16, device="cpu")


@pytest.fixture(scope="module")
def tier() -> dict[tuple[str, str], tuple[Suite, SuiteInstance, SuiteInstance, SuiteInstance]]:
    """Each (tier, suite) with its instances for seeds 0, 0 again and 1 (data sets load once)."""
    return {
        (path, s.name): (s, s.sample(0), s.sample(0), s.sample(1))
        for path in TIERS
        for s in resolve_suites(path)
    }


def tensors(instance: SuiteInstance) -> list[torch.Tensor]:
    return [t for d in instance.data for xy in d.splits().values() for t in xy]


def test_the_tiers_hold_the_stated_suites_disjoint_from_training_and_validation(tier):
    assert list(tier) == CASES
    used = set(load_suites("envs/heldout.toml")) | set(load_suites("envs/train.toml"))
    assert not used & {name for _, name in CASES}
    assert not set(EXPECTED) & set(EXPECTED_B)
    assert not (set(EXPECTED) | set(EXPECTED_B)) & set(EXPECTED_C)
    assert not (set(EXPECTED) | set(EXPECTED_B) | set(EXPECTED_C)) & set(EXPECTED_D)
    assert not set(load_suites("envs/heldout-aux.toml")) & set(EXPECTED_D)
    assert min(k for k, _ in EXPECTED.values()) == 2
    assert max(k for k, _ in EXPECTED.values()) >= 12
    assert max(k for k, _ in EXPECTED_B.values()) > 12  # beyond the training env's K_max
    assert max(k for k, _ in EXPECTED_C.values()) > 16  # beyond every tier and training
    earlier = set(EXPECTED) | set(EXPECTED_B) | set(EXPECTED_C) | set(EXPECTED_D)
    newest_tiers = (EXPECTED_E, EXPECTED_F, EXPECTED_G, EXPECTED_H, EXPECTED_I, EXPECTED_J)
    later_tiers = (
        EXPECTED_K,
        EXPECTED_L,
        EXPECTED_M,
        EXPECTED_N,
        EXPECTED_O,
        EXPECTED_P,
        EXPECTED_Q,
        EXPECTED_R,
        EXPECTED_S,
        EXPECTED_T,
    )
    for newest in (*newest_tiers, *later_tiers):
        assert not (earlier | set(registered_suites())) & set(newest)
        assert min(k for k, _ in newest.values()) == 2
        assert max(k for k, _ in newest.values()) >= 14
        earlier |= set(newest)


def unnamed(suite: Suite) -> Suite:
    """A suite's configuration with its names (a synthetic setting's too) made equal."""
    if hasattr(suite, "settings"):
        suite = replace(suite, settings=tuple(replace(s, name="x") for s in suite.settings))
    return replace(suite, name="x")


@pytest.mark.parametrize(
    "newest",
    [
        TIER_E,
        TIER_F,
        TIER_G,
        TIER_H,
        TIER_I,
        TIER_J,
        TIER_K,
        TIER_L,
        TIER_M,
        TIER_N,
        TIER_O,
        TIER_P,
        TIER_Q,
        TIER_R,
        TIER_S,
        TIER_T,
    ],
)
def test_the_newest_tiers_copy_no_configuration_of_any_other_suite_file(newest):
    other = [p for p in sorted(Path("envs").glob("*.toml")) if str(p) != newest]
    earlier_tiers = {Path(path).name for path in TIERS if path not in (TEST_TIER, TIER_B, TIER_C)}
    earlier_tiers -= {Path(newest).name}  # tiers D onward, every other one of them
    assert {"train.toml", "heldout-aux.toml"} | earlier_tiers <= {p.name for p in other}
    suites = [s for path in other for s in load_suites(path).values()]
    tier = load_suites(newest)
    assert not {s.name for s in suites} & set(tier)  # names disjoint from every other file
    configs = {unnamed(s) for s in suites}
    assert not configs & {unnamed(s) for s in tier.values()}  # no renamed copy


@pytest.mark.parametrize(("path", "name"), CASES)
def test_suite_is_deterministic_validates_and_has_its_tasks(tier, path, name):
    suite, a, b, other = tier[path, name]
    k, auxiliary = TIERS[path][name]
    assert all(torch.equal(x, y) for x, y in zip(tensors(a), tensors(b), strict=True))
    assert not all(
        x.shape == y.shape and torch.equal(x, y)
        for x, y in zip(tensors(a), tensors(other), strict=True)
    )
    a.validate()
    assert a.num_tasks == k and {t.name for t in a.tasks if t.auxiliary} == auxiliary
    if name not in VARIABLE_K:  # describe() lists every task; a generator's, the widest
        assert a.tasks == suite.describe()
    assert resolve_suite(f"{path}#{name}") == suite
    if path == TEST_TIER:
        assert resolve_suite(name) == suite


@pytest.mark.parametrize(("path", "name"), CASES)
def test_suite_trains_two_seeds_batched_with_finite_losses(tier, path, name):
    suite, a, _, other = tier[path, name]
    out_max = max(t.out_dim for t in suite.describe())
    trainer = BatchedMultitaskTrainer([a, other], [0, 1], CONFIG, out_max=out_max)
    trainer.train(3)
    m = trainer.measure()
    assert torch.isfinite(m.val_loss).all() and torch.isfinite(m.j).all()
    assert not m.diverged.any()
    targets = [not t.auxiliary for t in a.tasks]
    assert m.objective[0].tolist()[: a.num_tasks] == targets


def test_real_suites_keep_raw_targets_and_standardised_inputs(tier):
    wine = tier[TEST_TIER, "wine"][1]
    proline = wine.data[[t.name for t in wine.tasks].index("proline")].y_train
    assert proline.mean().item() > 300  # raw units, as in the data set
    assert wine.tasks[0].out_dim == 3 and set(wine.data[0].y_train.tolist()) == {0, 1, 2}
    x = wine.data[0].x_train
    assert x.mean(0).abs().max().item() < 1e-5
    assert (x.std(0, unbiased=False) - 1).abs().max().item() < 1e-4
    cancer = tier[TEST_TIER, "breast-cancer"][1]
    assert cancer.data[1].y_train.var().item() > 1e4  # worst area, variance ~3e5
    blood = tier[TIER_B, "diabetes-blood"][1]
    assert blood.input_shape == (5,)  # age, bmi, s2, s4, s5: every target column left the inputs
    assert blood.data[3].y_train.mean().item() > 100  # total cholesterol in mg/dl
    iris = tier[TIER_B, "iris"][1]
    assert iris.input_shape == (2,) and set(iris.data[0].y_train.tolist()) == {0, 1, 2}
    chem = tier[TIER_C, "wine-chem"][1]
    assert chem.input_shape == (8,)  # 13 columns less 4 targets and total phenols
    assert chem.data[3].y_train.mean().item() > 15  # alcalinity of ash, uncentred
    shape = tier[TIER_C, "breast-cancer-shape"][1]
    assert shape.input_shape == (17,)  # 30 columns less 4 targets and 9 near-copies
    variances = [shape.data[i].y_train.var().item() for i in (2, 3)]  # area, smoothness
    assert variances[0] / variances[1] > 1e8
    smooth = tier[TIER_E, "cancer-smoothness-target"][1]
    assert smooth.input_shape == (17,)  # diagnosis left out of the tasks changes no input
    assert smooth.target_tasks == [0] and smooth.data[0].y_train.var().item() < 1e-3
    assert smooth.data[2].y_train.var().item() > 1e4  # mean_area, an auxiliary, raw
    area = tier[TIER_G, "cancer-worst-area-target"][1]
    assert area.target_tasks == [1] and area.data[1].y_train.var().item() > 1e4  # raw target
    sex = tier[TIER_G, "diabetes-sex-bmi-s5"][1]
    assert sex.input_shape == (7,)  # every diabetes task column leaves, chosen or not
    assert sex.data[1].y_train.mean().item() > 20  # bmi, uncentred
    length = tier[TIER_H, "iris-petal-length-target"][1]
    assert length.target_tasks == [0] and length.input_shape == (2,)
    assert length.data[0].y_train.mean().item() > 3  # petal length in cm, uncentred
    hdl = tier[TIER_H, "diabetes-hdl-glucose-sex"][1]
    assert hdl.input_shape == (5,)  # every diabetes_blood task column leaves, chosen or not
    assert hdl.data[0].y_train.mean().item() > 30  # s3 (HDL) in mg/dl, raw
    error = tier[TIER_H, "cancer-area-error-texture"][1]
    assert error.target_tasks == [0, 1] and error.data[0].y_train.var().item() > 1e3
    assert error.data[3].y_train.var().item() < 1e-3  # mean_smoothness, a tiny auxiliary
    color = tier[TIER_I, "wine-color-proline-aux"][1]
    assert color.target_tasks == [0, 1] and color.input_shape == (9,)
    assert color.data[3].y_train.var().item() > 1e4  # proline, a raw auxiliary
    alcohol = tier[TIER_I, "chem-alcohol-cultivar-aux"][1]
    assert alcohol.target_tasks == [0] and alcohol.input_shape == (8,)
    assert alcohol.data[0].y_train.mean().item() > 10  # alcohol in % vol, uncentred
    progression = tier[TIER_I, "diabetes-progression-s5-sex"][1]
    assert progression.input_shape == (7,)  # every diabetes task column leaves, chosen or not
    variances = [progression.data[i].y_train.var().item() for i in (0, 1)]
    assert variances[0] / variances[1] > 1e4  # progression beside s5, both scored
    cholesterol = tier[TIER_J, "blood-cholesterol-target"][1]
    assert cholesterol.target_tasks == [0] and cholesterol.input_shape == (5,)
    assert cholesterol.data[0].y_train.mean().item() > 100  # s1 in mg/dl, raw
    assert cholesterol.data[3].y_train.var().item() > 1e3  # progression, a raw auxiliary
    width = tier[TIER_J, "iris-width-species-scored"][1]
    assert width.target_tasks == [0, 1] and width.input_shape == (2,)
    smooth_area = tier[TIER_J, "cancer-area-smoothness-scored"][1]
    assert smooth_area.target_tasks == [0, 1, 2] and smooth_area.input_shape == (17,)
    variances = [smooth_area.data[i].y_train.var().item() for i in (0, 1)]
    assert variances[0] / variances[1] > 1e8  # mean_area beside mean_smoothness, both scored
    bmi = tier[TIER_K, "diabetes-bmi-target"][1]
    assert bmi.target_tasks == [0] and bmi.input_shape == (7,)
    assert bmi.data[0].y_train.mean().item() > 20  # bmi in kg/m^2, uncentred
    assert bmi.data[1].y_train.var().item() > 1e3  # progression, a raw auxiliary
    columns = tier[TIER_K, "wine-raw-columns-scored"][1]
    assert columns.target_tasks == [0, 1, 2] and columns.input_shape == (9,)
    assert {t.kind for t in columns.tasks} == {"regression"}  # cultivar left out
    variances = [columns.data[i].y_train.var().item() for i in (0, 2)]
    assert variances[0] / variances[1] > 1e5  # proline beside hue, both scored
    flavanoids = tier[TIER_L, "chem-flavanoids-target"][1]
    assert flavanoids.target_tasks == [0] and flavanoids.input_shape == (8,)
    assert flavanoids.data[0].y_train.mean().item() > 1  # flavanoids, uncentred
    assert flavanoids.data[2].y_train.mean().item() > 15  # alcalinity, a raw auxiliary
    petals = tier[TIER_L, "iris-petals-scored"][1]
    assert petals.target_tasks == [0, 1] and petals.input_shape == (2,)
    assert {t.kind for t in petals.tasks} == {"regression"}  # species left out
    assert petals.data[0].y_train.mean().item() > 3  # petal length in cm, uncentred
    progression_only = tier[TIER_M, "diabetes-progression-target"][1]
    assert progression_only.target_tasks == [0] and progression_only.input_shape == (7,)
    assert progression_only.data[0].y_train.var().item() > 1e3  # progression, a raw target
    assert progression_only.data[1].y_train.mean().item() > 20  # bmi, a raw auxiliary
    malic = tier[TIER_M, "chem-malic-cultivar-scored"][1]
    assert malic.target_tasks == [0, 1] and malic.input_shape == (8,)
    assert malic.data[0].y_train.mean().item() > 1  # malic acid in g/l, uncentred
    alcohol_malic = tier[TIER_N, "chem-alcohol-malic-targets"][1]
    assert alcohol_malic.target_tasks == [0, 1] and alcohol_malic.input_shape == (8,)
    assert alcohol_malic.data[0].y_train.mean().item() > 10  # alcohol in % vol, uncentred
    assert alcohol_malic.data[1].y_train.mean().item() > 1  # malic acid in g/l, uncentred
    bmi_s5 = tier[TIER_N, "diabetes-bmi-s5-scored"][1]
    assert bmi_s5.target_tasks == [0, 1] and bmi_s5.input_shape == (7,)
    assert {t.kind for t in bmi_s5.tasks} == {"regression"}  # sex and progression left out
    assert bmi_s5.data[0].y_train.mean().item() > 4  # s5, uncentred
    assert bmi_s5.data[1].y_train.mean().item() > 20  # bmi in kg/m^2, uncentred
    glucose = tier[TIER_O, "blood-glucose-sex-targets"][1]
    assert glucose.target_tasks == [0, 1] and glucose.input_shape == (5,)
    assert glucose.data[0].y_train.mean().item() > 50  # s6 (glucose) in mg/dl, raw
    assert glucose.data[2].y_train.var().item() > 1e3  # progression, a raw auxiliary
    length_species = tier[TIER_O, "iris-length-species-scored"][1]
    assert length_species.target_tasks == [0, 1] and length_species.input_shape == (2,)
    assert length_species.data[0].y_train.mean().item() > 3  # petal length in cm, uncentred
    sex_only = tier[TIER_P, "diabetes-sex-target"][1]
    assert sex_only.target_tasks == [0] and sex_only.input_shape == (7,)
    assert set(sex_only.data[0].y_train.tolist()) == {0, 1}  # sex, coded 1 / 2 in the data
    assert sex_only.data[1].y_train.mean().item() > 20  # bmi, a raw auxiliary
    assert sex_only.data[2].y_train.var().item() > 1e3  # progression, a raw auxiliary
    sex_s5 = tier[TIER_P, "diabetes-sex-s5-scored"][1]
    assert sex_s5.target_tasks == [0, 1] and sex_s5.input_shape == (7,)
    assert sex_s5.data[1].y_train.mean().item() > 4  # s5, uncentred
    alcohol_flavanoids = tier[TIER_Q, "chem-alcohol-flavanoids-targets"][1]
    assert alcohol_flavanoids.target_tasks == [0, 1] and alcohol_flavanoids.input_shape == (8,)
    assert alcohol_flavanoids.data[0].y_train.mean().item() > 10  # alcohol in % vol, uncentred
    assert alcohol_flavanoids.data[1].y_train.mean().item() > 1  # flavanoids, uncentred
    assert alcohol_flavanoids.data[2].y_train.mean().item() > 1  # malic acid, a raw auxiliary
    texture = tier[TIER_Q, "cancer-diagnosis-texture-scored"][1]
    assert texture.target_tasks == [0, 1] and texture.input_shape == (17,)
    assert set(texture.data[0].y_train.tolist()) == {0, 1}  # diagnosis
    assert texture.data[1].y_train.mean().item() > 10  # mean_texture, uncentred
    sex_bp = tier[TIER_R, "blood-sex-pressure-targets"][1]
    assert sex_bp.target_tasks == [0, 1] and sex_bp.input_shape == (5,)
    assert set(sex_bp.data[0].y_train.tolist()) == {0, 1}  # sex, coded 1 / 2 in the data
    assert sex_bp.data[1].y_train.mean().item() > 80  # bp in mm Hg, uncentred
    assert sex_bp.data[2].y_train.mean().item() > 30  # s3 (HDL), a raw auxiliary
    assert sex_bp.data[3].y_train.mean().item() > 50  # s6 (glucose), a raw auxiliary
    magnesium = tier[TIER_R, "wine-magnesium-color-scored"][1]
    assert magnesium.target_tasks == [0, 1] and magnesium.input_shape == (9,)
    assert {t.kind for t in magnesium.tasks} == {"regression"}  # cultivar left out
    assert magnesium.data[0].y_train.mean().item() > 80  # magnesium in mg/l, uncentred
    assert magnesium.data[1].y_train.mean().item() > 3  # color intensity, uncentred
    hdl_only = tier[TIER_S, "blood-hdl-target-three-aux"][1]
    assert hdl_only.target_tasks == [0] and hdl_only.input_shape == (5,)
    assert hdl_only.data[0].y_train.mean().item() > 30  # s3 (HDL) in mg/dl, a raw target
    assert hdl_only.data[1].y_train.mean().item() > 80  # bp, a raw auxiliary
    assert hdl_only.data[2].y_train.mean().item() > 100  # s1 (cholesterol), a raw auxiliary
    assert set(hdl_only.data[3].y_train.tolist()) == {0, 1}  # sex, an auxiliary class
    progression_s5 = tier[TIER_S, "diabetes-progression-s5-scored"][1]
    assert progression_s5.target_tasks == [0, 1] and progression_s5.input_shape == (7,)
    assert {t.kind for t in progression_s5.tasks} == {"regression"}  # sex and bmi left out
    assert progression_s5.data[0].y_train.var().item() > 1e3  # progression, raw
    assert progression_s5.data[1].y_train.mean().item() > 4  # s5, uncentred
    s5_only = tier[TIER_T, "diabetes-s5-target-sex-aux"][1]
    assert s5_only.target_tasks == [0] and s5_only.input_shape == (7,)
    assert s5_only.data[0].y_train.mean().item() > 4  # s5, an uncentred target
    assert set(s5_only.data[1].y_train.tolist()) == {0, 1}  # sex, an auxiliary class
    alcohol_cultivar = tier[TIER_T, "chem-alcohol-cultivar-scored"][1]
    assert alcohol_cultivar.target_tasks == [0, 1] and alcohol_cultivar.input_shape == (8,)
    assert alcohol_cultivar.data[0].y_train.mean().item() > 10  # alcohol in % vol, uncentred
    assert set(alcohol_cultivar.data[1].y_train.tolist()) == {0, 1, 2}  # cultivar
