"""What a learned ``error_power`` policy (or ``error_power_weights``, ``error_exponents``)
does with its exponents, and whether a fixed rule captures it (RESULTS §14d).

An ``error_power`` policy chooses per decision ``gamma`` and ``beta`` of
``w_k ∝ E_k^-gamma E0_k^-beta`` plus per-task residuals (``curriculum_rl.controllers.actions``).
``probe`` runs the policy on training-distribution instances and reports the exponents it
chooses over a run; ``benchmark`` runs ``curriculum-rl benchmark`` with two rules built from
such a probe registered for this process: ``ep-G-B`` names (any G, B) give the fixed rule
``ErrorPower(G, B)``, and ``ep-sched`` moves gamma linearly with the fraction of the budget
used (``--sched G0 G1 B``).

    python benchmarks/exponent_probe.py probe runs/cands/v3.json [--suite envs/train-broad.toml]
        [--instances 16] [--budget 1000] [--json]
    python benchmarks/exponent_probe.py benchmark [--sched 0.34 0.51 0.4] -- <benchmark flags>
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from curriculum_rl.cli import main as cli_main
from curriculum_rl.controllers.actions import ScaledErrorPower, action_transform
from curriculum_rl.controllers.base import DecisionState
from curriculum_rl.controllers.decision import Decision
from curriculum_rl.controllers.inverse_error import ErrorPower
from curriculum_rl.controllers.learned import LearnedController
from curriculum_rl.controllers.learned.artifact import load_artifact
from curriculum_rl.controllers.registry import register_controller
from curriculum_rl.runner import run_controller
from curriculum_rl.suites import resolve_suite
from curriculum_rl.trainer import TrainerConfig

FIRST_INSTANCE = 3_000_000  # training-distribution seeds no evaluation or [eval] uses


class ExponentRecorder(LearnedController):
    """The policy, unchanged, recording per decision and run: progress, gamma, beta and
    the standard deviation of the weight residuals over the valid tasks."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.records: list[torch.Tensor] = []  # per decision, (N, 4)

    @torch.no_grad()
    def decide(self, signals: DecisionState) -> Decision:
        obs = signals.observation(max(self.max_tasks, signals.max_tasks))
        actions = self.actor(obs)[:, : signals.max_tasks].clamp(-1, 1)
        mask = signals.mask
        valid = mask.float()
        count = valid.sum(1).clamp_min(1)
        residual = self.transform.column(actions, "weight")  # zeros without a residual
        mean = (residual * valid).sum(1) / count
        spread = (((residual - mean[:, None]) ** 2 * valid).sum(1) / count).sqrt()
        gamma, beta = self.transform.exponents(actions, mask)
        self.records.append(torch.stack([signals.progress.float(), gamma, beta, spread], 1))
        return super().decide(signals)


def probe(args: argparse.Namespace) -> dict:
    artifact = load_artifact(args.policy)
    if not isinstance(action_transform(artifact.action), ScaledErrorPower):
        raise SystemExit(
            f"error: {args.policy} acts with {artifact.action!r}, which has no exponents; "
            "give a policy of error_power, error_power_weights or error_exponents"
        )
    recorder = ExponentRecorder(artifact.actor, artifact.max_tasks, artifact.action)
    suite = resolve_suite(args.suite)
    seeds = list(range(FIRST_INSTANCE, FIRST_INSTANCE + args.instances))
    instances = [suite.sample(s) for s in seeds]
    config = TrainerConfig(device="cpu")
    run_controller(instances, seeds, recorder, args.budget, args.interval, config)
    table = torch.stack(recorder.records)  # (decisions, runs, 4)
    rows = [
        {
            "decision": t,
            "progress": table[t, :, 0].mean().item(),
            "gamma": table[t, :, 1].mean().item(),
            "gamma_sd": table[t, :, 1].std().item(),
            "beta": table[t, :, 2].mean().item(),
            "beta_sd": table[t, :, 2].std().item(),
            "residual_sd": table[t, :, 3].mean().item(),
        }
        for t in range(table.shape[0])
    ]
    return {
        "policy": args.policy,
        "suite": args.suite,
        "instances": args.instances,
        "gamma": table[..., 1].mean().item(),
        "beta": table[..., 2].mean().item(),
        "gamma_sd_over_runs": table[..., 1].mean(0).std().item(),
        "beta_sd_over_runs": table[..., 2].mean(0).std().item(),
        "residual_sd": table[..., 3].mean().item(),
        "per_decision": rows,
    }


def print_probe(result: dict) -> None:
    print("decision  progress  gamma (sd over runs)  beta (sd)      residual sd")
    for row in result["per_decision"][::3]:
        print(
            f"{row['decision']:8d}  {row['progress']:8.3f}  "
            f"{row['gamma']:.3f} ({row['gamma_sd']:.3f})         "
            f"{row['beta']:.3f} ({row['beta_sd']:.3f})  {row['residual_sd']:.3f}"
        )
    print(
        f"overall: gamma {result['gamma']:.3f}, beta {result['beta']:.3f}; over runs, sd of the "
        f"run means: gamma {result['gamma_sd_over_runs']:.3f}, "
        f"beta {result['beta_sd_over_runs']:.3f}; "
        f"residual sd {result['residual_sd']:.3f}"
    )


class ScheduledErrorPower(ErrorPower):
    """``ErrorPower`` whose gamma moves linearly from ``gamma_start`` to ``gamma_end``
    with the fraction of each run's budget used."""

    def __init__(self, gamma_start: float, gamma_end: float, start: float, name: str) -> None:
        super().__init__(gamma_start, start, name)
        self.gamma_start, self.gamma_end = gamma_start, gamma_end

    def exponents(self, signals: DecisionState) -> tuple[torch.Tensor, torch.Tensor]:
        progress = signals.progress.float().reshape(-1)
        gamma = self.gamma_start + (self.gamma_end - self.gamma_start) * progress
        return gamma, torch.full_like(gamma, self.start)


def register_rules(argv: list[str], sched: tuple[float, float, float]) -> None:
    """Register every ``ep-G-B`` name in ``argv`` and ``ep-sched``."""
    for name in argv:
        parts = name.split("-")
        if len(parts) == 3 and parts[0] == "ep":
            try:
                gamma, start = float(parts[1]), float(parts[2])
            except ValueError:
                continue
            register_controller(name, lambda g=gamma, b=start, n=name: ErrorPower(g, b, n))
    g0, g1, b = sched
    register_controller("ep-sched", lambda: ScheduledErrorPower(g0, g1, b, "ep-sched"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("probe", help="the exponents a policy chooses on training instances")
    p.add_argument("policy")
    p.add_argument("--suite", default="envs/train-broad.toml")
    p.add_argument("--instances", type=int, default=16)
    p.add_argument("--budget", type=int, default=1000)
    p.add_argument("--interval", type=int, default=25)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    b = sub.add_parser("benchmark", help="curriculum-rl benchmark with the rules registered")
    b.add_argument(
        "--sched", type=float, nargs=3, default=(0.34, 0.51, 0.4), metavar=("G0", "G1", "B")
    )
    b.add_argument("rest", nargs=argparse.REMAINDER, help="-- then the benchmark's flags")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.mode == "probe":
        result = probe(args)
        if args.json:
            print(json.dumps(result))
        else:
            print_probe(result)
        return 0
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    register_rules(rest, tuple(args.sched))
    return cli_main(["benchmark", *rest])


if __name__ == "__main__":
    sys.exit(main())
