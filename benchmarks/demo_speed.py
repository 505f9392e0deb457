"""Speed of switch demonstrations: draws trained side by side vs one at a time.

Switch imitation (:mod:`curriculum_rl.agents.switch_imitation`) trains every training
instance twice, with the switch off and on. :func:`curriculum_rl.agents.imitation.run_grids`
batches draws that share a budget and a trainer shape, up to ``--batch`` instances (times
the two rules) per trainer. This times ``run_grids`` with ``batch=1`` (one instance per
trainer, as before batching) against ``--batch``, interleaved per suite, and checks that
both give the same numbers. Each figure is the ratio of medians over the repetitions.

    OMP_NUM_THREADS=1 python benchmarks/demo_speed.py [--reps 3] [--draws 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch

from curriculum_rl.agents.config import load_config
from curriculum_rl.agents.imitation import FIRST_SEED, GridDraw, run_grids
from curriculum_rl.agents.switch_imitation import SWITCHES, switched_rules
from curriculum_rl.controllers.learned import load_artifact
from curriculum_rl.suites import resolve_suite

RECIPE = "agents/switch-fallback.toml"
SUITES = (
    "envs/train-broad.toml",
    "envs/train-tokens.toml#tokens-family-shallow",
    "envs/train-gradnorm.toml#gradnorm-train-many",
)


def draws_of(suite_name: str, count: int, budget: int) -> list[GridDraw]:
    suite = resolve_suite(suite_name)
    rng = np.random.default_rng(0)
    seeds = range(FIRST_SEED, FIRST_SEED + count)
    return [GridDraw(suite.sample(s), s, budget, int(rng.integers(2**31))) for s in seeds]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--draws", type=int, default=8, help="instances per suite")
    parser.add_argument("--batch", type=int, default=8, help="instances per trainer")
    parser.add_argument("--budget", type=int, default=500, help="inner steps per run")
    parser.add_argument("--suites", nargs="+", default=list(SUITES))
    parser.add_argument("--json", action="store_true", help="print a JSON object as last line")
    args = parser.parse_args()
    torch.set_num_threads(1)
    env = load_config(RECIPE).env
    rules = switched_rules(load_artifact("agents/v7.json"), SWITCHES["fallback"])
    result = {"machine": platform.processor() or platform.machine(), "speedup": {}}
    for name in args.suites:
        draws = draws_of(name, args.draws, args.budget)
        times: dict[int, list[float]] = {1: [], args.batch: []}
        scores = {}
        for _ in range(args.reps):
            for batch in times:
                start = time.perf_counter()
                runs = run_grids(env, draws, rules, batch=batch)
                times[batch].append(time.perf_counter() - start)
                scores[batch] = [r.scores for r in runs]
        if scores[1] != scores[args.batch]:
            raise AssertionError(f"{name}: batched draws changed their numbers")
        ratio = statistics.median(times[1]) / statistics.median(times[args.batch])
        result["speedup"][name] = round(ratio, 2)
        print(
            f"{name}: {args.draws} draws, batch {args.batch} vs 1: {ratio:.2f}x "
            f"({statistics.median(times[1]):.1f} s vs {statistics.median(times[args.batch]):.1f} s)"
        )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
