"""Headroom on the training distribution: where does pacing matter at all?

On instances sampled from each setting of the default synthetic distribution, compare
uniform weighting with (a) static weights chosen on the validation split from the stated
grid of ``tune_static_weights`` (tuning seed distinct from the evaluation seeds),
(b) uncertainty weighting and (c) the dynamic geometric-mean loss (weights ~ 1/L_k at
every step). Report per setting the gain ``G = J_uniform - J`` on the test split
(log-loss units, higher is better), paired on the same instance and seed.

    python benchmarks/headroom.py [--instances 4] [--seeds 2] [--budget 1000] [--json]

The last line with ``--json`` holds ``median_gain_best_static`` (median over all sampled
instances and seeds of J_uniform - J_best-static), the same per setting, and the other
methods' medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from curriculum_rl.controllers.registry import make_controller
from curriculum_rl.controllers.static import StaticWeights, tune_static_weights
from curriculum_rl.runner import run_controller
from curriculum_rl.suites import SyntheticSuite
from curriculum_rl.suites.synthetic import default_settings
from curriculum_rl.trainer import TrainerConfig

TUNING_SEED = 10_000  # tuning never sees the evaluation seeds


def setting_gains(index: int, setting, args, config: TrainerConfig) -> dict[str, list[float]]:
    suite = SyntheticSuite(name=f"synthetic-{setting.name}", settings=(setting,))
    instance_seeds = [1000 * index + i for i in range(args.instances)]
    instances = [suite.sample(s) for s in instance_seeds]
    insts = [inst for inst in instances for _ in range(args.seeds)]
    seeds = [seed for _ in instances for seed in range(args.seeds)]

    def test_j(controller) -> torch.Tensor:
        records = run_controller(insts, seeds, controller, args.budget, args.interval, config)
        return torch.tensor([r.final_test_j for r in records])

    tuned = tune_static_weights(instances, [TUNING_SEED], args.budget, args.interval, config)
    per_pair = [weights for weights in tuned for _ in range(args.seeds)]
    uniform = test_j(make_controller("uniform"))
    results = {
        "best_static": uniform - test_j(StaticWeights(per_pair)),
        "uncertainty": uniform - test_j(make_controller("uw")),
        "geometric_mean": uniform - test_j(make_controller("geometric-mean")),
    }
    return {name: gains.tolist() for name, gains in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=4, help="instances per setting")
    parser.add_argument("--seeds", type=int, default=2, help="evaluation seeds per instance")
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--interval", type=int, default=25)
    parser.add_argument("--settings", nargs="*", default=None, help="only these settings")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object as the last line"
    )
    args = parser.parse_args()
    config = TrainerConfig(device="auto")
    start = time.perf_counter()
    per_setting = {}
    for index, setting in enumerate(default_settings()):
        if args.settings and setting.name not in args.settings:
            continue
        per_setting[setting.name] = setting_gains(index, setting, args, config)
        medians = {m: round(statistics.median(g), 3) for m, g in per_setting[setting.name].items()}
        print(f"{setting.name:>12}: median G {medians}", flush=True)
    methods = next(iter(per_setting.values())).keys()
    pooled = {m: [g for s in per_setting.values() for g in s[m]] for m in methods}
    result = {
        "median_gain_best_static": statistics.median(pooled["best_static"]),
        "median_gain_uncertainty": statistics.median(pooled["uncertainty"]),
        "median_gain_geometric_mean": statistics.median(pooled["geometric_mean"]),
        "per_setting_median": {
            s: {m: statistics.median(g) for m, g in gains.items()}
            for s, gains in per_setting.items()
        },
        "instances_per_setting": args.instances,
        "seeds": args.seeds,
        "budget": args.budget,
        "interval": args.interval,
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
