"""Cost per inner optimisation step of the per-step controllers, against uniform weighting.

Gradient aggregators (Jacobian descent, torchjd) need the Jacobian of the K task losses
on the shared parameters: K backward passes plus one aggregation per run and step. The
loss-weighting hooks (GradNorm, UW, FAMO, ...) are listed too for comparison. One batch of
N runs of a synthetic suite with exactly K tasks and the default trunk (MLP 16-64-64,
projection 64) trains under each controller; the figure is the median over interleaved
repetitions of the time per inner step, and its ratio to uniform's median in the same run
(the machine is shared, so only ratios are comparable across runs).

    python benchmarks/aggregator_cost.py [--runs 4] [--tasks 4] [--steps 30] [--reps 3]
                                         [--threads 1] [--json]

Aggregators whose optional solvers are missing are reported as skipped
(``pip install "curriculum-rl[aggregators]"``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from curriculum_rl.controllers import AGGREGATORS, RunContext, controller_available, make_controller
from curriculum_rl.suites import SyntheticSetting, SyntheticSuite
from curriculum_rl.trainer import BatchedMultitaskTrainer, TrainerConfig

HOOKED = ["gradnorm", "uw", "imtl-l", "famo", "dwa", "rlw", "geometric-mean"]


def time_steps(name: str, instances, seeds, config: TrainerConfig, steps: int) -> float:
    """Seconds per inner step of ``name`` on a fresh trainer (after 3 warm-up steps)."""
    trainer = BatchedMultitaskTrainer(instances, seeds, config)
    controller = make_controller(name)
    controller.reset(RunContext(trainer.mask.clone(), trainer.sizes.clone(), 10**6, 25, seeds))
    trainer.train(3, controller.hook)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    trainer.train(steps, controller.hook)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=4, help="N runs batched together")
    parser.add_argument("--tasks", type=int, default=4, help="K tasks per run")
    parser.add_argument("--steps", type=int, default=30, help="timed inner steps per repetition")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: default)")
    parser.add_argument("--json", action="store_true", help="print a JSON object as last line")
    args = parser.parse_args()
    if args.threads > 0:  # tiny kernels: extra threads mostly add contention on a shared CPU
        torch.set_num_threads(args.threads)

    suite = SyntheticSuite(settings=(SyntheticSetting(num_tasks=(args.tasks, args.tasks)),))
    seeds = list(range(args.runs))
    instances = [suite.sample(s) for s in seeds]
    config = TrainerConfig(device=args.device)
    names = ["uniform", *AGGREGATORS, *HOOKED]
    skipped = {n: AGGREGATORS[n].missing() for n in AGGREGATORS if not controller_available(n)}
    names = [n for n in names if n not in skipped]
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.reps):
        for name in names:
            times[name].append(time_steps(name, instances, seeds, config, args.steps))
    ms = {n: 1000 * statistics.median(t) for n, t in times.items()}
    ratio = {n: ms[n] / ms["uniform"] for n in names}

    device = (
        torch.cuda.get_device_name()
        if config.device != "cpu" and torch.cuda.is_available()
        else platform.processor() or "cpu"
    )
    print(
        f"N={args.runs} runs x K={args.tasks} tasks, {args.steps} steps x {args.reps} reps, "
        f"{device}"
    )
    print(f"{'controller':<16}{'ms/step':>10}{'x uniform':>11}")
    for name in names:
        kind = "aggregator" if name in AGGREGATORS else ("loss weighting" if name in HOOKED else "")
        print(f"{name:<16}{ms[name]:>10.2f}{ratio[name]:>11.2f}  {kind}")
    for name, missing in skipped.items():
        print(f"{name:<16}{'skipped':>10}{'':>11}  needs {', '.join(missing)}")
    if args.json:
        result = {
            "runs": args.runs,
            "tasks": args.tasks,
            "steps": args.steps,
            "reps": args.reps,
            "device": device,
            "ms_per_step": ms,
            "ratio_vs_uniform": ratio,
            "skipped": skipped,
        }
        print(json.dumps(result))


if __name__ == "__main__":
    main()
