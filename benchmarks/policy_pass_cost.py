"""What running the policy's network once per run costs a benchmark batch.

A learned controller runs its network once per run, not once over the batch: one matrix
product over every run's task rows can round a row by its place among them, so a run's
decisions, and after training its numbers, would depend on the runs beside it
(``tests/test_hardening.py``). This script measures the price, interleaved repetition by
repetition (the machine is shared, so only figures from one run compare):

* ``run_s``: one batch of ``--runs`` runs of the shipped policy, ``--budget`` steps, as a
  benchmark trains them (one pass per run);
* ``batched_ms`` and ``per_run_ms``: one decision's network time on that batch's
  observation shape, in one pass and in one pass per run;
* ``overhead``: the extra network time of a whole run (decisions times the difference)
  as a share of ``run_s``.

    python benchmarks/policy_pass_cost.py [--suite synthetic] [--runs 16] [--budget 500]
        [--reps 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from curriculum_rl.controllers.learned import LearnedController
from curriculum_rl.controllers.learned.controller import per_run_actions
from curriculum_rl.controllers.observation import NUM_FEATURES
from curriculum_rl.runner import run_controller
from curriculum_rl.suites import resolve_suite

INTERVAL = 25
NETWORK_REPEATS = 50  # decisions timed per repetition: one is below the timer's noise


def network_ms(actor: torch.nn.Module, obs: torch.Tensor, per_run: bool) -> float:
    """Milliseconds of one decision's network passes on ``obs`` (N, K, F)."""
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(NETWORK_REPEATS):
            if per_run:
                per_run_actions(actor, obs)
            else:
                actor(obs)
    return (time.perf_counter() - start) * 1e3 / NETWORK_REPEATS


def measure(suite: str, runs: int, budget: int, reps: int) -> dict:
    instances = [resolve_suite(suite).sample(seed) for seed in range(runs)]
    policy = LearnedController.load("agents/default.json")
    width = max(policy.max_tasks, *(i.num_tasks for i in instances))
    obs = torch.rand(runs, width, NUM_FEATURES, generator=torch.Generator().manual_seed(0))
    decisions = -(-budget // INTERVAL)
    run_s, batched, per_run = [], [], []
    for _ in range(reps):
        start = time.perf_counter()
        run_controller(instances, list(range(runs)), policy, budget, INTERVAL)
        run_s.append(time.perf_counter() - start)
        batched.append(network_ms(policy.actor, obs, per_run=False))
        per_run.append(network_ms(policy.actor, obs, per_run=True))
    run_median, batched_ms, per_run_ms = map(statistics.median, (run_s, batched, per_run))
    return {
        "suite": suite,
        "runs": runs,
        "budget": budget,
        "run_s": run_median,
        "batched_ms": batched_ms,
        "per_run_ms": per_run_ms,
        "overhead": decisions * (per_run_ms - batched_ms) / 1e3 / run_median,
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="synthetic")
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--budget", type=int, default=500)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON line last")
    args = parser.parse_args(argv)
    if min(args.runs, args.budget, args.reps) < 1:
        parser.error("--runs, --budget and --reps must be >= 1")
    result = measure(args.suite, args.runs, args.budget, args.reps)
    print(
        f"{result['suite']}: {result['runs']} runs of {result['budget']} steps in "
        f"{result['run_s']:.2f} s; network per decision {result['batched_ms']:.2f} ms in one "
        f"pass, {result['per_run_ms']:.2f} ms run by run: {100 * result['overhead']:.1f}% "
        "of the batch's time"
    )
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
