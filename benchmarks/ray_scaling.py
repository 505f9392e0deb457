"""What Ray buys on this machine: benchmark grid wall time and PPO decisions per second
with one Ray worker against two (issue #16).

1. **Benchmark grid.** The same small grid (``--suites`` x uniform + ``--controllers`` x
   ``--seeds``, ``--batch-size`` runs per unit of work, so that there are several units to
   spread) through ``run_benchmark`` three ways: the ``local`` executor (this process, the
   reference), and the Ray executor with ``workers`` 1 and 2 (``ray-1``, ``ray-2``). Each
   run writes to a fresh temporary folder (nothing is resumed); no reference, plots or
   TensorBoard logs, which are the driver's serial work whatever the executor. Reported:
   the median wall time of each, the median over repetitions of ray-2 / ray-1 and
   ray-1 / local, and whether every run produced the same ``results.csv`` (Ray changes
   where the units run, never their numbers) with the IQM of G_m per controller.
2. **PPO rollouts.** ``train(...)`` of a small config (``--n-envs`` runs per trainer,
   episodes of ``--ppo-budget`` inner steps, one episode per rollout, no evaluation) in
   this process (``in-process``, the reference) and with its rollouts collected by Ray
   actors, ``[train] workers`` 1 and 2 (``ray-1``, ``ray-2``; each actor a batched VecEnv
   of ``n_envs`` runs, so W = 2 makes twice the decisions per rollout). A run trains
   ``2 x --decisions`` decisions plus one rollout, with a checkpoint every
   ``--decisions``: the steady rate is ``decisions / (wall at the second checkpoint -
   wall at the first)``, both the checkpoints' own ``wall_time_s``, a window of whole
   rollouts and PPO updates (and one checkpoint save) after the first reset. ``overall``
   is the run's own ``timesteps / wall_time_s`` (its learning clock). The actors start
   before that clock (SB3's ``VecMonitor`` asks them a question at construction), so
   ``set-up s`` is the ``train`` call's time outside it (env and actors, model, the
   first and last checkpoints, the learning-curve plot), and a Ray configuration's
   set-up minus the in-process one is the price of starting its actors.

Ray is started once, as a local Ray of 2 CPUs (:func:`curriculum_rl.cluster.ray_cluster`),
and its two task workers import the project before anything is timed; both are reported
apart (``ray_init_s``, ``ray_warmup_s``), as a ``benchmark --executor ray`` command pays
them once per command. Configurations are interleaved over repetitions (forward on even
repetitions, backward on odd ones: local, ray-1, ray-2, ray-2, ray-1, local, ...), since
the load of a shared machine drifts; only figures from one run are comparable.

    python benchmarks/ray_scaling.py [--reps 3] [--seeds 4] [--budget 250]
        [--batch-size 2] [--n-envs 8] [--ppo-budget 200] [--decisions 512]
        [--only grid|ppo] [--quick] [--json]

``--quick`` shrinks everything to a smoke run (flags given explicitly still win). Needs
the Ray extra: ``pip install 'curriculum-rl[ray]'``. One torch thread per process (the
driver, each Ray task and actor): on 2 cores a second thread only spins against the
other process.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch

from curriculum_rl.agents.checkpoints import checkpoint_wall_time
from curriculum_rl.agents.config import TrainConfig, config_from_dict
from curriculum_rl.agents.train import train
from curriculum_rl.benchmark import BenchmarkConfig, run_benchmark
from curriculum_rl.benchmark.config import resolve_controllers, resolve_suite_entries
from curriculum_rl.benchmark.run import InstanceCache, plan_units
from curriculum_rl.cluster import INSTALL_HINT, ray_cluster
from curriculum_rl.trainer import TrainerConfig

RAY_CPUS = 2  # the most workers compared
GRID = {"local": ("local", None), "ray-1": ("ray", 1), "ray-2": ("ray", 2)}
"""Grid configuration -> (executor, workers)."""
ROLLOUTS = {"in-process": (1, ""), "ray-1": (1, "auto"), "ray-2": (2, "")}
"""PPO configuration -> ([train] workers, address). ``auto`` sends one worker's rollouts
to a Ray actor; it reuses the Ray this script started (a connection is never remade)."""
QUICK = {
    "reps": 1,
    "seeds": 2,
    "budget": 50,
    "batch_size": 1,
    "n_envs": 2,
    "ppo_budget": 50,
    "decisions": 16,
}


def interleaved(names: list[str], reps: int) -> list[str]:
    """Forward on even repetitions, backward on odd ones, so that a drift of the machine's
    load over the run favours no configuration."""
    return [n for rep in range(reps) for n in (names if rep % 2 == 0 else names[::-1])]


def median_ratio(times: dict[str, list[float]], num: str, den: str) -> float:
    """Median over repetitions of ``num / den`` (paired by repetition)."""
    return statistics.median(a / b for a, b in zip(times[num], times[den], strict=True))


# --- Ray ------------------------------------------------------------------------------------


def _import_project() -> None:
    """A Ray task that loads what a benchmark unit needs (torch, the trainer), so that
    the timed units do not pay a worker's imports."""
    import curriculum_rl.benchmark.run  # noqa: F401

    time.sleep(0.5)  # hold this worker, so that the other task starts a second one


def start_ray(stack: ExitStack) -> tuple[float, float]:
    """A local Ray of :data:`RAY_CPUS` CPUs for the whole script (``run_benchmark`` and
    ``train`` reuse a connection that exists); seconds to start it and to warm its task
    workers."""
    start = time.perf_counter()
    ray = stack.enter_context(ray_cluster("benchmarks/ray_scaling.py", None, RAY_CPUS))
    started = time.perf_counter()
    task = ray.remote(_import_project).options(num_cpus=1)
    ray.get([task.remote() for _ in range(RAY_CPUS)])
    return started - start, time.perf_counter() - started


# --- 1. benchmark grid --------------------------------------------------------------------


def grid_config(args: argparse.Namespace, name: str, out: Path) -> BenchmarkConfig:
    executor, workers = GRID[name]
    return BenchmarkConfig(
        suites=tuple(args.suites),
        controllers=tuple(args.controllers),
        out=out,
        seeds=args.seeds,
        budget=args.budget,
        interval=args.interval,
        trainer=TrainerConfig(device="cpu"),
        reps=2000,  # bootstrap replicates: the CIs are not the point here
        reference=False,
        tensorboard=False,
        plots=False,
        progress=False,
        batch_size=args.batch_size,
        executor=executor,
        workers=workers,
    )


def count_units(config: BenchmarkConfig) -> tuple[int, int]:
    """(runs, units of work) of the grid, as the harness plans them."""
    suites = resolve_suite_entries(config.suites)
    controllers = resolve_controllers(config.controllers)
    seeds = list(config.seed_range)
    units = plan_units(config, suites, controllers, lambda *_: seeds, InstanceCache(suites))
    return len(suites) * len(controllers) * len(seeds), len(units)


def time_grid(args: argparse.Namespace, name: str) -> tuple[float, str, dict[str, Any]]:
    """Seconds of one ``run_benchmark`` into a fresh folder, its ``results.csv`` and the
    IQM of G_m per controller."""
    with tempfile.TemporaryDirectory(prefix="ray-scaling-") as tmp:
        config = grid_config(args, name, Path(tmp))
        start = time.perf_counter()
        result = run_benchmark(config)
        seconds = time.perf_counter() - start
        table = result.csv_path.read_text()
    iqm = {c: agg["gain"]["iqm"] for c, agg in result.summary["aggregate"].items()}
    return seconds, table, iqm


def measure_grid(args: argparse.Namespace) -> dict[str, Any]:
    runs, units = count_units(grid_config(args, "local", Path(tempfile.gettempdir())))
    # The driver's first grid pays lazy first-use costs; keep them out of the figures.
    time_grid(argparse.Namespace(**{**vars(args), "seeds": 1, "budget": args.interval}), "local")
    times: dict[str, list[float]] = {name: [] for name in GRID}
    tables: set[str] = set()
    iqms: dict[str, dict[str, Any]] = {}
    for name in interleaved(list(GRID), args.reps):
        seconds, table, iqm = time_grid(args, name)
        times[name].append(seconds)
        tables.add(table)
        iqms.setdefault(name, iqm)
    return {
        "runs": runs,
        "units": units,
        "median_s": {n: statistics.median(t) for n, t in times.items()},
        "times_s": times,
        "ray2_over_ray1": median_ratio(times, "ray-2", "ray-1"),
        "ray1_over_local": median_ratio(times, "ray-1", "local"),
        "ray2_over_local": median_ratio(times, "ray-2", "local"),
        "identical_results": len(tables) == 1,
        "iqm_gain": iqms,
    }


# --- 2. PPO rollouts ----------------------------------------------------------------------


def rollout_sizes(args: argparse.Namespace) -> tuple[int, int]:
    """(decisions per episode = ``n_steps``, timed decisions: ``--decisions`` rounded up
    to whole rollouts of the largest W, so that every checkpoint falls on a rollout end
    for every W)."""
    n_steps = args.ppo_budget // args.interval
    per_rollout = RAY_CPUS * args.n_envs * n_steps
    return n_steps, per_rollout * math.ceil(args.decisions / per_rollout)


def train_config(args: argparse.Namespace, name: str) -> TrainConfig:
    workers, address = ROLLOUTS[name]
    n_steps, window = rollout_sizes(args)
    return config_from_dict(
        {
            "env": {
                "budget": args.ppo_budget,
                "interval": args.interval,
                "trainer": {"device": "cpu"},
            },
            # One episode per rollout; minibatches of at most 64 as in agents/default.toml,
            # so W = 2 takes twice the gradient steps per rollout, the same per decision.
            "ppo": {"n_steps": n_steps, "batch_size": min(64, args.n_envs * n_steps)},
            "train": {
                "n_envs": args.n_envs,
                # One rollout past the second checkpoint: the final save at the end
                # would overwrite its wall time with one taken after a PPO update.
                "total_timesteps": 2 * window + workers * args.n_envs * n_steps,
                "checkpoint_every": window,  # the wall times that bound the timed window
                "torch_threads": 1,
                "workers": workers,
                "address": address,
            },
            "eval": {"every": 0},
        },
        f"ray_scaling {name}",
    )


def time_training(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """One ``train`` into a fresh folder: steady decisions per second, overall ones,
    seconds outside the learning clock and its ``episodes.csv``."""
    config = train_config(args, name)
    window = config.train.checkpoint_every
    with tempfile.TemporaryDirectory(prefix="ray-scaling-") as tmp:
        out = Path(tmp) / "train"
        start = time.perf_counter()
        result = train(config, out, progress=False, log=lambda _: None)
        call_s = time.perf_counter() - start
        first, second = (checkpoint_wall_time(out, k * window) for k in (1, 2))
        episodes = (out / "episodes.csv").read_text()
    return {
        "decisions_per_s": window / (second - first),
        "overall_decisions_per_s": result.timesteps / result.wall_time_s,
        "setup_s": call_s - result.wall_time_s,
        "episodes": episodes,
    }


def measure_ppo(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, list[dict[str, Any]]] = {name: [] for name in ROLLOUTS}
    for name in interleaved(list(ROLLOUTS), args.reps):
        figures[name].append(time_training(args, name))

    def med(key: str) -> dict[str, float]:
        return {n: statistics.median(f[key] for f in runs) for n, runs in figures.items()}

    rates = {n: [f["decisions_per_s"] for f in runs] for n, runs in figures.items()}
    n_steps, window = rollout_sizes(args)
    setup = med("setup_s")
    return {
        "n_envs": args.n_envs,
        "n_steps": n_steps,
        "timed_decisions": window,
        "decisions_per_s": med("decisions_per_s"),
        "rates": rates,
        "overall_decisions_per_s": med("overall_decisions_per_s"),
        "setup_s": setup,
        "actor_startup_s": {n: setup[n] - setup["in-process"] for n in ("ray-1", "ray-2")},
        "ray2_over_ray1": median_ratio(rates, "ray-2", "ray-1"),
        "ray1_over_in_process": median_ratio(rates, "ray-1", "in-process"),
        # W = 1 on Ray replays the in-process env bit for bit (tests/test_ray.py).
        "ray1_replays_in_process": figures["ray-1"][0]["episodes"]
        == figures["in-process"][0]["episodes"],
    }


# --- report ---------------------------------------------------------------------------------


def print_grid(args: argparse.Namespace, grid: dict[str, Any]) -> None:
    print(
        f"\nbenchmark grid: {' '.join(args.suites)} x uniform {' '.join(args.controllers)} x "
        f"{args.seeds} seeds = {grid['runs']} runs in {grid['units']} units (batch size "
        f"{args.batch_size}), budget {args.budget}, interval {args.interval}, {args.reps} reps"
    )
    print(f"{'config':<12}{'median s':>10}{'min s':>9}{'max s':>9}")
    for name, times in grid["times_s"].items():
        print(f"{name:<12}{statistics.median(times):>10.2f}{min(times):>9.2f}{max(times):>9.2f}")
    print(
        f"ray-2 / ray-1 {grid['ray2_over_ray1']:.3f}, ray-1 / local {grid['ray1_over_local']:.3f}"
        f", ray-2 / local {grid['ray2_over_local']:.3f} (medians of per-rep ratios)"
    )
    same = "yes" if grid["identical_results"] else "NO"
    print(f"identical results.csv in every run: {same}; IQM of G_m per controller:")
    for name, iqm in grid["iqm_gain"].items():
        print(f"  {name:<10}" + "  ".join(f"{c} {_num(v)}" for c, v in iqm.items()))


def print_ppo(args: argparse.Namespace, ppo: dict[str, Any]) -> None:
    print(
        f"\nPPO: {ppo['n_envs']} runs per trainer, episodes of {args.ppo_budget} steps "
        f"({ppo['n_steps']} decisions, one per rollout), {ppo['timed_decisions']} timed "
        f"decisions after as many untimed, {args.reps} reps"
    )
    print(f"{'config':<12}{'decisions/s':>12}{'overall/s':>11}{'set-up s':>10}{'actors s':>10}")
    for name in ROLLOUTS:
        actors = ppo["actor_startup_s"].get(name)
        print(
            f"{name:<12}{ppo['decisions_per_s'][name]:>12.1f}"
            f"{ppo['overall_decisions_per_s'][name]:>11.1f}{ppo['setup_s'][name]:>10.2f}"
            + (f"{actors:>10.2f}" if actors is not None else f"{'':>10}")
        )
    replays = "yes" if ppo["ray1_replays_in_process"] else "NO"
    print(
        f"ray-2 / ray-1 decisions/s {ppo['ray2_over_ray1']:.3f}, ray-1 / in-process "
        f"{ppo['ray1_over_in_process']:.3f} (medians of per-rep ratios; actors s: set-up "
        f"beyond in-process); ray-1 replays the in-process episodes: {replays}"
    )


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.4f}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--suites", nargs="+", default=["synthetic-scales", "synthetic-related"])
    parser.add_argument("--controllers", nargs="+", default=["uw", "dwa"])
    parser.add_argument("--seeds", type=int, default=4, help="grid seeds per pair")
    parser.add_argument("--budget", type=int, default=250, help="grid inner steps per run")
    parser.add_argument("--interval", type=int, default=25, help="inner steps per decision")
    parser.add_argument("--batch-size", type=int, default=2, help="grid runs per unit")
    parser.add_argument("--n-envs", type=int, default=8, help="PPO runs per trainer")
    parser.add_argument("--ppo-budget", type=int, default=200, help="PPO episode length")
    parser.add_argument("--decisions", type=int, default=512, help="timed PPO decisions")
    parser.add_argument("--only", choices=["grid", "ppo"], help="measure one part only")
    parser.add_argument("--quick", action="store_true", help="a smoke run (seconds)")
    parser.add_argument("--json", action="store_true", help="print a JSON object as last line")
    args, _ = parser.parse_known_args()
    if args.quick:  # smaller defaults; flags given explicitly still win
        parser.set_defaults(**QUICK)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if importlib.util.find_spec("ray") is None:
        sys.exit(f"ray_scaling.py compares Ray executors and needs Ray: `{INSTALL_HINT}`")
    torch.set_num_threads(1)  # as every Ray task and actor runs: the same numbers, no spinning
    parts: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
        "grid": measure_grid,
        "ppo": measure_ppo,
    }
    result: dict[str, Any] = {"machine": platform.processor() or platform.machine()}
    with ExitStack() as stack:  # Ray lives until every part is measured
        result["ray_init_s"], result["ray_warmup_s"] = start_ray(stack)
        for name, measure in parts.items():
            if args.only in (None, name):
                result[name] = measure(args)
    print(
        f"local Ray of {RAY_CPUS} CPUs: start {result['ray_init_s']:.2f} s, warm-up of "
        f"its task workers {result['ray_warmup_s']:.2f} s"
    )
    if "grid" in result:
        print_grid(args, result["grid"])
    if "ppo" in result:
        print_ppo(args, result["ppo"])
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
