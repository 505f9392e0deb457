"""The two spine benchmarks keep their command-line contract: with ``--json`` the last
line of stdout is one JSON object holding the figures the issue asks for (tiny settings
here; the real figures are in benchmarks/RESULTS.md)."""

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# Scripts run as subprocesses for seconds each: the slow tier (CI's second step).
pytestmark = pytest.mark.slow

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def last_json_line(script: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args, "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_env_speed_reports_the_speed_ratios():
    result = last_json_line("env_speed.py", "--reps", "1", "--runs", "2")
    for key in (
        "batched_speedup",
        "batched_speedup_vs_plain_loops",
        "env_overhead",
        "env_overhead_vs_trainer",
        "bmm_speedup_over_vmap",
    ):
        assert math.isfinite(result[key]) and result[key] > 0, key
    # A line fitted to one noisy repetition of five step times: its slope can come out
    # negative on a busy machine, so only its presence is a property of the script.
    assert math.isfinite(result["scaling_per_run_ms"]) and math.isfinite(result["scaling_fixed_ms"])
    assert result["batched_speedup"] == result["separate_steps_s"] / result["batched_step_s"]
    if (os.cpu_count() or 1) >= 2:
        assert result["two_threads_single"] > 0 and result["two_threads_batched"] > 0


def test_headroom_reports_the_median_gain_of_best_static_weights():
    result = last_json_line(
        "headroom.py",
        "--instances",
        "2",
        "--seeds",
        "1",
        "--tuning-seeds",
        "1",
        "--budget",
        "50",
        "--factors",
        "4",
        "--rounds",
        "1",
    )
    assert math.isfinite(result["median_gain_best_static"])
    assert sum(result["runs_per_setting"].values()) == 2


def test_exponent_probe_reads_the_centre_rule_off_a_zero_residual_policy(tmp_path):
    """The v3 policy scaled by 0 acts exactly as its centre rule, so the probe must
    read gamma = beta = 0.5 at every decision and no residual spread."""
    from curriculum_rl.agents.average import scale_policy

    zero = scale_policy(BENCHMARKS.parent / "agents" / "v3.json", 0.0, tmp_path / "zero")
    args = ("probe", str(zero), "--instances", "2", "--budget", "100")
    result = last_json_line("exponent_probe.py", *args)
    assert len(result["per_decision"]) == 100 // 25
    assert result["gamma"] == pytest.approx(0.5) and result["beta"] == pytest.approx(0.5)
    assert result["residual_sd"] == pytest.approx(0.0, abs=1e-6)


def test_exponent_probe_reads_an_exponents_only_policy_and_refuses_logits(tmp_path):
    """An ``error_exponents`` policy whose head is zero is the centre rule (no residual
    column: spread 0); a ``logits`` policy has no exponents and is refused clearly."""
    from curriculum_rl.controllers.actions import TRANSFORMS
    from curriculum_rl.controllers.learned.artifact import save_artifact
    from curriculum_rl.controllers.learned.network import NetworkConfig, TaskSetActor

    paths = {}
    for action in ("error_exponents", "logits"):
        actor = TaskSetActor(NetworkConfig(action_dim=TRANSFORMS[action].dim))
        torch.nn.init.zeros_(actor.head.weight)
        torch.nn.init.zeros_(actor.head.bias)
        paths[action] = save_artifact(tmp_path / action, actor, max_tasks=8, action=action)
    args = ("probe", str(paths["error_exponents"]), "--instances", "2", "--budget", "50")
    result = last_json_line("exponent_probe.py", *args)
    assert result["gamma"] == pytest.approx(0.5) and result["beta"] == pytest.approx(0.5)
    assert result["residual_sd"] == 0.0
    script = str(BENCHMARKS / "exponent_probe.py")
    done = subprocess.run(
        [sys.executable, script, "probe", str(paths["logits"])], capture_output=True, text=True
    )
    assert done.returncode != 0 and "which has no exponents" in done.stderr


def _final_gains(out: Path) -> dict[str, list[str]]:
    """Each controller's final G_m per run, as written in ``out/results.csv``."""
    with (out / "results.csv").open() as f:
        gains: dict[str, list[str]] = {}
        for row in csv.DictReader(f):
            gains.setdefault(row["controller"], []).append(row["gain_final"])
    return gains


def test_exponent_probe_rules_reproduce_the_registered_centre_rule(tmp_path):
    """`ep-0.5-0.5` registered by the script is `scale-normalised`, and `ep-sched` with
    a flat schedule is the same rule: every run's score agrees."""
    flags = ["--sched", "0.5", "0.5", "0.5", "--", "--suite", "synthetic", "--controller"]
    flags += ["scale-normalised", "ep-0.5-0.5", "ep-sched", "--seeds", "2", "--budget", "100"]
    flags += ["--no-reference", "--quiet", "--out", str(tmp_path / "bench")]
    script = str(BENCHMARKS / "exponent_probe.py")
    done = subprocess.run(
        [sys.executable, script, "benchmark", *flags], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    gains = _final_gains(tmp_path / "bench")
    assert gains["ep-0.5-0.5"] == gains["scale-normalised"] == gains["ep-sched"]
    assert len(gains["scale-normalised"]) == 2


def test_gate_variants_leave_a_suite_without_auxiliaries_as_their_base(tmp_path):
    """`sn-sign`, `sn-soft` (scale-normalised gated) and `v3-soft` (the policy gated)
    gate auxiliaries only: on `synthetic`, which has none, every run scores as its base."""
    flags = ["--policy", "agents/v3.json", "--", "--suite", "synthetic", "--controller"]
    flags += ["scale-normalised", "sn-sign", "sn-soft", "agents/v3.json", "v3-soft", "--seeds", "2"]
    flags += ["--budget", "100", "--no-reference", "--quiet", "--out", str(tmp_path / "bench")]
    script = str(BENCHMARKS / "gate_variants.py")
    done = subprocess.run(
        [sys.executable, script, *flags], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    gains = _final_gains(tmp_path / "bench")
    assert gains["sn-sign"] == gains["sn-soft"] == gains["scale-normalised"]
    assert gains["v3-soft"] == gains["v3"] and len(gains["v3"]) == 2


def test_policy_pass_cost_reports_the_share_of_a_batch():
    result = last_json_line("policy_pass_cost.py", "--runs", "2", "--budget", "50", "--reps", "1")
    assert result["runs"] == 2 and result["budget"] == 50
    for key in ("run_s", "batched_ms", "per_run_ms"):
        assert math.isfinite(result[key]) and result[key] > 0, key
    expected = 2 * (result["per_run_ms"] - result["batched_ms"]) / 1e3 / result["run_s"]
    assert result["overhead"] == pytest.approx(expected)
