"""What a new user hits first (issue 14): divergence in plain sight, errors that name the
option and the fix, runs that survive interrupts, `run` = the benchmark's seed, suites
built from numpy, the Gymnasium id after `import curriculum_rl`.

Item 1 of the issue (heuristics in a user's own loop) is tested with the session.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import os
import signal
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import record_run_seeds

from curriculum_rl import runner
from curriculum_rl.agents.callbacks import InnerRunStatsCallback, StopOnRequestCallback
from curriculum_rl.agents.config import TrainConfig, config_from_dict
from curriculum_rl.agents.train import train
from curriculum_rl.atomic import folder_lock
from curriculum_rl.benchmark.run import run_seeds
from curriculum_rl.benchmark.store import run_path
from curriculum_rl.cli import main
from curriculum_rl.controllers.base import Controller, DecisionState, RunContext
from curriculum_rl.controllers.decision import Decision
from curriculum_rl.controllers.learned import LearnedController
from curriculum_rl.controllers.registry import make_controller
from curriculum_rl.suites import resolve_suite
from curriculum_rl.suites.base import MLPBody, SuiteInstance, TaskData, TaskSpec
from curriculum_rl.trainer import TrainerConfig
from curriculum_rl.trainer.signals import Signals

FAST = ["--budget", "50", "--interval", "25", "--quiet"]
CPU = TrainerConfig(device="cpu")

# A user suite whose second task's targets are ~1e30: its squared error overflows float32
# at once, so every run on it diverges (uniform's too).
EXPLODING_SUITE = """
import numpy as np
from curriculum_rl.suites.base import MLPBody, SuiteInstance, TaskData, TaskSpec

class Exploding:
    name = "exploding"

    def sample(self, seed):
        rng = np.random.default_rng(seed)

        def data(scale):
            x = [rng.normal(size=(n, 4)).astype(np.float32) for n in (64, 32, 32)]
            y = [scale * xi.sum(1, keepdims=True) for xi in x]
            return TaskData(x[0], y[0], x[1], y[1], x[2], y[2])

        tasks = [TaskSpec("calm", "regression", 1, "mse"), TaskSpec("huge", "regression", 1, "mse")]
        return SuiteInstance("exploding", tasks, [data(1.0), data(1e30)], MLPBody(4, (16,)), (4,))

    def describe(self):
        return self.sample(0).tasks

def factory():
    return Exploding()
"""


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's own errors
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture
def exploding(tmp_path: Path) -> str:
    path = tmp_path / "exploding.py"
    path.write_text(EXPLODING_SUITE)
    return f"{path}:factory"


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if any run is trained (errors must come before the work)."""

    def refuse(*args, **kwargs):
        raise AssertionError("a run was trained before the error")

    monkeypatch.setattr(runner, "run_controller", refuse)


# ------------------------------------------------------------------ 2. divergence


def test_run_says_diverged_in_its_table_and_verdict(exploding):
    code, stdout, _ = _cli(["run", "--suite", exploding, "--controller", "dwa", "--json", *FAST])
    assert code == 0
    summary = _last_json(stdout)
    assert summary["diverged"] and summary["uniform_diverged"]
    assert "dwa DIVERGED; uniform DIVERGED" in stdout  # the test-J line
    assert "verdict: dwa DIVERGED" in stdout


def test_benchmark_counts_and_names_failed_runs_without_numpy_warnings(exploding, tmp_path):
    argv = ["benchmark", "--suite", exploding, "--controller", "dwa", "--no-reference"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. numpy's "Mean of empty slice"
        code, stdout, _ = _cli([*argv, "--seeds", "2", "--out", str(tmp_path / "b"), *FAST])
    assert code == 0
    lines = stdout.splitlines()
    assert any(line.startswith("1    ") and "2/2" in line for line in lines)  # failed/runs
    assert "exploding: no winner: failed runs (diverged)" in stdout
    summary = (tmp_path / "b" / "summary.md").read_text()
    assert "| 2/2 |" in summary and "no winner" in summary


# ------------------------------------------------------------------ 3. errors, not tracebacks


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["benchmark", "--suite", "synthetic", "--controller", "dwa", "--seeds", "0"], "--seeds"),
        (["run", "--seed", "-1"], "argument --seed: a seed must be 0 or more, got -1"),
        (["run", "--budget", "ten"], "argument --budget: must be an integer, got 'ten'"),
    ],
)
def test_bad_numbers_name_the_option(argv, message, tmp_path, no_training):
    if argv[0] == "benchmark":
        argv = [*argv, "--out", str(tmp_path)]
    code, _, stderr = _cli(argv)
    assert code == 2 and message in stderr and "Traceback" not in stderr


def test_interval_longer_than_the_budget_is_refused(tmp_path, no_training):
    code, _, stderr = _cli(["run", "--budget", "50", "--interval", "100", "--quiet"])
    assert code == 2
    assert "--interval 100 is larger than --budget 50" in stderr


@pytest.mark.skipif(torch.version.cuda is not None, reason="needs a CPU-only PyTorch build")
def test_cuda_on_a_cpu_build_is_a_sentence(tmp_path, no_training):
    code, _, stderr = _cli(["run", "--device", "cuda", *FAST])
    assert code == 2 and "--device cuda: this PyTorch build" in stderr
    assert "use `cpu` or `auto` instead" in stderr
    code, _, stderr = _cli(["run", "--device", "gpu", *FAST])
    assert code == 2 and "--device 'gpu' is not a device" in stderr


def test_out_that_is_a_file_is_refused_before_any_training(tmp_path, no_training):
    file = tmp_path / "taken"
    file.write_text("not a folder")
    for argv in (
        ["run", "--out", str(file), *FAST],
        ["run", "--out", str(file / "below"), *FAST],
        ["benchmark", "--suite", "synthetic", "--controller", "dwa", "--out", str(file)],
        ["train", "--out", str(file)],
    ):
        code, _, stderr = _cli(argv)
        assert code == 2 and "--out" in stderr and str(file) in stderr, (argv, stderr)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_out_is_refused_before_any_training(tmp_path, no_training):
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    code, _, stderr = _cli(["run", "--out", str(locked), *FAST])
    assert code == 2 and "cannot write there" in stderr


def _bench(out: Path, seeds: int, *extra: str, controllers=("dwa",)) -> tuple[int, str, str]:
    argv = ["benchmark", "--suite", "synthetic", "--controller", *controllers, "--no-reference"]
    return _cli([*argv, "--seeds", str(seeds), "--out", str(out), *FAST, *extra])


@pytest.fixture(scope="module")
def bench3(tmp_path_factory) -> tuple[Path, str]:
    """A 3-seed benchmark of two controllers that read the signals, and its stdout."""
    out = tmp_path_factory.mktemp("bench3")
    code, stdout, _ = _bench(out, 3, controllers=("dwa", "geometric-mean"))
    assert code == 0
    return out, stdout


def test_more_seeds_on_a_benchmark_folder_only_add_runs(tmp_path, monkeypatch, bench3):
    out = tmp_path / "bench"
    assert _bench(out, 2)[0] == 0
    stored = run_path(out, "synthetic", "dwa", 1)
    before = stored.read_bytes(), stored.stat().st_mtime_ns
    calls = record_run_seeds(monkeypatch)
    code, stdout, _ = _bench(out, 3, "--json")
    assert code == 0 and calls == [[2], [2]]  # uniform and dwa, seed 2 only
    assert (stored.read_bytes(), stored.stat().st_mtime_ns) == before
    assert _last_json(stdout)["settings"]["seeds"] == 3
    # ... and the folder holds what a benchmark of 3 seeds from the start computed
    for seed in range(3):
        fresh = json.loads(run_path(bench3[0], "synthetic", "dwa", seed).read_text())
        assert json.loads(run_path(out, "synthetic", "dwa", seed).read_text()) == fresh


def test_other_settings_are_refused_naming_the_difference(bench3, no_training):
    code, _, stderr = _bench(bench3[0], 1, "--budget", "75")
    assert code == 2 and "budget 50 there, 75 here" in stderr


def test_a_second_benchmark_on_a_busy_folder_stops_at_once(tmp_path, no_training):
    out = tmp_path / "bench"
    with folder_lock(out, "curriculum-rl benchmark"):
        code, _, stderr = _bench(out, 1)
    assert code == 2
    assert f"{out} is in use by another `curriculum-rl benchmark` (pid {os.getpid()})" in stderr


def test_ctrl_c_in_a_benchmark_says_how_to_resume(tmp_path, monkeypatch):
    out = tmp_path / "bench"
    real = runner.run_controller
    calls = []

    def interrupted_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_controller", interrupted_second)
    code, _, stderr = _bench(out, 2)
    assert code == 130
    assert "rerun the same command to resume" in stderr and "Traceback" not in stderr
    assert run_path(out, "synthetic", "uniform", 1).is_file()  # the first batch is kept
    monkeypatch.setattr(runner, "run_controller", real)
    code, stdout, _ = _bench(out, 2)
    assert code == 0 and "(2 computed now, the rest resumed)" in stdout


# ------------------------------------------------------------------ 4. train interrupts

TINY = {
    "env": {"budget": 50, "interval": 25, "trainer": {"device": "cpu"}},
    "ppo": {"n_steps": 4, "batch_size": 8, "n_epochs": 1},
    "train": {"n_envs": 2, "total_timesteps": 16, "checkpoint_every": 1000},
    "eval": {"every": 0},
}


def _tiny(total: int = 16) -> TrainConfig:
    config = config_from_dict(TINY)
    return replace(config, train=replace(config.train, total_timesteps=total))


def _quiet(_: str) -> None:
    pass


def _episode_steps(out: Path) -> list[int]:
    lines = (out / "episodes.csv").read_text().splitlines()[1:]
    return [int(line.split(",")[0]) for line in lines]


def test_ctrl_c_in_train_saves_a_checkpoint_and_resume_finishes(tmp_path, monkeypatch):
    real_step = InnerRunStatsCallback._on_step

    def ctrl_c_at_6(self):
        if self.num_timesteps == 6:
            os.kill(os.getpid(), signal.SIGINT)  # what a terminal's Ctrl-C sends
        return real_step(self)

    monkeypatch.setattr(InnerRunStatsCallback, "_on_step", ctrl_c_at_6)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest runs in the background
    config, out = _tiny_toml(tmp_path, total=16), tmp_path / "run"
    code, stdout, stderr = _cli(["train", "--config", str(config), "--out", str(out), "--quiet"])
    assert code == 130 and "Traceback" not in stderr
    assert "interrupted at 8 timesteps: checkpoint saved" in stdout  # the step after Ctrl-C
    assert f"curriculum-rl train --out {out} --resume" in stdout
    assert json.loads((out / "policy.json").read_text())["notes"]["timesteps"] == 8
    assert (out / "checkpoints" / "policy-8.json").is_file()
    assert signal.getsignal(signal.SIGINT) is before  # restored
    monkeypatch.setattr(InnerRunStatsCallback, "_on_step", real_step)
    code, stdout, _ = _cli(["train", "--out", str(out), "--resume", "--quiet", "--json"])
    assert code == 0 and _last_json(stdout)["timesteps"] == 16


def _tiny_toml(folder: Path, total: int) -> Path:
    path = folder / "tiny.toml"
    path.write_text(
        "[env]\nbudget = 50\ninterval = 25\n[env.trainer]\ndevice = 'cpu'\n"
        "[ppo]\nn_steps = 4\nbatch_size = 8\nn_epochs = 1\n"
        f"[train]\nn_envs = 2\ntotal_timesteps = {total}\ncheckpoint_every = 1000\n"
        "[eval]\nevery = 0\n"
    )
    return path


def test_a_run_killed_before_its_first_checkpoint_resumes_without_mixed_rows(tmp_path, monkeypatch):
    def crash_at_12(self):
        if self.num_timesteps >= 12:
            raise RuntimeError("killed")
        return True

    monkeypatch.setattr(StopOnRequestCallback, "_on_step", crash_at_12)
    with pytest.raises(RuntimeError, match="killed"):
        train(_tiny(), tmp_path, progress=False, log=_quiet)
    dead = _episode_steps(tmp_path)
    assert dead and max(dead) > 0  # the dead run logged episodes past its last checkpoint (0)
    monkeypatch.undo()
    # The folder holds a resumable run (checkpointed at timestep 0): a fresh run is refused.
    with pytest.raises(ValueError, match="already holds a training run"):
        train(_tiny(), tmp_path, progress=False, log=_quiet)
    train(_tiny(), tmp_path, resume=True, progress=False, log=_quiet)
    steps = _episode_steps(tmp_path)
    assert steps == sorted(steps) and max(steps) == 16  # one run's rows, none repeated
    assert len(steps) == 16 // 2  # 2 runs x one 2-decision episode per 4 timesteps


def test_a_fresh_run_drops_the_rows_of_a_dead_run_that_never_checkpointed(tmp_path):
    # What a run killed before any checkpoint (or by an older version) leaves behind.
    (tmp_path / "episodes.csv").write_text("timesteps,return\n40,9.9\n")
    (tmp_path / "eval.csv").write_text("timesteps,gain\n40,9.9\n")
    (tmp_path / "progress-40.csv").write_text("time/total_timesteps\n48\n")
    train(_tiny(8), tmp_path, progress=False, log=_quiet)
    assert "9.9" not in (tmp_path / "episodes.csv").read_text()
    assert not (tmp_path / "eval.csv").exists()  # [eval] every = 0: no evaluation since
    assert not (tmp_path / "progress-40.csv").exists()
    assert max(_episode_steps(tmp_path)) == 8


def test_resume_of_a_finished_run_changes_nothing(tmp_path):
    first = train(_tiny(8), tmp_path, progress=False, log=_quiet)
    policy = tmp_path / "policy.json"
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    again = train(_tiny(8), tmp_path, resume=True, progress=False, log=_quiet)
    assert again.trained_now == 0 and again.wall_time_s == pytest.approx(first.wall_time_s)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert after == before  # no new progress file, no rewritten policy or config
    assert json.loads(policy.read_text())["notes"]["wall_time_s"] == first.wall_time_s
    # Extending it (by one rollout: 4 steps x 2 envs) adds its wall time to the first part's.
    longer = train(_tiny(16), tmp_path, resume=True, progress=False, log=_quiet)
    assert longer.wall_time_s > first.wall_time_s and longer.trained_now == 8


def test_cli_train_reports_an_already_complete_run(tmp_path):
    config, out = _tiny_toml(tmp_path, total=8), tmp_path / "run"
    assert _cli(["train", "--config", str(config), "--out", str(out), "--quiet"])[0] == 0
    code, stdout, _ = _cli(["train", "--out", str(out), "--resume", "--quiet"])
    assert code == 0 and "already complete at 8 timesteps; nothing was trained" in stdout


# ------------------------------------------------------------------ 5. run = benchmark seed


@pytest.mark.parametrize("controller", ["dwa", "agents/default.json"])
def test_a_seed_gives_the_same_numbers_alone_and_in_any_batch(controller):
    """The trainer pads runs to their batch; run_seeds pads each by its own shape, so a
    controller that reads the signals (dwa) makes the same decisions alone and batched;
    the shipped policy too (its network runs once per run: a batched matrix product
    rounds differently with its row count)."""
    suite = resolve_suite("synthetic")
    seeds = [0, 1, 2]
    instances = [suite.sample(s) for s in seeds]
    assert len({i.num_tasks for i in instances}) > 1  # batches mix task counts

    def make(batch):
        if controller.endswith(".json"):
            return LearnedController.load(controller)
        return make_controller(controller)

    together = run_seeds(instances, seeds, make, 100, 25, CPU)
    for seed, record in zip(seeds, together, strict=True):
        (alone,) = run_seeds([instances[seed]], [seed], make, 100, 25, CPU)
        assert alone.to_dict() == record.to_dict()


class _KeepStates(Controller):
    """Decides as ``inner`` and keeps a copy of every decision state it met."""

    def __init__(self, inner: Controller) -> None:
        self.inner, self.states = inner, []

    def reset(self, context: RunContext) -> None:
        self.inner.reset(context)

    def decide(self, signals: DecisionState) -> Decision:
        fields = {f.name: getattr(signals, f.name).clone() for f in dataclasses.fields(Signals)}
        # the decision loop replaces its previous decision, never mutates it: no copy
        self.states.append(DecisionState(**fields, previous=signals.previous))
        return self.inner.decide(signals)


def test_the_shipped_policy_decides_for_a_run_as_it_does_alone():
    """The policy's network runs once per run. The 20 decision states of a run, decided
    in one batch, get the decisions each gets alone. With one batched pass (one matrix
    product over every run's task rows) 4 of these 20 differed: the product rounds a row
    by its place, and training amplifies that into a run whose numbers depend on the runs
    beside it (this run to 2000 steps: mean log error −0.9520 alone, −0.9532 and −0.9501
    as two identical runs side by side)."""
    policy = LearnedController.load("agents/v8.json")
    instance = resolve_suite("envs/train-raw-aux.toml").sample(3000001)
    keep = _KeepStates(policy)
    runner.run_controller([instance], [1733466498], keep, 500, 25, CPU, max_tasks=12)
    states = keep.states
    assert len(states) == 20

    fields = dataclasses.fields(Signals)
    batch = DecisionState(
        **{f.name: torch.cat([getattr(s, f.name) for s in states]) for f in fields},
        previous=functools.reduce(Decision.cat, [s.previous for s in states]),
    )
    together = policy.decide(batch)
    for run, state in enumerate(states):
        alone = policy.decide(state)
        assert torch.equal(together.weights[run], alone.weights[0])
        assert torch.equal(together.sampling[run], alone.sampling[0])


def test_run_reproduces_the_benchmark_seed_exactly(bench3):
    stored = json.loads(run_path(bench3[0], "synthetic", "dwa", 2).read_text())
    argv = ["run", "--suite", "synthetic", "--controller", "dwa", "--seed", "2"]
    code, stdout, _ = _cli([*argv, "--no-reference", "--json", *FAST])
    assert code == 0
    run = _last_json(stdout)["run"]
    assert run["final_test_j"] == stored["final_test_j"]
    assert run["j_curve"] == stored["j_curve"] and run["weights"] == stored["weights"]


# ------------------------------------------------------------------ 6. who won


def test_benchmark_console_ranks_controllers_and_names_the_winner(bench3):
    stdout = bench3[1]
    table = stdout[stdout.index("ranked by") : stdout.index("who won:")].splitlines()[2:]
    assert [int(line.split()[0]) for line in table] == [1, 2, 3]
    winner = table[0].split()[1]
    assert f"synthetic: {winner} (G_m" in stdout


# ------------------------------------------------------------------ 7. numpy suites


def _numpy_instance(seed: int = 0) -> SuiteInstance:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 3))  # float64, as scikit-learn hands it out
    labels = (x[:, 0] > 0).astype(np.int64)
    reg = TaskData(x, x[:, :1] * 2, x, x[:, :1] * 2, x, x[:, :1] * 2)
    cls = TaskData(x[::-1], labels, x, labels.tolist(), x, labels)  # a view, a list
    tasks = [
        TaskSpec("reg", "regression", 1, "mse"),
        TaskSpec("cls", "classification", 2, "accuracy"),
    ]
    return SuiteInstance("numpy-suite", tasks, [reg, cls], MLPBody(3, (8,)), (3,))


def test_a_suite_of_numpy_arrays_trains():
    instance = _numpy_instance()
    assert all(isinstance(t, torch.Tensor) for d in instance.data for t in vars(d).values())
    (record,) = run_seeds([instance], [0], lambda _: make_controller("dwa"), 50, 25, CPU)
    assert np.isfinite(record.final_test_j)


@pytest.mark.parametrize("bad", [{"x": 1}, "abc", None, [[1, 2], [3]], np.array(["a", "b"])])
def test_task_data_of_another_type_names_the_field(bad):
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"TaskData\.y_val must be a torch tensor or a numeric"):
        TaskData(x, x, x, bad, x, x)


def test_a_benchmark_refuses_a_controller_that_cannot_serve_a_suite(tmp_path, monkeypatch):
    dwa = type(make_controller("dwa"))
    real_reset = dwa.reset

    def at_most_two_tasks(self, context):
        if int(context.mask.sum(1).max()) > 2:
            raise ValueError("trained for at most 2 tasks")
        real_reset(self, context)

    monkeypatch.setattr(dwa, "reset", at_most_two_tasks)
    monkeypatch.setattr(runner, "run_controller", None)  # nothing may train
    code, _, stderr = _bench(tmp_path / "bench", 3)
    assert code == 2
    assert "controller 'dwa' cannot run on suite 'synthetic'" in stderr
    assert "trained for at most 2 tasks" in stderr and "Nothing was computed" in stderr
    assert not (tmp_path / "bench" / "runs").exists()


# ------------------------------------------------------------------ 8. the Gymnasium id


def test_the_gym_id_is_registered_by_importing_the_package_alone():
    """A fresh process: importing the package registers the id without importing torch
    (the env module loads at ``make``; it never imports SB3, by the layer contracts)."""
    code = (
        "import sys, curriculum_rl, gymnasium; "
        "spec = gymnasium.spec('curriculum_rl/Multitask-v0'); "
        "assert spec.entry_point == 'curriculum_rl.env.single:CurriculumEnv'; "
        "assert 'torch' not in sys.modules and 'stable_baselines3' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_gym_make_builds_a_working_env():
    import gymnasium as gym

    env = gym.make("curriculum_rl/Multitask-v0", budget=50, interval=25, trainer={"device": "cpu"})
    obs, _ = env.reset(seed=0)
    obs, reward, *_ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs) and np.isfinite(reward)
