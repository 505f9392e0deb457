"""The benchmark harness end to end: files, paired statistics, --json, resume.

One small benchmark (two synthetic suites x four controllers x 3 seeds, a 50-step budget)
runs once per module through the command line; the tests read its output. The slow tier
runs `--controller all` (every registered heuristic) through the same command.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ROOT_LOSSES, record_run_seeds

from curriculum_rl.atomic import write_json_atomic
from curriculum_rl.benchmark import BenchmarkConfig
from curriculum_rl.benchmark.config import STATIC_TUNED, STATIC_TUNED_LOSS, TUNING_SEED
from curriculum_rl.benchmark.store import load_done_run, run_path
from curriculum_rl.cli import main
from curriculum_rl.controllers.actions import DEFAULT_TRANSFORM
from curriculum_rl.controllers.learned.artifact import save_artifact
from curriculum_rl.controllers.learned.network import NetworkConfig, TaskSetActor, init_weights
from curriculum_rl.controllers.registry import controller_names
from curriculum_rl.scores import delta_m, worst_task_change
from curriculum_rl.stats import iqm, stratified_iqm, stratified_mean

# A per-step hook, a loss weighting, a decision-time schedule, a loss normalisation and
# both tuned baselines.
CONTROLLERS = [
    "uniform", "dwa", "geometric-mean", "easy-to-hard", "sqrt-loss", "fourth-root-loss",
    STATIC_TUNED, STATIC_TUNED_LOSS,
]  # fmt: skip
# `--controller all`: every heuristic installed here, plus static weights tuned on val.
ALL_CONTROLLERS = [*controller_names(available_only=True), STATIC_TUNED]
SUITES = ["synthetic-scales", "synthetic-related"]
SEEDS = 3
ARGS = ["--seeds", str(SEEDS), "--budget", "50", "--interval", "25", "--quiet", "--json"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


def _command(out: Path, controllers: Sequence[str] = CONTROLLERS) -> list[str]:
    return ["benchmark", "--suite", *SUITES, "--controller", *controllers, "--out", str(out), *ARGS]


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("bench")
    code, stdout = _cli(_command(out))
    assert code == 0, stdout
    return out, json.loads(stdout.strip().splitlines()[-1])


def _rows(out: Path) -> list[dict]:
    with (out / "results.csv").open() as f:
        return list(csv.DictReader(f))


def test_writes_every_artifact(bench):
    out, _ = bench
    for suite in SUITES:
        for controller in CONTROLLERS:
            for seed in range(SEEDS):
                record = json.loads(run_path(out, suite, controller, seed).read_text())
                assert record["controller"] == controller and record["seed"] == seed
                assert len(record["j_curve"]) == len(record["weights"]) == 3
                events = list((out / "tb" / suite / controller / f"seed{seed}").glob("events.*"))
                assert len(events) == 1
        for name in ("learning_curves.png", "schedules.png"):
            assert (out / "plots" / suite / name).read_bytes().startswith(PNG_MAGIC)
    assert (out / "plots" / "aggregate_gain.png").read_bytes().startswith(PNG_MAGIC)
    assert len(_rows(out)) == len(SUITES) * len(CONTROLLERS) * SEEDS
    summary = (out / "summary.md").read_text()
    for heading in ("## synthetic-scales", "## synthetic-related", "## Aggregate over suites"):
        assert heading in summary
    assert not list(out.rglob("*.tmp*")), "no temporary file may be left behind"


def test_uniform_gain_is_exactly_zero_and_gains_are_paired(bench):
    out, _ = bench
    rows = _rows(out)
    uniform = {(r["suite"], r["seed"]): r for r in rows if r["controller"] == "uniform"}
    for row in rows:
        ref = uniform[row["suite"], row["seed"]]
        for ckpt in ("final", "best"):
            expected = float(ref[f"{ckpt}_test_j"]) - float(row[f"{ckpt}_test_j"])
            assert float(row[f"gain_j_{ckpt}"]) == expected
            # all-regression suites: loss = metric = MSE, so G_m equals G_J up to rounding
            assert float(row[f"gain_{ckpt}"]) == pytest.approx(expected, abs=1e-5)
        if row["controller"] == "uniform":
            assert float(row["gain_final"]) == 0.0 and float(row["gain_best"]) == 0.0
            assert float(row["worst_vs_uniform_final"]) == 0.0


def test_the_csv_gives_each_run_s_mean_loss_normalisation(bench):
    """0 for weighted sums (hooks, schedules, static weights), 1/2 for ``sqrt-loss``,
    3/4 for ``fourth-root-loss``."""
    out, _ = bench
    for row in _rows(out):
        assert float(row["loss_normalisation"]) == ROOT_LOSSES.get(row["controller"], 0.0)


def _estimates(summary: dict):
    for cells in summary["suites"].values():
        for cell in cells.values():
            yield from (v for v in cell.values() if isinstance(v, dict))
    for agg in summary["aggregate"].values():
        yield from (v for v in agg.values() if isinstance(v, dict))


def test_json_last_line_has_documented_keys_and_ordered_intervals(bench):
    _, summary = bench
    assert set(summary) == {"suites", "aggregate", "envelope", "settings"}
    assert set(summary["envelope"]) == set(CONTROLLERS)
    for entry in summary["envelope"].values():
        assert entry["max_gap"] == max(entry["gaps"].values()) >= 0
        assert set(entry["gaps"]) == set(SUITES)
    assert set(summary["suites"]) == set(SUITES)
    keys = {
        "gain",
        "gain_best",
        "gain_j",
        "gain_j_best",
        "delta_m",
        "delta_m_best",
        "worst_task_change",
        "worst_task_change_best",
        "worst_task_change_vs_uniform",
        "worst_task_change_vs_uniform_best",
        "auc_val_j",
        "runs",
        "failed",
        "paired_gap_to_leader",
    }
    for cells in summary["suites"].values():
        assert set(cells) == set(CONTROLLERS)
        for cell in cells.values():
            assert set(cell) == keys
            assert cell["gain"] is not None and cell["runs"] == SEEDS
    for estimate in _estimates(summary):
        low, high = estimate["ci"]
        if estimate["iqm"] is not None:
            assert low <= estimate["iqm"] <= high
    uniform = summary["aggregate"]["uniform"]["gain"]
    assert uniform == {"iqm": 0.0, "ci": [0.0, 0.0]}


def test_delta_m_of_the_reference_against_itself_is_zero(bench):
    out, summary = bench
    assert summary["settings"]["reference"] is True
    stored = sorted((out / "reference").glob("*.json"))
    assert len(stored) == len(SUITES) * SEEDS
    for path in stored:
        ref = json.loads(path.read_text())
        metrics, hib = ref["final_test_metric"], ref["higher_is_better"]
        assert delta_m(metrics, metrics, hib) == 0.0
        assert worst_task_change(metrics, metrics, hib) == 0.0
    assert "delta_m_final" in _rows(out)[0]


def _subset(summary: dict, controllers: list[str]) -> dict:
    """The controllers' own statistics (not the paired gap: its leader depends on which
    controllers ran)."""

    def own(cell: dict) -> dict:
        return {k: v for k, v in cell.items() if k != "paired_gap_to_leader"}

    return {
        "suites": {
            s: {c: own(cells[c]) for c in controllers} for s, cells in summary["suites"].items()
        },
        "aggregate": {c: own(summary["aggregate"][c]) for c in controllers},
    }


def test_rerun_skips_done_runs_and_redoes_only_a_missing_one(bench, monkeypatch):
    out, summary = bench
    calls = record_run_seeds(monkeypatch)
    # Two of the controllers again, on the same folder (quicker than all of them): nothing
    # is recomputed, and their statistics are the same numbers as before.
    subset = ["uniform", "dwa"]
    command = _command(out, subset)
    code, stdout = _cli(command)
    assert code == 0 and calls == []
    assert _subset(json.loads(stdout.strip().splitlines()[-1]), subset) == _subset(summary, subset)

    # A lost run and a half-written one: each is recomputed alone (a seed's numbers do not
    # depend on its batch), only the two runs are rewritten, and the numbers come out the
    # same, bit for bit.
    lost = run_path(out, SUITES[0], "uniform", 1)
    kept = run_path(out, SUITES[0], "uniform", 0)
    before, kept_mtime = json.loads(lost.read_text()), kept.stat().st_mtime_ns
    lost.unlink()
    broken = run_path(out, SUITES[1], "dwa", 2)
    broken.write_text(broken.read_text()[:100])
    code, stdout = _cli(command)
    assert code == 0 and calls == [[1], [2]]
    assert json.loads(lost.read_text()) == before
    assert kept.stat().st_mtime_ns == kept_mtime
    assert _subset(json.loads(stdout.strip().splitlines()[-1]), subset) == _subset(summary, subset)


def test_versus_adds_the_paired_gap_to_a_named_controller(bench, capsys):
    """--versus (a rerun, nothing recomputed): every other controller's paired gap to the
    named one is in the JSON and in a column of the aggregate table; a name that is not
    one of the controllers is refused before any work."""
    out, _ = bench
    subset = ["uniform", "geometric-mean"]
    code, stdout = _cli([*_command(out, subset), "--versus", "geometric-mean"])
    assert code == 0
    aggregate = json.loads(stdout.strip().splitlines()[-1])["aggregate"]
    gap = aggregate["uniform"]["paired_gap_to_versus"]
    assert aggregate["geometric-mean"]["paired_gap_to_versus"] is None
    assert gap["ci"][0] <= gap["iqm"] <= gap["ci"][1] and gap["iqm"] != 0
    changed = aggregate["uniform"]["paired_gap_to_versus_where_changed"]
    assert changed["suites"] >= 1 and changed["ci"][0] <= changed["iqm"] <= changed["ci"][1]
    table = (out / "summary.md").read_text()
    assert "| paired gap to geometric-mean | same, where changed (suites) |" in table
    code, _ = _cli([*_command(out, subset), "--versus", "pcgrad"])
    assert code == 2 and "is not a controller of this benchmark" in capsys.readouterr().err


def test_resume_refuses_other_settings(bench):
    out, _ = bench
    code, _ = _cli(
        [
            "benchmark",
            "--suite",
            SUITES[0],
            "--controller",
            "uniform",
            "--out",
            str(out),
            "--seeds",
            "1",
            "--budget",
            "75",
            "--quiet",
        ]
    )
    assert code == 2


def _from_seed(out: Path, first: int, seeds: int, *extra: str) -> tuple[int, str]:
    """A one-suite benchmark of seeds ``first .. first+seeds-1`` (geometric-mean moves the
    numbers away from uniform's within 50 steps)."""
    argv = ["benchmark", "--suite", SUITES[0], "--controller", "geometric-mean"]
    span = ["--first-seed", str(first), "--seeds", str(seeds)]
    fast = ["--budget", "50", "--interval", "25", "--quiet", "--json"]
    return _cli([*argv, *span, *fast, "--out", str(out), *extra])


def _by_seed(out: Path) -> dict[tuple[str, int], dict]:
    return {(r["controller"], int(r["seed"])): r for r in _rows(out)}


@pytest.mark.slow  # seconds of training; the fast step keeps the plain resume tests
def test_first_seed_runs_its_seeds_with_the_numbers_they_have_from_0(tmp_path):
    late, early = tmp_path / "late", tmp_path / "early"
    code, stdout = _from_seed(late, 3, 2)
    assert code == 0, stdout
    assert _from_seed(early, 0, 4)[0] == 0
    rows = _by_seed(late)
    assert sorted(rows) == sorted((c, s) for c in ("uniform", "geometric-mean") for s in (3, 4))
    stored = sorted(p.name for p in (late / "runs" / SUITES[0] / "geometric-mean").iterdir())
    assert stored == ["seed3.json", "seed4.json"]
    # Same seed, same numbers: the run, its scores against uniform and single-task Δm%.
    for controller in ("uniform", "geometric-mean"):
        run = json.loads(run_path(late, SUITES[0], controller, 3).read_text())
        assert run == json.loads(run_path(early, SUITES[0], controller, 3).read_text())
        assert rows[controller, 3] == _by_seed(early)[controller, 3]
    assert float(rows["geometric-mean", 3]["gain_final"]) != 0
    assert math.isfinite(float(rows["geometric-mean", 3]["delta_m_final"]))
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["settings"]["first_seed"] == 3
    assert "Seeds: 3..4 " in (late / "summary.md").read_text()


def test_a_negative_first_seed_is_refused_naming_it(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["benchmark", "--suite", SUITES[0], "--controller", "dwa", "--out", str(tmp_path),
              "--first-seed", "-1"])  # fmt: skip
    assert exit_.value.code == 2
    assert "argument --first-seed: a seed must be 0 or more, got -1" in capsys.readouterr().err
    with pytest.raises(ValueError, match="first_seed must be >= 0, got -1"):
        BenchmarkConfig((SUITES[0],), ("dwa",), tmp_path, first_seed=-1)
    assert not (tmp_path / "runs").exists()


def test_a_first_seed_range_over_the_tuning_seed_is_refused_with_tuned_baselines(tmp_path):
    near = TUNING_SEED - 1
    with pytest.raises(ValueError, match=f"include {TUNING_SEED}"):
        BenchmarkConfig((SUITES[0],), ("all",), tmp_path, first_seed=near, seeds=2)
    assert BenchmarkConfig((SUITES[0],), ("dwa",), tmp_path, first_seed=near, seeds=2)


@pytest.mark.slow  # seconds of training; the fast step keeps the plain resume tests
def test_resuming_with_another_first_seed_tabulates_only_its_seeds(tmp_path, monkeypatch):
    out = tmp_path / "bench"
    assert _from_seed(out, 0, 2, "--no-reference")[0] == 0
    before = _by_seed(out)
    calls = record_run_seeds(monkeypatch)
    code, stdout = _from_seed(out, 1, 2, "--no-reference")
    assert code == 0 and calls == [[2], [2]]  # uniform and geometric-mean: seed 2 only
    rows = _by_seed(out)
    assert sorted({seed for _, seed in rows}) == [1, 2]
    assert all(rows[c, 1] == before[c, 1] for c in ("uniform", "geometric-mean"))
    assert run_path(out, SUITES[0], "uniform", 0).is_file()  # kept, out of the tables
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["settings"]["first_seed"] == 1
    assert summary["suites"][SUITES[0]]["geometric-mean"]["runs"] == 2
    assert summary["aggregate"]["geometric-mean"]["runs"] == 2


def test_unknown_controller_fails_before_running(tmp_path):
    code, _ = _cli(
        [
            "benchmark",
            "--suite",
            SUITES[0],
            "--controller",
            "no-such",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert code == 2
    assert not (tmp_path / "runs").exists()


def test_atomic_write_and_unreadable_runs(tmp_path):
    path = tmp_path / "a" / "run.json"
    write_json_atomic(path, {"benchmark": {"budget": 1}})
    assert load_done_run(path, {"budget": 1}) == {"benchmark": {"budget": 1}}
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]
    path.write_text("{")
    assert load_done_run(path, {"budget": 1}) is None
    assert load_done_run(tmp_path / "missing.json", {}) is None


def test_stratified_iqm():
    scores = np.arange(8.0)
    assert iqm(scores) == pytest.approx(3.5)  # mean of the middle four: 2, 3, 4, 5
    first = stratified_iqm([scores, scores + 10], reps=2000)
    assert first == stratified_iqm([scores, scores + 10], reps=2000)  # seeded
    assert first.low <= first.value <= first.high
    assert first.value == pytest.approx(iqm(np.concatenate([scores, scores + 10])))
    constant = stratified_iqm([[0.25] * 5], reps=500)
    assert (constant.value, constant.low, constant.high) == (0.25, 0.25, 0.25)
    # A failed run (-inf) is one of the trimmed quarter, not a NaN.
    robust = stratified_iqm([[1.0, 2.0, 3.0, -math.inf, 2.5, 1.5, 2.0, 3.0]], reps=500)
    assert math.isfinite(robust.value) and robust.low <= robust.value <= robust.high


def test_stratified_mean_is_the_pooled_mean_with_a_seeded_interval():
    """``stratified_mean``: the mean of every score pooled (exact zeros count, where the
    IQM would trim them away), resampled within each stratum as ``stratified_iqm``."""
    strata = [[0.0, 0.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, -1.0, 4.0]]
    estimate = stratified_mean(strata, reps=2000)
    assert estimate.value == pytest.approx(0.5)
    assert iqm(np.concatenate(strata)) == 0.0  # what the IQM would report
    assert estimate == stratified_mean(strata, reps=2000)
    assert estimate.low < estimate.value < estimate.high


def _save_policy(path: Path, seed: int, action: str = DEFAULT_TRANSFORM) -> Path:
    """A small randomly initialised policy file (``seed`` picks the weights)."""
    torch.manual_seed(seed)
    actor = TaskSetActor(NetworkConfig(hidden=16, action_init_gain=1.0))
    init_weights(actor)
    return save_artifact(path, actor, max_tasks=8, action=action)


def test_a_policy_file_is_benchmarked_beside_the_heuristics(tmp_path):
    policy = _save_policy(tmp_path / "mypolicy", seed=0)
    out = tmp_path / "out"
    code, stdout = _cli(
        [
            "benchmark",
            "--suite",
            SUITES[0],
            "--controller",
            str(policy),
            "--out",
            str(out),
            "--seeds",
            "2",
            "--budget",
            "10",
            "--interval",
            "5",
            "--no-reference",
            "--quiet",
            "--json",
        ]
    )
    assert code == 0, stdout
    summary = json.loads(stdout.strip().splitlines()[-1])
    label = policy.stem
    assert set(summary["suites"][SUITES[0]]) == {"uniform", label}
    assert summary["suites"][SUITES[0]][label]["delta_m"] is None
    assert run_path(out, SUITES[0], label, 1).is_file()
    assert "delta_m_final" not in _rows(out)[0]
    assert "omitted" in (out / "summary.md").read_text()


@pytest.mark.slow
def test_every_registered_controller_is_benchmarked(tmp_path):
    out = tmp_path / "all"
    command = ["benchmark", "--suite", SUITES[0], "--controller", "all", "--out", str(out)]
    code, stdout = _cli(
        [*command, "--seeds", "2", "--budget", "50", "--no-reference", "--quiet", "--json"]
    )
    assert code == 0, stdout
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert set(summary["suites"][SUITES[0]]) == set(ALL_CONTROLLERS)
    assert len(_rows(out)) == len(ALL_CONTROLLERS) * 2


@pytest.mark.slow  # 4 s: a whole benchmark of its own
def test_summary_names_the_controllers_that_changed_nothing(tmp_path):
    """Every `sequence` task reads the same examples, so a sampling schedule trains
    exactly as uniform does; the summary says so, and does not say it of a weighting."""
    out = tmp_path / "shared"
    argv = ["benchmark", "--suite", "sequence", "--controller", "temperature", "geometric-mean"]
    code, stdout = _cli([*argv, "--out", str(out), "--seeds", "2", "--budget", "30",
                         "--interval", "15", "--quiet", "--no-reference"])  # fmt: skip
    assert code == 0, stdout
    note = [line for line in (out / "summary.md").read_text().splitlines() if "Exactly" in line]
    assert note == [
        "Exactly uniform's test metrics on every seed (no effect on this suite): temperature. "
        "Sampling schedules have none where every task trains on the same examples."
    ]


@pytest.mark.slow  # seconds of training; the fast step keeps the plain resume tests
def test_a_label_that_now_names_another_policy_keeps_its_runs_apart(tmp_path, capsys):
    """Runs are stored by label; when `policy.json` is replaced by another policy, the
    stored runs are the old policy's: refused (and kept), never passed off as the new one's."""
    _save_policy(tmp_path / "policy", seed=0)
    out = tmp_path / "bench"
    argv = ["benchmark", "--suite", SUITES[0], "--controller", str(tmp_path / "policy.json")]
    argv += ["--seeds", "1", "--budget", "50", "--interval", "25", "--quiet", "--no-reference"]
    argv += ["--out", str(out)]
    assert _cli(argv)[0] == 0
    path = run_path(out, SUITES[0], "policy", 0)
    stored = json.loads(path.read_text())
    assert stored["controller_identity"].startswith("policy sha256:")
    assert (
        json.loads(run_path(out, SUITES[0], "uniform", 0).read_text())["controller_identity"]
        == "uniform"
    )
    assert _cli(argv)[0] == 0  # the same policy: its runs are taken as stored
    _save_policy(tmp_path / "policy", seed=1)
    capsys.readouterr()
    assert _cli(argv)[0] == 2
    err = capsys.readouterr().err
    assert f"{path} was made by {stored['controller_identity']}" in err
    assert "another controller's" in err and "--out" in err
    assert json.loads(path.read_text()) == stored  # nothing overwritten
    _save_policy(tmp_path / "policy", seed=0, action="error_power_gated")
    assert _cli(argv)[0] == 2  # the same weights under another transform decide otherwise
    assert "another controller's" in capsys.readouterr().err
    legacy = stored["controller_identity"].split(" action ")[0]  # as stored before transforms
    write_json_atomic(path, {**stored, "controller_identity": legacy})
    assert _cli(argv)[0] == 0
    del stored["controller_identity"]  # as stored before identities were recorded
    write_json_atomic(path, stored)
    assert _cli(argv)[0] == 0
