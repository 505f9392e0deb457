"""Scaling out on Ray: benchmark units as Ray tasks, PPO rollouts from Ray actors.

The fast tests need no Ray: without it the options fail with the extra to install, the
core never imports it, and a benchmark stores each unit as it returns. The slow tests
(CI's second step, with the ``[ray]`` extra) start a local Ray of 2 CPUs, no cluster, and
check that Ray changes where the work runs, never its numbers.
"""

from __future__ import annotations

import contextlib
import io
import json
import operator
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from curriculum_rl.agents.config import config_from_dict
from curriculum_rl.agents.ray_vec_env import RayVecEnv
from curriculum_rl.agents.train import make_env, train
from curriculum_rl.agents.vec_env import (
    BatchedCurriculumVecEnv,
    MixedCurriculumVecEnv,
    make_worker_env,
)
from curriculum_rl.benchmark.config import (
    BenchmarkConfig,
    resolve_controllers,
    resolve_suite_entries,
)
from curriculum_rl.benchmark.executors import LocalExecutor, RayExecutor
from curriculum_rl.benchmark.run import InstanceCache, execute_runs
from curriculum_rl.benchmark.store import run_path
from curriculum_rl.cli import main
from curriculum_rl.cluster import INSTALL_HINT

TINY_TRAIN = {
    "env": {"budget": 50, "interval": 25, "trainer": {"device": "cpu"}},
    "ppo": {"n_steps": 4, "batch_size": 8, "n_epochs": 2},
    "train": {"n_envs": 2, "total_timesteps": 16, "checkpoint_every": 8},
    "eval": {"every": 0},
}


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _bench_args(out: Path, *extra: str) -> list[str]:
    return [
        "benchmark",
        "--suite",
        "synthetic-scales",
        "synthetic-related",
        "--controller",
        "dwa",
        "static-tuned",
        "--seeds",
        "3",
        "--budget",
        "50",
        "--interval",
        "25",
        "--no-reference",
        "--quiet",
        "--out",
        str(out),
        *extra,
    ]


# --- without Ray -----------------------------------------------------------------------


def test_the_core_never_imports_ray():
    # Only curriculum_rl.cluster may import Ray (the import-linter contract that
    # tests/test_layers.py runs); this checks that it does so only when called.
    code = "import sys, curriculum_rl.cluster; assert 'ray' not in sys.modules, 'ray imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_ray_options_without_ray_name_the_extra_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails
    code, _, err = _cli(_bench_args(tmp_path / "bench", "--executor", "ray"))
    assert code == 2 and INSTALL_HINT in err and "--executor ray" in err
    assert not (tmp_path / "bench" / "runs").exists()

    config = tmp_path / "tiny.toml"
    config.write_text("[train]\nn_envs = 2\n")
    out = tmp_path / "train"
    code, _, err = _cli(["train", "--config", str(config), "--out", str(out), "--workers", "2"])
    assert code == 2 and INSTALL_HINT in err
    assert not (out / "checkpoints").exists()


def test_ray_options_need_the_ray_executor_and_a_worker(tmp_path):
    with pytest.raises(ValueError, match="--executor ray"):
        BenchmarkConfig(("synthetic",), ("uniform",), tmp_path, workers=2)
    with pytest.raises(ValueError, match="--executor ray"):
        BenchmarkConfig(("synthetic",), ("uniform",), tmp_path, address="auto")
    with pytest.raises(ValueError, match="workers must be >= 1"):
        config_from_dict({"train": {"workers": 0}})


class _StopsAfterOneUnit(LocalExecutor):
    """An executor whose second unit fails (a lost worker, a crash): the first unit's
    runs must be stored by then."""

    def map_unordered(self, fn, calls, progress=None):
        for done, (i, records) in enumerate(super().map_unordered(fn, calls, progress)):
            if done == 1:
                raise RuntimeError("worker lost")
            yield i, records


def test_each_unit_is_stored_as_it_returns_and_a_rerun_computes_only_the_rest(tmp_path):
    config = BenchmarkConfig(
        ("synthetic-scales",),
        ("uniform",),
        tmp_path,
        seeds=2,
        budget=50,
        batch_size=1,  # one unit per seed
        tensorboard=False,
        plots=False,
        progress=False,
    )
    suites = resolve_suite_entries(config.suites)
    controllers = resolve_controllers(config.controllers)
    instances = InstanceCache(suites)
    with pytest.raises(RuntimeError, match="worker lost"):
        execute_runs(config, suites, controllers, instances, _StopsAfterOneUnit())
    first, second = (run_path(tmp_path, "synthetic-scales", "uniform", s) for s in (0, 1))
    assert first.is_file() and not second.exists()
    stamp = first.stat().st_mtime_ns

    records, computed = execute_runs(config, suites, controllers, instances, LocalExecutor())
    assert computed == 1 and second.is_file() and first.stat().st_mtime_ns == stamp
    assert [r["seed"] for r in records["synthetic-scales", "uniform"]] == [0, 1]


# --- on a local Ray (slow) ---------------------------------------------------------------


def _runs(out: Path) -> dict[str, dict]:
    return {str(p.relative_to(out)): json.loads(p.read_text()) for p in out.glob("runs/**/*.json")}


@pytest.mark.slow
def test_ray_benchmark_gives_the_local_results_and_resumes_without_recomputing(tmp_path):
    local, remote = tmp_path / "local", tmp_path / "ray"
    assert _cli(_bench_args(local))[0] == 0
    ray_args = ["--executor", "ray", "--workers", "2", "--batch-size", "2"]
    code, stdout, _ = _cli(_bench_args(remote, *ray_args))
    assert code == 0 and "(18 computed now" in stdout
    assert _runs(local) == _runs(remote) and len(_runs(local)) == 18  # uniform is added
    assert (local / "results.csv").read_bytes() == (remote / "results.csv").read_bytes()

    lost = run_path(remote, "synthetic-related", "static-tuned", 1)
    lost.unlink()
    stamps = {p: p.stat().st_mtime_ns for p in remote.glob("runs/**/*.json")}
    code, stdout, _ = _cli(_bench_args(remote, *ray_args))
    assert code == 0 and "(1 computed now" in stdout
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())
    assert _runs(local) == _runs(remote)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[object]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_ray_executor_yields_units_as_they_finish_and_stops_at_a_failing_one(local_ray):
    executor = RayExecutor(address=None, workers=1, device="cpu")  # one at a time: in order
    calls = [(6, 3), (1, 0), (8, 2)]
    seen = []
    with executor, pytest.raises(ZeroDivisionError):
        for i, result in executor.map_unordered(operator.truediv, calls):
            seen.append((i, result))
    assert seen == [(0, 2.0)]


def _trained(tmp_path: Path, name: str, **run: object):
    config = config_from_dict(TINY_TRAIN)
    config = replace(config, train=replace(config.train, **run))
    result = train(config, tmp_path / name, progress=False, log=lambda _: None)
    assert isinstance(result.model.get_env().venv, RayVecEnv) == config.train.uses_ray
    return result


def _parameters(result) -> list[torch.Tensor]:
    return [p.detach() for p in result.model.policy.parameters()]


@pytest.mark.slow
def test_one_ray_rollout_worker_trains_the_in_process_policy_bit_for_bit(tmp_path, local_ray):
    reference = _trained(tmp_path, "in-process")
    # address "auto": the rollouts go to a Ray actor even with one worker (here, to the
    # Ray this test started, which train() reuses and leaves running).
    remote = _trained(tmp_path, "ray", address="auto")
    episodes = [(tmp_path / name / "episodes.csv").read_text() for name in ("in-process", "ray")]
    assert episodes[0] == episodes[1]
    pairs = zip(_parameters(remote), _parameters(reference), strict=True)
    assert all(torch.equal(p, q) for p, q in pairs)

    two = _trained(tmp_path, "two", workers=2)  # 2 x 2 runs: one rollout of 16 decisions
    assert two.timesteps == 16 and two.model.n_envs == 4
    assert episodes[0].count("\n") == (tmp_path / "two" / "episodes.csv").read_text().count("\n")


def _assert_replays(front: RayVecEnv, alone: list, seed: int = 7, steps: int = 3) -> None:
    """``front`` steps as the in-process envs ``alone`` side by side, one per worker, env
    ``j`` seeded as the front's slots it stands for: ``seed + j * its num_envs`` (and,
    unseeded, drawing from numpy's generator in slot order)."""
    m = alone[0].num_envs
    assert front.num_envs == m * len(alone)
    front.seed(seed)
    for j, env in enumerate(alone):
        env.seed(seed + j * m)
    assert np.array_equal(front.reset(), np.concatenate([env.reset() for env in alone]))
    shape = (steps, front.num_envs, *front.action_space.shape)
    for step in np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32):
        obs, rewards, dones, infos = front.step(step)
        split = [env.step(step[j * m : (j + 1) * m]) for j, env in enumerate(alone)]
        assert np.array_equal(obs, np.concatenate([s[0] for s in split]))
        assert np.array_equal(rewards, np.concatenate([s[1] for s in split]))
        assert np.array_equal(dones, np.concatenate([s[2] for s in split]))
        assert [i["j"] for i in infos] == [i["j"] for s in split for i in s[3]]
    state = np.random.get_state()
    try:
        unseeded = front.reset()
        np.random.set_state(state)
        assert np.array_equal(unseeded, np.concatenate([env.reset() for env in alone]))
    finally:
        np.random.set_state(state)


@pytest.mark.slow
def test_each_ray_worker_replays_the_in_process_env_of_its_slots(local_ray):
    """Slot i seeded s behaves as in the in-process env (every env option: shadow runs,
    drawn budgets), so worker j replays an in-process env seeded base + j * n_envs."""
    config = config_from_dict(
        {"env": {"budget": 50, "interval": 25, "budgets": [25, 50], "shadow": True}}
    ).env
    n, workers = 2, 2
    front = RayVecEnv([(n, config)], workers)
    try:
        _assert_replays(front, [BatchedCurriculumVecEnv(n, config=config) for _ in range(workers)])
        assert front.get_attr("num_envs", [3, 0]) == [n, n]  # each worker's own env
    finally:
        front.close()


def _mix_config(**run: object):
    """2 runs on the MLP suite and 1 on sequence-trunk problems, small trainers."""
    trainer = {"batch_size": 16, "proj_dim": 8, "val_probe": 16, "device": "cpu"}
    env = {"budget": 50, "interval": 25, "budgets": [25, 50], "shadow": True, "trainer": trainer}
    mix = [{"suite": "envs/train-sequences.toml", "n_envs": 1}]
    return config_from_dict({"env": env, "train": {"n_envs": 2, "mix": mix, **run}})


@pytest.mark.slow
def test_one_ray_worker_replays_the_in_process_mix_bit_for_bit(local_ray):
    # address "auto": the Ray this test started, with one worker.
    front = make_env(_mix_config(address="auto")).venv
    alone = make_env(_mix_config()).venv
    assert isinstance(front, RayVecEnv) and isinstance(alone, MixedCurriculumVecEnv)
    try:
        _assert_replays(front, [alone])
        assert front.get_attr("num_envs", [2, 0]) == [1, 2]  # the mix block, the main one
    finally:
        front.close()


@pytest.mark.slow
def test_each_ray_worker_hosts_the_whole_mix(local_ray):
    front = make_env(_mix_config(workers=2)).venv
    assert isinstance(front, RayVecEnv) and front.num_envs == 2 * (2 + 1)
    try:
        _assert_replays(front, [make_worker_env(front.blocks) for _ in range(2)])
        assert front.get_attr("num_envs", [5, 3, 2]) == [1, 2, 1]
    finally:
        front.close()
