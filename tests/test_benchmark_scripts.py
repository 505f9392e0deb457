"""The two spine benchmarks keep their command-line contract: with ``--json`` the last
line of stdout is one JSON object holding the figures the issue asks for (tiny settings
here; the real figures are in benchmarks/RESULTS.md)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
        "scaling_per_run_ms",
    ):
        assert math.isfinite(result[key]) and result[key] > 0, key
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
