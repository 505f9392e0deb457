"""Fixed switch strengths on training instances: does a constant mix beat both ends?

A fitted switch (:mod:`curriculum_rl.agents.switch_imitation`) chooses per decision
between a policy (strength 0) and its switched twin (strength 1). If a run's final error
is concave in the strength, a constant strength in between beats the better end on
average without reading the regime at all. This runs the same training instances as a
switch demonstration (:func:`~curriculum_rl.agents.switch_imitation.demonstrate`,
same recipe, same seed) under each ``--strengths`` value, side by side from one
initialisation per instance, and reports each strength's gain over strength 0 (mean log
test error over the target tasks, off minus strength): the mean, the IQM with a
stratified bootstrap CI (strata: the training suites) and the win rate; per suite the
mean; and the oracle over the strengths.

    OMP_NUM_THREADS=1 python benchmarks/fallback_strength.py --instances 270 \\
        --strengths 0 0.25 0.5 0.75 1 --out runs/strength/fallback-v7-270.json   # RESULTS §30b
"""

from __future__ import annotations

import argparse
import platform
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from curriculum_rl.agents.config import load_config
from curriculum_rl.agents.switch_imitation import (
    SWITCHES,
    demonstrate,
    rule_gains,
)
from curriculum_rl.atomic import write_json_atomic
from curriculum_rl.controllers.learned import load_artifact
from curriculum_rl.stats import stratified_iqm


def summarise(strengths: list[float], suites: list[str], gains: np.ndarray) -> dict:
    by_suite: dict[str, list[int]] = defaultdict(list)
    for i, suite in enumerate(suites):
        by_suite[suite].append(i)
    rows = {}
    for j, strength in enumerate(strengths):
        column = gains[:, j]
        estimate = stratified_iqm([column[idx] for idx in by_suite.values()])
        rows[f"{strength:g}"] = {
            "mean": float(column.mean()),
            **estimate.to_dict(),
            "wins": float((column > 0).mean()),
            "by_suite": {s: float(column[idx].mean()) for s, idx in sorted(by_suite.items())},
        }
    return {
        "strengths": rows,
        "oracle": float(gains.max(axis=1).mean()),
        "oracle_ends": float(gains[:, [0, -1]].max(axis=1).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="agents/switch-fallback.toml")
    parser.add_argument("--policy", default="agents/v7.json")
    parser.add_argument("--switch", choices=sorted(SWITCHES), default="fallback")
    parser.add_argument("--instances", type=int, default=135)
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    if args.strengths[0] != 0.0 or len(args.strengths) < 2:
        parser.error("--strengths starts with 0 (the policy itself, the reference) and has more")
    torch.set_num_threads(1)
    config = load_config(args.config)
    switch = SWITCHES[args.switch]
    policy = load_artifact(args.policy)
    runs = demonstrate(config, policy, switch, args.instances, config.train.seed, args.strengths)
    gains = np.array([[0.0, *rule_gains(run.scores)] for run in runs])  # strength 0 gains 0
    suites = [run.suite for run in runs]
    result = summarise(args.strengths, suites, gains)
    result |= {
        "command": vars(args) | {"out": str(args.out)},
        "machine": platform.processor() or platform.machine(),
        "instances": [
            {
                "suite": s,
                "seed": r.seed,
                "setting": r.setting,
                "budget": r.budget,
                "scores": r.scores,
            }
            for r, s in zip(runs, suites, strict=True)
        ],
    }
    for strength, row in result["strengths"].items():
        print(
            f"strength {strength}: mean gain {row['mean']:+.4f}, IQM {row['iqm']:+.4f} "
            f"[{row['ci'][0]:+.4f}, {row['ci'][1]:+.4f}], wins {row['wins']:.0%}"
        )
    print(
        f"oracle over strengths {result['oracle']:.4f}, over the ends {result['oracle_ends']:.4f}"
    )
    if args.out:
        write_json_atomic(args.out, result)


if __name__ == "__main__":
    main()
