"""How much of a switch's per-instance label is the run's own chaos?

A switch is fitted on labels "switching on wins this instance" (module
:mod:`curriculum_rl.agents.switch_imitation`), each from one pair of runs. Training can be
chaotic: a run nudged by a change far below anything a switch does can end elsewhere. This
measures that floor. Each demonstration draw (the same draws a switch's demonstrations
run) is trained twice by the policy alone, once with every loss weight times ``1 +
nudge`` (Adam divides the scale out but for its epsilon, so the nudge changes the update
only in the last bits; it is not a change of rule). The two runs' score difference is pure
chaos; per suite it is set beside the switch's own gains from stored demonstrations of the
same draws: where the nudge moves runs as much as the switch does, a per-instance label
there is mostly noise. ``--strength 1`` nudges the switched-on runs instead (the policy's
twin with the switch held there), whose chaos can differ from the policy's own.

    OMP_NUM_THREADS=1 python benchmarks/label_noise.py --config agents/switch-fallback.toml \\
        --policy agents/v8.json --switch gm-fallback --instances 90 \\
        --demos runs/gmfallback-im                            # RESULTS §33
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from curriculum_rl.agents.config import load_config
from curriculum_rl.agents.imitation import run_grids
from curriculum_rl.agents.switch_imitation import (
    SWITCHES,
    demonstration_draws,
    load_demonstrations,
    rule_gains,
    switched_rules,
)
from curriculum_rl.controllers.base import Controller, DecisionState, RunContext
from curriculum_rl.controllers.decision import Decision
from curriculum_rl.controllers.learned import load_artifact


class Nudged(Controller):
    """``base``'s decisions with every weight times ``1 + nudge``."""

    def __init__(self, base: Controller, nudge: float) -> None:
        self.base, self.nudge, self.name = base, nudge, f"{base.name}-nudged"

    def reset(self, context: RunContext) -> None:
        super().reset(context)
        self.base.reset(context)

    def decide(self, signals: DecisionState) -> Decision:
        decision = self.base.decide(signals)
        return replace(decision, weights=decision.weights * (1 + self.nudge))


def per_suite(suites: list[str], values: np.ndarray) -> dict[str, np.ndarray]:
    return {s: values[[i for i, t in enumerate(suites) if t == s]] for s in dict.fromkeys(suites)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the switch's demonstration settings")
    parser.add_argument("--policy", required=True, help="the policy (NAME.json)")
    parser.add_argument("--switch", choices=sorted(SWITCHES), required=True)
    parser.add_argument("--instances", type=int, default=90)
    parser.add_argument("--nudge", type=float, default=1e-3)
    parser.add_argument(
        "--strength", type=float, default=0.0, help="switch strength of the nudged runs"
    )
    parser.add_argument("--demos", type=Path, help="stored demonstrations of the same draws")
    parser.add_argument("--out", type=Path, help="write the per-instance differences here")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    switch = SWITCHES[args.switch]
    draws = demonstration_draws(config, switch, args.instances, config.train.seed)
    (policy,) = switched_rules(load_artifact(args.policy), switch, [args.strength])
    with tqdm(total=len(draws), desc="nudged runs", unit="instance") as bar:
        runs = run_grids(config.env, draws, [policy, Nudged(policy, args.nudge)], progress=bar)
    chaos = np.array([rule_gains(run.scores)[0] for run in runs])
    suites = [run.suite for run in runs]
    gains = None
    if args.demos is not None:
        stored = load_demonstrations(args.demos)[: len(runs)]
        if [(r.seed, r.run_seed) for r in stored] != [(r.seed, r.run_seed) for r in runs]:
            raise SystemExit(f"error: {args.demos} holds other draws; make them with --switch")
        gains = np.array([rule_gains(run.scores)[0] for run in stored])
        column = {0.0: 0, 1.0: 1}.get(args.strength)  # the stored runs at this strength
        if column is not None:
            pairs = zip(stored, runs, strict=True)
            same = sum(a.scores[column] == b.scores[0] for a, b in pairs)
            print(f"the un-nudged runs reproduce {same} of {len(runs)} stored ones exactly")
    print(f"| suite | n | chaos mean abs | chaos 90% abs | {args.switch} mean | mean abs |")
    print("|---|---|---|---|---|---|")
    noise = per_suite(suites, chaos)
    signal = per_suite(suites, gains) if gains is not None else {}
    for suite, d in [*noise.items(), ("all", chaos)]:
        g = signal.get(suite, gains if suite == "all" else None)
        tail = "| - | - |" if g is None else f"| {g.mean():+.3f} | {np.abs(g).mean():.3f} |"
        print(
            f"| {suite} | {len(d)} | {np.abs(d).mean():.3f} | "
            f"{np.quantile(np.abs(d), 0.9):.3f} {tail}"
        )
    if args.out is not None:
        rows = [
            {"suite": s, "seed": r.seed, "chaos": float(c)}
            for s, r, c in zip(suites, runs, chaos, strict=True)
        ]
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
