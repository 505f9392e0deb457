"""The real-data and heterogeneous suites: they learn, are deterministic, take task subsets;
the single-task reference and the relative scores; `curriculum-rl suites`."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch

from curriculum_rl import reference
from curriculum_rl.cli import main
from curriculum_rl.controllers import Uniform
from curriculum_rl.reference import single_task_reference
from curriculum_rl.runner import run_controller
from curriculum_rl.scores import delta_m, worst_task_change
from curriculum_rl.suites.base import SuiteInstance
from curriculum_rl.suites.digits import DIGITS_TASKS, DigitsSuite
from curriculum_rl.suites.mnist1d import MNIST1D_TASKS, Mnist1dSuite
from curriculum_rl.suites.registry import resolve_suite
from curriculum_rl.suites.sequence import SequenceSuite
from curriculum_rl.trainer import BatchedMultitaskTrainer, TrainerConfig

CONFIG = TrainerConfig(device="cpu", lr=3e-3)
SMALL = {
    "digits": DigitsSuite(n_train=2000, n_val=200, n_test=600),
    "mnist1d": Mnist1dSuite(num_samples=2000),
    "sequence": SequenceSuite(n_train=2000, n_val=200, n_test=600),
}
BUDGET = {"digits": 400, "mnist1d": 300, "sequence": 200}


def constant_baseline(y: torch.Tensor) -> float:
    """Best constant predictor on the split itself: majority-class (token) accuracy, or
    the variance of the targets (the MSE of predicting their mean)."""
    if y.dtype.is_floating_point:
        return float(y.var(unbiased=False))
    return float(torch.bincount(y.flatten()).max() / y.numel())


def data_equal(a: SuiteInstance, b: SuiteInstance) -> bool:
    return all(
        torch.equal(x, y)
        for da, db in zip(a.data, b.data, strict=True)
        for (xa, ya), (xb, yb) in zip(da.splits().values(), db.splits().values(), strict=True)
        for x, y in ((xa, xb), (ya, yb))
    )


@pytest.mark.slow  # a trained run per data set; the fast step checks their data and metrics
@pytest.mark.parametrize("name", ["digits", "mnist1d", "sequence"])
def test_every_task_beats_the_constant_predictor(name):
    instance = SMALL[name].sample(0)
    (record,) = run_controller([instance], [0], Uniform(), BUDGET[name], 50, CONFIG)
    assert not record.diverged
    for spec, data, metric in zip(
        instance.tasks, instance.data, record.final_test_metric, strict=True
    ):
        base = constant_baseline(data.y_test)
        if spec.higher_is_better:
            assert metric > base + 0.08, (spec.name, metric, base)
        else:
            assert metric < 0.6 * base, (spec.name, metric, base)


@pytest.mark.parametrize("name", ["digits", "mnist1d", "sequence"])
def test_same_seed_same_data_and_metrics_other_seed_other_data(name):
    suite = SMALL[name]
    a, b, c = suite.sample(3), suite.sample(3), suite.sample(4)
    assert data_equal(a, b)
    assert not torch.equal(a.data[0].x_train, c.data[0].x_train)
    runs = [run_controller([inst], [3], Uniform(), 30, 15, CONFIG)[0] for inst in (a, b)]
    assert runs[0].final_test_metric == runs[1].final_test_metric
    assert runs[0].final_test_loss == runs[1].final_test_loss


@pytest.mark.parametrize(
    ("suite", "tasks"),
    [
        (DigitsSuite(n_train=300, n_val=50, n_test=100, tasks=("sum", "left")), ["sum", "left"]),
        (
            Mnist1dSuite(num_samples=500, tasks=("energy", "class_shifted")),
            ["energy", "class_shifted"],
        ),
        (SequenceSuite(n_train=300, n_val=50, n_test=100, tasks=("repeat",)), ["repeat"]),
    ],
)
def test_task_subsets_keep_order_and_train(suite, tasks):
    assert [t.name for t in suite.describe()] == tasks
    instance = suite.sample(0)
    assert [t.name for t in instance.tasks] == tasks
    (record,) = run_controller([instance], [0], Uniform(), 20, 10, CONFIG)
    assert len(record.final_test_metric) == len(tasks)
    assert all(math.isfinite(m) for m in record.final_test_metric)


@pytest.mark.parametrize("make", [DigitsSuite, Mnist1dSuite, SequenceSuite])
def test_unknown_task_lists_the_valid_ones(make):
    with pytest.raises(ValueError, match="no task 'nope'; valid tasks: ") as err:
        make(tasks=("nope",))
    first_valid = make().describe()[0].name
    assert first_valid in str(err.value)


def test_digit_pairs_use_disjoint_source_images():
    instance = DigitsSuite(n_train=2000, n_val=300, n_test=600).sample(5)
    x = {split: xs for split, (xs, _) in instance.data[0].splits().items()}

    def halves(rows: torch.Tensor) -> set[bytes]:
        images = rows.reshape(-1, 8, 16)
        return {
            h.contiguous().numpy().tobytes()
            for half in (images[:, :, :8], images[:, :, 8:])
            for h in half
        }

    train, val, test = halves(x["train"]), halves(x["val"]), halves(x["test"])
    assert not train & test and not train & val and not val & test
    assert sum(instance.info["source_images"].values()) == 1797
    assert float(x["train"].min()) >= 0 and float(x["train"].max()) <= 1


def test_mnist1d_stays_offline_and_leaves_global_rng_alone(monkeypatch, tmp_path):
    import mnist1d.data

    def no_network(*args, **kwargs):
        raise AssertionError("mnist1d tried to download")

    monkeypatch.setattr(mnist1d.data.requests, "get", no_network)
    monkeypatch.chdir(tmp_path)  # get_dataset would write a pickle here
    np.random.seed(123)
    random.seed(123)
    expected = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(123)
    Mnist1dSuite(num_samples=300).sample(11)  # a seed no other test uses: not cached
    assert (np.random.random(), random.random()) == expected
    assert list(tmp_path.iterdir()) == []


def test_sequence_body_runs_batched_like_single_runs():
    suite = SequenceSuite(n_train=200, n_val=50, n_test=100)
    instances, seeds = [suite.sample(0), suite.sample(1)], [0, 1]
    batched = BatchedMultitaskTrainer(instances, seeds, CONFIG)
    single = BatchedMultitaskTrainer(instances[1:], seeds[1:], CONFIG)
    for trainer in (batched, single):
        trainer.train(5)
    losses, metrics = batched.evaluate("test")
    alone, _ = single.evaluate("test")
    assert losses.shape == (2, 5) and torch.isfinite(metrics).all()
    torch.testing.assert_close(losses[1], alone[0], rtol=1e-4, atol=1e-5)


def test_registered_names_resolve():
    for name, cls in (
        ("digits", DigitsSuite),
        ("mnist1d", Mnist1dSuite),
        ("sequence", SequenceSuite),
    ):
        assert isinstance(resolve_suite(name), cls)
    assert [t.name for t in resolve_suite("digits").describe()] == [t.name for t in DIGITS_TASKS]
    assert [t.name for t in resolve_suite("mnist1d").describe()] == [t.name for t in MNIST1D_TASKS]


def test_cli_suites_lists_suites_tasks_and_directions(capsys):
    assert main(["suites", "--json"]) == 0
    out = capsys.readouterr().out
    listing = json.loads(out.strip().splitlines()[-1])["suites"]
    for name in ("digits", "mnist1d", "sequence", "synthetic", "envs/train.toml"):
        assert name in listing
    assert "envs/heldout.toml#digits" in listing
    tagging = {t["task"]: t for t in listing["sequence"]}["prev_token"]
    assert tagging == {
        "task": "prev_token",
        "kind": "tagging",
        "metric": "token_accuracy",
        "direction": "higher",
    }
    assert "sum_parity" in out and "lower is better" in out


# ---------------------------------------------------------------- references and scores
def test_single_task_reference_trains_each_task_alone_and_caches(tmp_path, monkeypatch):
    instance = DigitsSuite(n_train=300, n_val=50, n_test=100, tasks=("left", "sum")).sample(0)
    ref = single_task_reference(
        instance, seed=0, budget=20, interval=10, config=CONFIG, cache_dir=tmp_path
    )
    assert ref["tasks"] == ["left", "sum"] and ref["higher_is_better"] == [True, False]
    for key in ("final_test_metric", "final_test_loss", "best_test_metric", "best_test_loss"):
        assert len(ref[key]) == 2 and all(math.isfinite(v) for v in ref[key])
    assert len(list(tmp_path.glob("stl-*.json"))) == 1

    def must_not_train(*args, **kwargs):
        raise AssertionError("a cached reference was recomputed")

    monkeypatch.setattr(reference, "run_controller", must_not_train)
    again = single_task_reference(instance, 0, 20, 10, CONFIG, cache_dir=tmp_path)
    assert again == ref
    with pytest.raises(AssertionError, match="recomputed"):  # another budget: another key
        single_task_reference(instance, 0, 30, 10, CONFIG, cache_dir=tmp_path)


def test_single_task_reference_does_not_depend_on_the_other_tasks():
    small = {"n_train": 300, "n_val": 50, "n_test": 100}
    pair = DigitsSuite(tasks=("left", "sum"), **small).sample(1)
    alone = DigitsSuite(tasks=("left",), **small).sample(1)
    ref_pair = single_task_reference(pair, seed=2, budget=20, interval=10, config=CONFIG)
    ref_alone = single_task_reference(alone, seed=2, budget=20, interval=10, config=CONFIG)
    # "left" is the widest task in both, so its run is initialised identically: training
    # it beside "sum" in one batched call must not change a single number.
    assert ref_pair["final_test_loss"][0] == ref_alone["final_test_loss"][0]
    assert ref_pair["best_test_metric"][0] == ref_alone["best_test_metric"][0]


def test_delta_m_and_worst_task_change():
    # accuracy 0.9 vs 0.8 (+12.5% better), mse 1.1 vs 1.0 (+10% worse)
    metrics, refs, higher = [0.9, 1.1], [0.8, 1.0], [True, False]
    assert delta_m(metrics, refs, higher) == pytest.approx((-12.5 + 10.0) / 2)
    assert worst_task_change(metrics, refs, higher) == pytest.approx(10.0)
    assert delta_m(refs, refs, higher) == 0.0
    assert math.isnan(delta_m([math.nan, 1.0], refs, higher))
    with pytest.raises(ValueError, match="one of each"):
        delta_m([0.9], refs, higher)
    with pytest.raises(ValueError, match="non-zero"):
        delta_m(metrics, [0.0, 1.0], higher)
