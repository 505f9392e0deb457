"""`curriculum-rl run`: the paired comparison, Δm%, plots and the JSON last line."""

import json

import pytest

from curriculum_rl.cli import main, run_verdict

FAST = ["--budget", "50", "--interval", "25", "--quiet", "--json"]


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_run_with_the_shipped_policy_writes_records_plots_and_delta_m(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(["run", "--suite", "synthetic-scales", "--seed", "1", "--out", str(out), *FAST]) == 0
    )
    result = last_json(capsys)
    assert result["controller"] == "default"
    g_j = result["uniform"]["final_test_j"] - result["run"]["final_test_j"]
    assert result["gain_j_over_uniform_final"] == pytest.approx(g_j)
    # All tasks regress, loss = metric = MSE: G_m (task metrics) equals G_J (log loss).
    assert result["gain_over_uniform_final"] == pytest.approx(g_j, rel=1e-4)
    assert result["delta_m"] is not None and result["uniform_delta_m"] is not None
    for name in ("run.json", "schedules.png", "learning_curves.png"):
        assert (out / name).stat().st_size > 0
    stored = json.loads((out / "run.json").read_text())
    assert set(stored["runs"]) == {"default", "uniform"}
    assert len(stored["runs"]["default"][0]["weights"]) == 50 // 25 + 1


def test_uniform_run_is_its_own_baseline_and_reference_can_be_skipped(capsys):
    args = ["run", "--suite", "synthetic-related", "--controller", "uniform", "--no-reference"]
    assert main([*args, *FAST]) == 0
    result = last_json(capsys)
    assert result["gain_over_uniform_final"] == 0.0
    assert "delta_m" not in result


def test_bad_suite_and_controller_are_clear_errors(capsys):
    assert main(["run", "--suite", "no-such-suite", *FAST]) == 2
    assert "unknown suite" in capsys.readouterr().err
    assert main(["run", "--controller", "no-such-controller", *FAST]) == 2
    assert "no-such-controller" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("gain", "outcome"),
    [
        (-0.002, "default and uniform tie"),
        (0.2, "default beats uniform: task errors 1.22x lower on average"),
        (-0.2, "uniform beats default: default's task errors 1.22x higher on average"),
    ],
)
def test_the_run_verdict_names_the_winner_and_states_the_gain_once(gain, outcome):
    summary = {"diverged": False, "uniform_diverged": False, "gain_over_uniform_final": gain}
    verdict = run_verdict("default", summary)
    assert verdict.startswith(f"verdict: {outcome} (G_m {gain:+.3f}).")
    assert verdict.count("G_m") == 1
