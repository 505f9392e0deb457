"""The ``curriculum-rl`` command line: suites, run, train, benchmark."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from tqdm.auto import tqdm


def _print_json_last(obj: dict) -> None:
    print(json.dumps(obj, sort_keys=True))


def cmd_suites(args: argparse.Namespace) -> int:
    from curriculum_rl.suites import registered_suites, resolve_suite

    listing = {}
    for name in sorted(registered_suites()):
        tasks = resolve_suite(name).describe()
        listing[name] = [
            {"task": t.name, "kind": t.kind, "metric": t.metric,
             "direction": "higher" if t.higher_is_better else "lower"}
            for t in tasks
        ]
        print(f"{name}")
        for t in listing[name]:
            print(f"  {t['task']:<20} {t['kind']:<15} {t['metric']:<15} {t['direction']} is better")
    if args.json:
        _print_json_last({"suites": listing})
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from curriculum_rl.controllers.registry import make_controller
    from curriculum_rl.runner import run_controller
    from curriculum_rl.suites import resolve_suite
    from curriculum_rl.trainer import TrainerConfig

    suite = resolve_suite(args.suite)
    instance = suite.sample(args.seed)
    controller = make_controller(args.controller)
    config = TrainerConfig(device=args.device)
    bar = tqdm(total=None, desc=f"{controller.name} on {instance.name}", unit="decision",
               disable=args.quiet)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(1)

    (record,) = run_controller([instance], [args.seed], controller, args.budget, args.interval,
                               config, on_decision=progress)
    bar.close()
    print(f"suite {instance.name} ({len(record.tasks)} tasks), controller {controller.name}, "
          f"seed {args.seed}, {args.budget} steps")
    print(f"{'task':<20} {'metric':<15} {'final':>12} {'best-val ckpt':>14}")
    for i, name in enumerate(record.tasks):
        metric = instance.tasks[i].metric
        print(f"{name:<20} {metric:<15} {record.final_test_metric[i]:>12.4g} "
              f"{record.best_test_metric[i]:>14.4g}")
    print(f"test J (mean log loss): final {record.final_test_j:.4f}, "
          f"best-val checkpoint {record.best_test_j:.4f}")
    if args.out:
        from pathlib import Path

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.json").write_text(json.dumps(record.to_dict(), indent=1))
    if args.json:
        _print_json_last(record.to_dict())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="curriculum-rl",
        description="A reinforcement-learned curriculum controller for multitask training.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("suites", help="list suites, their tasks and metric directions")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=cmd_suites)

    p = sub.add_parser("run", help="one multitask run on a suite under a controller")
    p.add_argument("--suite", default="synthetic", help="suite SPEC (see `suites`)")
    p.add_argument("--controller", default="uniform", help="controller name or policy file")
    p.add_argument("--budget", type=int, default=1500, help="inner optimisation steps")
    p.add_argument("--interval", type=int, default=25, help="inner steps per decision")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--out", default=None, help="folder for run.json")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
