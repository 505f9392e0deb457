"""Target and auxiliary tasks: the protocol flag, the trainer's objective and J, suites and
TOML files that mark auxiliaries, and the synthetic generator's breadth knobs (auxiliaries,
raw scales, near-zero tasks), which leave the default instances bit-identical."""

from __future__ import annotations

import math
import textwrap

import pytest
import torch

from curriculum_rl.suites import (
    DigitsConvSuite,
    MLPBody,
    SequenceSuite,
    SuiteInstance,
    SyntheticSetting,
    SyntheticSuite,
    TabularSuite,
    TaskData,
    TaskSpec,
    resolve_suite,
    resolve_suites,
)
from curriculum_rl.trainer import BatchedMultitaskTrainer, TrainerConfig

CONFIG = TrainerConfig(batch_size=32, proj_dim=16, val_probe=16, device="cpu")


def regression_instance(auxiliary: list[bool], aux_scale: float = 1.0) -> SuiteInstance:
    """Regression tasks on one 4-d input; the auxiliary tasks' targets times ``aux_scale``."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(96, 4, generator=gen)
    tasks, data = [], []
    for i, aux in enumerate(auxiliary):
        y = torch.sin(x @ torch.randn(4, 1, generator=gen))
        y = y * aux_scale if aux else y
        tasks.append(TaskSpec(f"t{i}", "regression", 1, "mse", auxiliary=aux))
        data.append(TaskData(x[:64], y[:64], x[64:80], y[64:80], x[80:], y[80:]))
    return SuiteInstance("hand", tasks, data, MLPBody(4, (16,)), (4,))


# ---------------------------------------------------------------- protocol and trainer


def test_objective_mask_and_j_follow_the_auxiliary_flags():
    flagged = regression_instance([False, True, False])
    plain = regression_instance([False, False, False])
    assert flagged.target_tasks == [0, 2] and plain.target_tasks == [0, 1, 2]
    trainer = BatchedMultitaskTrainer([flagged, plain], [0, 1], CONFIG)
    trainer.train(5)
    m = trainer.measure()
    assert m.objective.tolist() == [[True, False, True], [True, True, True]]
    logs = m.val_loss.log()
    assert m.j[0].item() == pytest.approx(logs[0, [0, 2]].mean().item(), rel=1e-6)
    assert m.j[1].item() == pytest.approx(logs[1].mean().item(), rel=1e-6)


def test_j_ignores_the_loss_of_an_auxiliary_task():
    """Scaling an auxiliary's targets by 1000 changes its loss, not J: at the start, and
    after training with the auxiliary weighted 0 (the runs then train identically)."""
    js, aux_losses = [], []
    for scale in (1.0, 1000.0):
        trainer = BatchedMultitaskTrainer([regression_instance([False, True], scale)], [3], CONFIG)
        start = trainer.measure()
        trainer.set_schedule(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5]]))
        trainer.train(20)
        end = trainer.measure()
        js.append((start.j.item(), end.j.item()))
        aux_losses.append(end.val_loss[0, 1].item())
    assert js[0] == js[1]
    assert aux_losses[1] > 1000 * aux_losses[0]


def test_explicit_objective_tasks_override_the_flags_and_reset_run_rereads_them():
    flagged = regression_instance([False, True, False])
    trainer = BatchedMultitaskTrainer([flagged], [0], CONFIG, objective_tasks=[[1]])
    assert trainer.objective[0].tolist() == [False, True, False]
    trainer.reset_run(0, regression_instance([True, False, False]), seed=1)
    assert trainer.objective[0].tolist() == [False, True, True]


def test_an_instance_of_only_auxiliary_tasks_is_refused():
    with pytest.raises(ValueError, match=r"suite 'hand'.*auxiliary.*at least one task"):
        regression_instance([True, True])
    with pytest.raises(ValueError, match="every chosen task is auxiliary"):
        TabularSuite(dataset="breast_cancer", auxiliary=("diagnosis", "worst_area"))
    with pytest.raises(ValueError, match="every chosen task is auxiliary"):
        DigitsConvSuite(tasks=("row_peak",))  # row_peak is auxiliary by default
    with pytest.raises(ValueError, match="auxiliary task 'nope' is not among its tasks"):
        SequenceSuite(auxiliary=("nope",))


def test_suites_and_toml_files_mark_auxiliaries(tmp_path):
    spec = tmp_path / "aux.toml"
    spec.write_text(
        textwrap.dedent(
            """
            [suites.wine-aux]
            kind = "tabular"
            dataset = "wine"
            auxiliary = ["magnesium", "hue"]

            [suites.conv-all-targets]
            kind = "digits-conv"
            auxiliary = []

            [suites.seq]
            kind = "sequence"
            tasks = ["count", "repeat"]
            auxiliary = ["repeat"]
            """
        )
    )
    suites = {s.name: s for s in resolve_suites(str(spec))}
    flags = {name: {t.name for t in s.describe() if t.auxiliary} for name, s in suites.items()}
    assert flags == {"wine-aux": {"magnesium", "hue"}, "conv-all-targets": set(), "seq": {"repeat"}}
    assert [t.auxiliary for t in suites["wine-aux"].sample(0).tasks] == [
        False,
        False,
        True,
        False,
        True,
    ]


def test_a_user_factory_marks_auxiliaries_with_the_task_spec(tmp_path):
    module = tmp_path / "aux_suite.py"
    module.write_text(
        textwrap.dedent(
            """
            import torch
            from curriculum_rl.suites import MLPBody, SuiteInstance, TaskData, TaskSpec

            def factory():
                x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
                tasks = [
                    TaskSpec("main", "regression", 1, "mse"),
                    TaskSpec("helper", "regression", 1, "mse", auxiliary=True),
                ]
                ys = [x[:, :1], x[:, 1:2] * 5]
                data = [TaskData(x[:20], y[:20], x[20:30], y[20:30], x[30:], y[30:]) for y in ys]
                return SuiteInstance("mine", tasks, data, MLPBody(3, (8,)), (3,))
            """
        )
    )
    instance = resolve_suite(f"{module}:factory").sample(0)
    trainer = BatchedMultitaskTrainer([instance], [0], CONFIG)
    assert trainer.objective[0].tolist() == [True, False]


# ---------------------------------------------------------------- synthetic breadth knobs


def instance_total(instance: SuiteInstance) -> float:
    return sum(
        float(t.double().sum()) for d in instance.data for xy in d.splits().values() for t in xy
    )


# Sums of every tensor of seeds 0-4, recorded from the generator before the breadth knobs
# existed: settings that leave the knobs off must give the very same instances.
RECORDED_TOTALS = {
    "synthetic": [-2501.7989, -1278.8265, -307541.9329, -775.2385, 96309.6245],
    "envs/train-with-classes.toml": [-218309.4539, -2380.5313, -307541.9329, -775.2385, 25009.6465],
}


@pytest.mark.parametrize("spec", sorted(RECORDED_TOTALS))
def test_knobs_off_by_default_keep_the_recorded_instances(spec):
    suite = resolve_suite(spec)
    for seed, recorded in enumerate(RECORDED_TOTALS[spec]):
        instance = suite.sample(seed)
        assert instance_total(instance) == pytest.approx(recorded, rel=1e-7, abs=1e-3)
        assert not any(t.auxiliary for t in instance.tasks)
        assert not {"raw_scales", "offsets", "easy", "helpful_auxiliaries"} & set(instance.info)


def synthetic(**knobs) -> SyntheticSuite:
    setting = SyntheticSetting("knobs", **knobs)
    return SyntheticSuite(name="knobs", settings=(setting,), n_train=512, n_val=64, n_test=256)


def test_raw_scale_and_offset_make_unstandardised_regression_targets():
    """Two offset ranges draw the same random numbers, so the instances differ only by
    each task's shift ``o_k * s_k`` (with ``scale_spread`` 1, ``s_k`` is the raw factor)."""
    knobs = {"num_tasks": (5, 5), "raw_scale": (10.0, 1000.0)}
    shifted = synthetic(**knobs, offset=(3.0, 6.0)).sample(2)
    centred = synthetic(**knobs, offset=(1e-9, 1e-9)).sample(2)
    raw, offsets = shifted.info["raw_scales"], shifted.info["offsets"]
    assert raw == centred.info["raw_scales"]
    assert all(10.0 <= r <= 1000.0 for r in raw) and all(3.0 <= o <= 6.0 for o in offsets)
    for a, b, factor, offset in zip(shifted.data, centred.data, raw, offsets, strict=True):
        assert torch.equal(a.x_train, b.x_train)
        shift = (a.y_train - b.y_train).double()
        assert shift.mean().item() == pytest.approx(offset * factor, rel=1e-5)
        assert b.y_train.std().item() == pytest.approx(factor, rel=0.2)


def test_easy_tasks_are_noiseless_linear_or_separable():
    suite = synthetic(
        num_tasks=(4, 4), easy_tasks=(4, 4), classification=(0.5, 0.5), classes=(20, 20)
    )
    instance = suite.sample(1)
    assert instance.info["easy"] == [0, 1, 2, 3]
    for task, data in zip(instance.tasks, instance.data, strict=True):
        x, y = data.x_train.double(), data.y_train.double()
        if task.kind == "regression":  # exactly linear in the input: least squares fits it
            w = torch.linalg.lstsq(x, y).solution
            assert (x @ w - y).abs().max().item() < 1e-4
        else:  # 20 linearly separable classes, every one present
            assert task.out_dim == 20
            assert torch.bincount(data.y_train, minlength=20).min() > 0


def test_auxiliary_knob_makes_one_small_target_and_auxiliaries_with_more_data():
    suite = synthetic(
        num_tasks=(6, 6),
        auxiliary=(7, 7),
        helpful=(0.6, 0.6),
        target_shrink=(16.0, 16.0),
        classification=(0.5, 0.5),
    )
    instance = suite.sample(4)
    (target,) = instance.target_tasks
    helpful, noise = instance.info["helpful_auxiliaries"], instance.info["noise_auxiliaries"]
    assert instance.info["helpful"] == 0.6 and len(helpful) == 3 and len(noise) == 2
    assert set(helpful.values()) == {target}
    assert sorted([target, *helpful, *noise]) == list(range(6))
    sizes = [len(d.x_train) for d in instance.data]
    assert sizes[target] == 32 and all(s == 512 for i, s in enumerate(sizes) if i != target)
    trainer = BatchedMultitaskTrainer([instance], [0], CONFIG)
    expected = [i == target for i in range(6)]
    assert trainer.objective[0].tolist() == expected


def test_twenty_classes_and_every_knob_train_in_the_batched_trainer():
    suite = synthetic(
        num_tasks=(3, 8),
        classification=(0.5, 1.0),
        classes=(2, 20),
        raw_scale=(1.0, 100.0),
        offset=(0.0, 5.0),
        easy_tasks=(0, 2),
        auxiliary=(0, 3),
        helpful=(0.0, 1.0),
        target_shrink=(1.0, 20.0),
    )
    instances = [suite.sample(seed) for seed in range(4)]
    again = suite.sample(3)
    assert all(
        torch.equal(a.y_train, b.y_train)
        for a, b in zip(again.data, instances[3].data, strict=True)
    )
    widest = max(t.out_dim for t in suite.describe())
    assert widest == 20
    trainer = BatchedMultitaskTrainer(instances, list(range(4)), CONFIG, out_max=widest)
    trainer.train(10)
    m = trainer.measure()
    assert torch.isfinite(m.val_loss).all() and not m.diverged.any()
    assert all(math.isfinite(j) for j in m.j.tolist())


def test_auxiliary_raw_scale_multiplies_only_the_auxiliaries():
    """Auxiliaries' targets are scaled by their drawn factor; targets keep unit scale, and
    the draw comes after the roles, so the rest of the instance is as without the knob."""
    knobs = {"num_tasks": (6, 6), "auxiliary": (3, 3), "helpful": (0.5, 0.5)}
    raw = synthetic(**knobs, auxiliary_raw_scale=(30.0, 300.0)).sample(4)
    plain = synthetic(**knobs).sample(4)
    auxiliary = {i for i, task in enumerate(raw.tasks) if task.auxiliary}
    assert len(auxiliary) == 3
    assert auxiliary == {i for i, task in enumerate(plain.tasks) if task.auxiliary}
    factors = raw.info["raw_scales"]
    for i, (a, b) in enumerate(zip(raw.data, plain.data, strict=True)):
        ratio = (a.y_train.std() / b.y_train.std()).item()
        if i in auxiliary:
            assert 30.0 <= factors[i] <= 300.0
            assert ratio == pytest.approx(factors[i], rel=1e-4)
        else:
            assert factors[i] == 1.0 and torch.equal(a.y_train, b.y_train)


def test_auxiliary_raw_scale_without_auxiliaries_is_refused():
    with pytest.raises(ValueError, match="set auxiliary too"):
        SyntheticSetting("bad", auxiliary_raw_scale=(10.0, 100.0))
