"""The three 'Use it in your training loop' examples run (plain PyTorch, Lightning,
Hugging Face), each with a per-step loss-weighting controller, which must act; and the
benchmark of the controller's cost in such a loop keeps its --json contract."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # each starts Python, torch and its framework


def run_example(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def final_weights(out: str) -> list[float]:
    match = re.search(r"final weights \[([^\]]*)\]", out)
    assert match, out[-2000:]
    return [float(w) for w in match.group(1).split(",")]


def test_plain_pytorch_loop():
    out = run_example("own_loop.py", "uw", "--steps", "150")
    assert "controller uw" in out
    assert final_weights(out) != [1.0, 1.0, 1.0]  # a heuristic acts in a user's loop


@pytest.mark.skipif(importlib.util.find_spec("lightning") is None, reason="[lightning] extra")
def test_lightning_example(tmp_path: Path):
    out = run_example("lightning_loop.py", "uw", "--steps", "60", "--out", str(tmp_path))
    assert "controller uw: 2 decisions" in out
    assert final_weights(out) != [1.0, 1.0, 1.0]
    assert list(tmp_path.glob("lightning_logs/*/curriculum/events.out.tfevents.*"))


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="[huggingface]")
def test_huggingface_example(tmp_path: Path):
    out = run_example("huggingface_trainer.py", "uw", "--steps", "45", "--out", str(tmp_path))
    assert "controller uw: 2 decisions" in out and "validation accuracy" in out
    assert list(tmp_path.glob("curriculum/events.out.tfevents.*"))


def test_the_overhead_benchmark_reports_its_figures():
    """benchmarks/session_overhead.py (RESULTS.md §6) keeps its --json contract."""
    script = str(ROOT / "benchmarks" / "session_overhead.py")
    tiny = ["--steps", "4", "--reps", "2", "--interval", "2", "--layers", "1", "--width", "32"]
    done = subprocess.run(
        [sys.executable, script, "--json", "--controller", "uw", *tiny],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["decisions_timed"] == 4 and result["controller"] == "uw"
    for key in ("plain_step_ms", "decision_ms", "loss_call_ms", "controller_share_of_step"):
        assert result[key] > 0, key
