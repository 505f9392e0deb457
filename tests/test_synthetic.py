"""The synthetic distribution's classification tasks, and environments over mixed kinds."""

import numpy as np
import pytest
import torch

from curriculum_rl.agents.vec_env import BatchedCurriculumVecEnv
from curriculum_rl.suites import SyntheticSetting, SyntheticSuite
from curriculum_rl.suites.selection import draw_count


def classifying_suite(**knobs) -> SyntheticSuite:
    setting = SyntheticSetting(
        "cls", **{"num_tasks": (3, 3), "classification": (1.0, 1.0), **knobs}
    )
    return SyntheticSuite(name="cls", settings=(setting,), n_train=2048, n_val=64, n_test=64)


def test_classification_tasks_have_valid_labels_and_every_class_occurs():
    instance = classifying_suite(classes=(4, 9)).sample(3)
    for task, data in zip(instance.tasks, instance.data, strict=True):
        assert task.kind == "classification" and task.metric == "accuracy"
        assert 4 <= task.out_dim <= 9
        assert data.y_train.dtype == torch.int64 and data.y_train.dim() == 1
        counts = torch.bincount(data.y_train, minlength=task.out_dim)
        assert len(counts) == task.out_dim and (counts > 0).all()


def test_classification_share_follows_the_knob():
    suite = SyntheticSuite(
        settings=(SyntheticSetting("half", num_tasks=(8, 8), classification=(0.5, 0.5)),)
    )
    kinds = [t.kind for t in suite.sample(0).tasks]
    assert kinds.count("classification") == 4 and kinds.count("regression") == 4


def test_label_noise_redraws_the_stated_fraction_of_labels():
    """Same seed with and without noise: same inputs and clean labels (the random streams
    are consumed alike), so the changed labels are the redrawn ones: a fraction
    noise / (1 + noise) redrawn, of which 1 - 1/C land on another class."""
    knobs = {"classes": (5, 5), "noisy_tasks": (3, 3)}
    clean = classifying_suite(noise=(0.0, 0.0), **knobs).sample(1)
    noisy = classifying_suite(noise=(4.0, 4.0), **knobs).sample(1)
    for a, b in zip(clean.data, noisy.data, strict=True):
        assert torch.equal(a.x_train, b.x_train)
        changed = (a.y_train != b.y_train).float().mean().item()
        assert changed == pytest.approx(0.8 * (1 - 1 / 5), abs=0.05)


def test_describe_lists_the_widest_task_a_slot_can_hold():
    assert {t.kind for t in SyntheticSuite(settings=(SyntheticSetting(),)).describe()} == {
        "regression"
    }
    widest = classifying_suite(classes=(2, 7)).describe()
    assert len(widest) == 3 and all(t.out_dim == 7 for t in widest)


def test_vecenv_sizes_heads_for_instances_that_arrive_later():
    """Episodes restart run by run on fresh instances; a 7-class task arriving after a
    first batch of 2-class tasks must fit (heads are sized from the suite's describe())."""
    suite = SyntheticSuite(
        name="mixed-kinds",
        settings=(
            SyntheticSetting(
                "m", num_tasks=(2, 3), classification=(0.0, 1.0), classes=(2, 7)
            ),
        ),
        n_train=64, n_val=32, n_test=32, hidden=(8,),
    )  # fmt: skip
    trainer_kw = {"batch_size": 16, "proj_dim": 8, "val_probe": 8, "device": "cpu"}
    vec = BatchedCurriculumVecEnv(2, suite=suite, budget=50, interval=25, trainer=trainer_kw)
    vec.seed(0)
    obs = vec.reset()
    assert vec._core.trainer.out_max == 7
    widths = set()
    for _ in range(12):  # six episodes per run
        obs, reward, _, _ = vec.step(np.zeros((2, *vec.action_space.shape), np.float32))
        assert np.isfinite(obs).all() and np.isfinite(reward).all()
        widths |= {t.out_dim for inst in vec._core.trainer.instances for t in inst.tasks}
    assert max(widths) > 2  # wider tasks did arrive after the first episodes


def test_draw_count_stays_in_bounds_and_a_cap_never_shifts_later_draws():
    """Every generator draws its counts here; a cap clips the value, not the stream, so
    changing one knob's cap leaves every later draw (and so the instance's data) alone."""
    capped, free = np.random.default_rng(3), np.random.default_rng(3)
    counts = [draw_count((2, 6), free) for _ in range(200)]
    assert set(counts) == {2, 3, 4, 5, 6}
    assert all(draw_count((2, 6), capped, cap=4) == min(c, 4) for c in counts)
    assert capped.random() == free.random()
