"""Headroom on the training distribution: where does pacing matter at all?

On instances sampled from the default synthetic training distribution (``synthetic``:
settings drawn by their weights), compare uniform weighting with (a) static weights chosen
on the validation split from the stated grid of ``tune_static_weights`` (a tuning seed
distinct from the evaluation seeds), (b) uncertainty weighting and (c) the dynamic
geometric-mean loss (weights ~ 1/L_k at every step). Report the gain
``G = J_uniform - J`` on the test split (log-loss units, higher is better), paired on the
same instance and seed, pooled and per setting.

    python benchmarks/headroom.py [--instances 40] [--seeds 2] [--tuning-seeds 2] [--budget 1500]
                                  [--json]

The last line with ``--json`` holds ``median_gain_best_static`` (median over all sampled
instances and seeds of J_uniform - J_best-static), the same per setting, and the other
methods' medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict

import torch

from curriculum_rl.controllers.registry import make_controller
from curriculum_rl.controllers.static import StaticGrid, StaticWeights, tune_static_weights
from curriculum_rl.runner import run_controller
from curriculum_rl.suites import SyntheticSuite
from curriculum_rl.trainer import TrainerConfig

TUNING_SEED = 10_000  # tuning seeds (10_000, 10_001, ...) never meet the evaluation seeds
FIRST_INSTANCE = (
    500_000  # instance seeds the controller's training (seeds < 2^31, random) ~never draws
)


def gains(args, config: TrainerConfig) -> tuple[list[str], dict[str, list[float]]]:
    """Per (instance, seed) pair: its setting, and each method's G over uniform."""
    suite = SyntheticSuite()
    instances = [suite.sample(FIRST_INSTANCE + i) for i in range(args.instances)]
    insts = [inst for inst in instances for _ in range(args.seeds)]
    seeds = [seed for _ in instances for seed in range(args.seeds)]

    def test_j(controller) -> torch.Tensor:
        records = run_controller(insts, seeds, controller, args.budget, args.interval, config)
        return torch.tensor([r.final_test_j for r in records])

    tuning_seeds = [TUNING_SEED + i for i in range(args.tuning_seeds)]
    grid = StaticGrid(factors=tuple(args.factors), rounds=args.rounds)
    tuned = tune_static_weights(instances, tuning_seeds, args.budget, config=config, grid=grid)
    uniform = test_j(make_controller("uniform"))
    results = {
        "best_static": uniform
        - test_j(StaticWeights([w for w in tuned for _ in range(args.seeds)])),
        "uncertainty": uniform - test_j(make_controller("uw")),
        "geometric_mean": uniform - test_j(make_controller("geometric-mean")),
    }
    settings = [inst.info["setting"] for inst in insts]
    return settings, {name: g.tolist() for name, g in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=40, help="sampled instances")
    parser.add_argument("--seeds", type=int, default=2, help="evaluation seeds per instance")
    parser.add_argument("--tuning-seeds", type=int, default=2, help="seeds scoring each candidate")
    parser.add_argument("--budget", type=int, default=1500)
    parser.add_argument("--interval", type=int, default=25)
    parser.add_argument(
        "--factors",
        type=float,
        nargs="+",
        default=list(StaticGrid.factors),
        help="stage-2 factors of the static grid (one task re-weighted at a time)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=StaticGrid.rounds,
        help="greedy passes of stage 2 of the static grid",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object as the last line"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    settings, pooled = gains(args, TrainerConfig(device="auto"))
    per_setting: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for i, setting in enumerate(settings):
        for method, values in pooled.items():
            per_setting[setting][method].append(values[i])
    for setting, by_method in sorted(per_setting.items()):
        medians = {m: round(statistics.median(g), 3) for m, g in by_method.items()}
        print(f"{setting:>12} ({len(by_method['best_static'])} runs): median G {medians}")
    result = {
        **{f"median_gain_{m}": statistics.median(g) for m, g in pooled.items()},
        "per_setting_median": {
            s: {m: statistics.median(g) for m, g in by_method.items()}
            for s, by_method in per_setting.items()
        },
        "runs_per_setting": {s: len(b["best_static"]) for s, b in per_setting.items()},
        "instances": args.instances,
        "seeds": args.seeds,
        "tuning_seeds": args.tuning_seeds,
        "budget": args.budget,
        "interval": args.interval,
        "grid": {"factors": args.factors, "rounds": args.rounds},
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(
        "median gain of the best static weights over uniform: "
        f"{result['median_gain_best_static']:.3f}"
    )
    if args.json:
        print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
