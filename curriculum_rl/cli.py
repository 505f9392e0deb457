"""The ``curriculum-rl`` command line: suites, run, train, benchmark."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as shells report it."""

# the summary imports torch, so the envelope margin (summary.ENVELOPE_MARGIN) is written
# out here; tests/test_summary.py keeps the two equal
BENCHMARK_DESCRIPTION = (
    "Run every controller on every suite over the same seeds (resuming runs "
    "already in --out) and write runs/, results.csv, summary.md, plots/ and tb/. "
    "--json prints, per suite and controller, the IQM and 95% CI of G (gain over "
    "uniform: gain, gain_best), Δm% (delta_m, delta_m_best) and the worst-task change "
    "(worst_task_change[_best] vs single-task, worst_task_change_vs_uniform[_best]); "
    'each as {"iqm": x, "ci": [low, high]}, null where not available or not finite; '
    "and the envelope: per controller, its gap in IQM G_m to the best controller on "
    "each suite (gaps), the largest gap (max_gap) and the suites where it is more "
    "than 0.1 behind with the paired gap's 95% CI above 0.1 too (clear_misses)."
)


def _print_json_last(obj: dict) -> None:
    print(json.dumps(obj, sort_keys=True))


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse names the option in its error)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text: str) -> int:
    """argparse type: a seed, an integer >= 0 (what torch and numpy generators take)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed must be 0 or more, got {value}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def _check_interval(args: argparse.Namespace) -> None:
    if args.interval > args.budget:
        raise ValueError(
            f"--interval {args.interval} is larger than --budget {args.budget}: the run would "
            "make a single decision; give an --interval of at most the --budget"
        )


def _check_device(device: str, option: str = "--device") -> str:
    """``device`` if this machine can use it, else a ``ValueError`` naming ``option`` and
    the fix (instead of an assertion deep inside torch after minutes of set-up)."""
    import torch

    if device == "auto":
        return device
    try:
        kind = torch.device(device)
    except RuntimeError:
        raise ValueError(f"{option} {device!r} is not a device; use auto, cpu or cuda") from None
    if kind.type == "cuda":
        if torch.version.cuda is None:
            raise ValueError(
                f"{option} {device}: this PyTorch build (torch {torch.__version__}) has no CUDA "
                "support; use `cpu` or `auto` instead, or install a CUDA build of PyTorch"
            )
        count = torch.cuda.device_count()
        if (kind.index or 0) >= count:
            raise ValueError(
                f"{option} {device}: {count} CUDA device(s) visible on this machine; use "
                "`auto` or `cpu` instead, or a device index below that number"
            )
    elif kind.type != "cpu" and not _backend_available(kind.type):
        raise ValueError(f"{option} {device}: not available on this machine; use auto or cpu")
    return device


def _backend_available(kind: str) -> bool:
    import torch

    backend = getattr(torch.backends, kind, None)
    return bool(backend is not None and getattr(backend, "is_available", lambda: False)())


def _writable_folder(path: str | Path, option: str = "--out") -> Path:
    """``path`` as a folder this process can write to (created if missing), checked before
    any work, else a ``ValueError`` naming ``option`` and the fix."""
    import tempfile

    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{option} {folder} is a file; give a folder (created if missing)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ValueError(
            f"{option} {folder}: cannot write there ({err.strerror or err}); give a folder "
            "you can write to"
        ) from None
    return folder


def cmd_suites(args: argparse.Namespace) -> int:
    """List every registered suite and every suite of the envs/*.toml spec files (in the
    working directory, then the packaged copies), keyed by the SPEC that `--suite` takes."""
    from curriculum_rl.suites import registered_suites, resolve_suite
    from curriculum_rl.suites.spec_file import load_suites, packaged_envs_dir

    def show(spec: str, tasks: list) -> None:
        listing[spec] = [
            {
                "task": t.name,
                "kind": t.kind,
                "metric": t.metric,
                "direction": "higher" if t.higher_is_better else "lower",
            }
            for t in tasks
        ]
        print(spec)
        for t in listing[spec]:
            print(f"  {t['task']:<20} {t['kind']:<15} {t['metric']:<15} {t['direction']} is better")

    listing: dict[str, list[dict]] = {}
    for name in sorted(registered_suites()):
        show(name, resolve_suite(name).describe())
    local = sorted(Path("envs").glob("*.toml"))
    shipped = [
        p
        for p in sorted(packaged_envs_dir().glob("*.toml"))
        if p.name not in {q.name for q in local}
    ]
    for path in local + shipped:
        spec_path = f"envs/{path.name}"  # what --suite takes: cwd first, then the package
        try:
            suites = load_suites(path)
        except (ValueError, FileNotFoundError) as err:  # one bad file must not hide the rest
            print(f"{spec_path}: cannot be read ({err})", file=sys.stderr)
            continue
        for name, suite in suites.items():
            show(spec_path if len(suites) == 1 else f"{spec_path}#{name}", suite.describe())
    if args.json:
        _print_json_last({"suites": listing})
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """One run under the chosen controller, beside uniform weighting on the same instance
    and seed (the paired gain G), with Δm% against single-task training."""
    from curriculum_rl.controllers.load import load_controller
    from curriculum_rl.controllers.registry import make_controller
    from curriculum_rl.suites import resolve_suite
    from curriculum_rl.trainer import TrainerConfig

    _check_interval(args)
    config = TrainerConfig(device=_check_device(args.device))
    if args.out:  # before any training: a run must not fail at its very end
        _writable_folder(args.out)
    instance = resolve_suite(args.suite).sample(args.seed)
    controller = load_controller(args.controller)
    record = _run_one(instance, controller, args, config)
    baseline = record
    if controller.name != "uniform":
        baseline = _run_one(instance, make_controller("uniform"), args, config)
    reference = None if args.no_reference else _single_task(instance, args, config)
    summary = _run_summary(record, baseline, reference)
    _print_run(instance, record, baseline, summary, args)
    if args.out:
        _write_run(Path(args.out), record, baseline, summary)
    if args.json:
        _print_json_last({**summary, "run": record.to_dict(), "uniform": baseline.to_dict()})
    return 0


def _run_one(instance, controller, args: argparse.Namespace, config):
    """One run, padded as the benchmark pads it, so that it reproduces the benchmark's
    seed ``args.seed`` exactly (:mod:`curriculum_rl.benchmark.run`)."""
    from curriculum_rl.benchmark.run import run_seeds

    bar = tqdm(desc=f"{controller.name} on {instance.name}", unit="decision", disable=args.quiet)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(1)

    (record,) = run_seeds(
        [instance],
        [args.seed],
        lambda _: controller,
        args.budget,
        args.interval,
        config,
        on_decision=progress,
    )
    bar.close()
    return record


def _single_task(instance, args: argparse.Namespace, config) -> dict:
    from curriculum_rl.reference import single_task_reference

    cache = Path(args.out) / "reference" if args.out else Path.home() / ".cache" / "curriculum-rl"
    if not args.quiet:
        print("single-task references (each task alone, same budget; cached)", file=sys.stderr)
    return single_task_reference(instance, args.seed, args.budget, args.interval, config, cache)


def _run_summary(record, baseline, reference: dict | None) -> dict:
    from curriculum_rl.atomic import json_ready
    from curriculum_rl.scores import score_run

    run, uniform = record.to_dict(), baseline.to_dict()
    summary = {
        "controller": record.controller,
        "suite": record.suite,
        "seed": record.seed,
        "test_j_final": record.final_test_j,
        "test_j_best": record.best_test_j,
        "diverged": record.diverged,
        "uniform_diverged": baseline.diverged,
    }
    for checkpoint in ("final", "best"):
        scores = score_run(run, uniform, reference, checkpoint)
        summary[f"gain_over_uniform_{checkpoint}"] = scores.gain
        summary[f"gain_j_over_uniform_{checkpoint}"] = scores.gain_j
        summary[f"worst_task_change_vs_uniform_{checkpoint}"] = scores.worst_vs_uniform
    if reference is not None:
        for prefix, rec in (("", run), ("uniform_", uniform)):
            scores = score_run(rec, uniform, reference)
            summary[f"{prefix}delta_m"] = scores.delta_m
            summary[f"{prefix}worst_task_change"] = scores.worst_vs_reference
    return json_ready(summary)


def _print_run(instance, record, baseline, summary: dict, args: argparse.Namespace) -> None:
    print(
        f"suite {instance.name} ({len(record.tasks)} tasks), controller {record.controller}, "
        f"seed {args.seed}, {args.budget} steps"
    )
    print(f"{'task':<16} {'metric':<15} {record.controller[:14]:>14} {'uniform':>10}")
    for i, name in enumerate(record.tasks):
        role = "" if record.targets[i] else " (aux)"
        print(
            f"{(name + role)[:16]:<16} {instance.tasks[i].metric:<15} "
            f"{record.final_test_metric[i]:>14.4g} {baseline.final_test_metric[i]:>10.4g}"
        )
    failed = {record.controller: record.diverged, "uniform": baseline.diverged}
    print(
        f"test J (mean log loss, lower is better): final {record.final_test_j:.4f} "
        f"(uniform {baseline.final_test_j:.4f}), best-val checkpoint "
        f"{record.best_test_j:.4f} (uniform {baseline.best_test_j:.4f})"
        + "".join(f"; {name} DIVERGED" for name, bad in failed.items() if bad)
    )
    print(
        f"gain over uniform on task metrics G_m = mean log(E_uniform / E): "
        f"{_num(summary['gain_over_uniform_final'], '+.4f')}; on log loss G_J: "
        f"{_num(summary['gain_j_over_uniform_final'], '+.4f')}"
    )
    if "delta_m" in summary:
        print(
            f"Δm% vs single-task training (lower is better): {_num(summary['delta_m'])} "
            f"(uniform {_num(summary['uniform_delta_m'])}); worst task "
            f"{_num(summary['worst_task_change'])}%"
        )
    print(run_verdict(record.controller, summary))


def run_verdict(controller: str, summary: dict) -> str:
    """One plain sentence: who won this run, by how much, and what one seed is worth."""
    if summary["diverged"] or summary["gain_over_uniform_final"] is None:
        return (
            f"verdict: {controller} DIVERGED on this seed (non-finite loss, or validation J far "
            "above its start); uniform "
            + ("diverged too." if summary["uniform_diverged"] else "did not.")
        )
    if summary["uniform_diverged"]:
        return f"verdict: uniform DIVERGED on this seed; {controller} did not."
    gain = summary["gain_over_uniform_final"]
    if controller == "uniform":
        return "verdict: this is the uniform reference itself (G_m = 0 by definition)."
    if abs(gain) < 0.01:
        outcome = f"{controller} and uniform tie"
    elif gain > 0:
        outcome = f"{controller} beats uniform: task errors {math.exp(gain):.2f}x lower on average"
    else:
        outcome = (
            f"uniform beats {controller}: {controller}'s task errors {math.exp(-gain):.2f}x "
            "higher on average"
        )
    return (
        f"verdict: {outcome} (G_m {gain:+.3f}). One seed only: use `curriculum-rl benchmark` "
        "for a claim."
    )


def _num(x: float | None, spec: str = "+.2f") -> str:
    return "n/a (failed run)" if x is None else format(x, spec)


def _write_run(out: Path, record, baseline, summary: dict) -> None:
    from curriculum_rl.atomic import write_json_atomic, write_png_atomic
    from curriculum_rl.benchmark.plots import learning_curves, schedules
    from curriculum_rl.diagnostics import diagnostics_figure

    runs = {record.controller: [record.to_dict()]}
    if baseline is not record:
        runs["uniform"] = [baseline.to_dict()]
    write_json_atomic(out / "run.json", {**summary, "runs": runs})
    write_png_atomic(out / "schedules.png", schedules(record.suite, runs))
    write_png_atomic(out / "learning_curves.png", learning_curves(record.suite, runs))
    write_png_atomic(out / "diagnostics.png", diagnostics_figure(runs[record.controller][0]))
    print(f"wrote {out / 'run.json'} and PNGs: schedules, learning_curves, diagnostics")


def cmd_train(args: argparse.Namespace) -> int:
    from curriculum_rl.agents.config import config_from_dict, load_config
    from curriculum_rl.agents.train import train

    out = _writable_folder(args.out)
    if args.config is None and args.resume and (out / "config.json").is_file():
        config = config_from_dict(json.loads((out / "config.json").read_text()), str(out))
    else:
        config = load_config(args.config)  # None: the shipped agents/default.toml
    _check_device(config.train.device, "[train] device")
    _check_device(config.env.trainer.device, "[env.trainer] device")
    overrides = {
        key: value
        for key, value in (
            ("total_timesteps", args.total_timesteps),
            ("seed", args.seed),
            ("workers", args.workers),
            ("address", args.address),
        )
        if value is not None
    }
    if overrides:
        from dataclasses import replace

        config = replace(config, train=replace(config.train, **overrides))
    result = train(
        config,
        out,
        resume=args.resume,
        progress=not args.quiet,
        log=lambda msg: tqdm.write(msg, file=sys.stderr),
    )
    _print_train(result, out)
    if args.json:
        _print_json_last(result.to_dict())
    return EXIT_INTERRUPTED if result.interrupted else 0


def _print_train(result, out: Path) -> None:
    if result.interrupted:
        print(
            f"interrupted at {result.timesteps} timesteps: checkpoint saved; continue with "
            f"`curriculum-rl train --out {out} --resume`"
        )
    elif result.trained_now == 0:
        print(
            f"the run in {out} is already complete at {result.timesteps} timesteps; nothing "
            "was trained or rewritten (give --total-timesteps N to train it further)"
        )
    print(
        f"{result.timesteps} timesteps in {result.wall_time_s:.0f} s of training; policy: "
        f"{result.policy} (use it with `curriculum-rl run --controller {result.policy}`)"
    )
    if result.evaluations:
        last = result.evaluations[-1]
        # The best may come from before a --resume: read it from the saved best policy.
        best = json.loads(result.best.read_text())["notes"]["eval"] if result.best else last
        print(
            f"held-out gain over uniform (IQM of G_m): last {float(last['gain']):+.3f}, best "
            f"{float(best['gain']):+.3f} at {best['timesteps']} timesteps (saved as {result.best})"
        )
    print(f"TensorBoard: tensorboard --logdir {out / 'tb'}; curve: {out / 'learning_curve.png'}")


def cmd_benchmark(args: argparse.Namespace) -> int:
    from curriculum_rl.benchmark import BenchmarkConfig, run_benchmark
    from curriculum_rl.benchmark.config import DEFAULT_BATCH_SIZE
    from curriculum_rl.trainer import TrainerConfig

    _check_interval(args)
    config = BenchmarkConfig(
        suites=tuple(args.suite),
        controllers=tuple(args.controller),
        out=_writable_folder(args.out),
        seeds=args.seeds,
        first_seed=args.first_seed,
        budget=args.budget,
        interval=args.interval,
        trainer=TrainerConfig(device=_check_device(args.device)),
        reference=not args.no_reference,
        progress=not args.quiet,
        batch_size=args.batch_size or DEFAULT_BATCH_SIZE,
        executor=args.executor,
        address=args.address,
        workers=args.workers,
        versus=args.versus,
    )
    result = run_benchmark(config)
    print(
        f"{len(result.rows)} runs ({result.runs_computed} computed now, the rest resumed) "
        f"in {config.out}: results.csv, summary.md, plots/, tb/"
    )
    if not result.with_reference:
        print("note: Δm% vs single-task training omitted (no single-task reference)")
    skipped = result.summary["settings"]["skipped_controllers"]
    if skipped:
        print(f"note: not run, optional dependencies missing: {', '.join(skipped)}")
    _print_ranking(result.summary)
    if args.json:
        _print_json_last(
            {
                "suites": result.summary["suites"],
                "aggregate": result.summary["aggregate"],
                "envelope": result.summary["envelope"],
                "settings": result.summary["settings"],
            }
        )
    return 0


def _print_ranking(summary: dict) -> None:
    """The aggregate table, best first, and who won each suite (as in summary.md)."""
    from curriculum_rl.benchmark.report import verdicts
    from curriculum_rl.benchmark.summary import ranking

    aggregate = summary["aggregate"]
    print(
        "ranked by the IQM of G_m over all suites (gain over uniform on task metrics; "
        "n/a: failed runs leave no finite score):"
    )
    header = f"{'rank':<5}{'controller':<24}{'G_m final [95% CI]':>28}{'G_m best [95% CI]':>28}"
    print(f"{header} {'failed':>8}")
    for rank, name in enumerate(ranking(aggregate), start=1):
        agg = aggregate[name]
        print(
            f"{rank:<5}{name:<24}{_fmt_estimate(agg['gain']):>28}"
            f"{_fmt_estimate(agg['gain_best']):>28} {agg['failed']:>4}/{agg['runs']:<3}"
        )
    print("who won:")
    for line in verdicts(summary):
        print(f"  {line.replace('**', '')}")


def _fmt_estimate(est: dict) -> str:
    def num(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    return f"{num(est['iqm'])} [{num(est['ci'][0])}, {num(est['ci'][1])}]"


def _output_flags(p: argparse.ArgumentParser, progress: bool = True) -> None:
    """The flags every command shares: ``--json`` (and ``--quiet`` for long work)."""
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    if progress:
        p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="curriculum-rl",
        description="A reinforcement-learned curriculum controller for multitask training.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("suites", help="list suites, their tasks and metric directions")
    _output_flags(p, progress=False)
    p.set_defaults(func=cmd_suites)

    p = sub.add_parser("run", help="one multitask run on a suite under a controller")
    p.add_argument("--suite", default="synthetic", help="suite SPEC (see `suites`)")
    p.add_argument(
        "--controller",
        default="default",
        help="controller name, policy file (NAME.json) or `default` (the shipped learned policy)",
    )
    p.add_argument("--budget", type=_positive_int, default=1500, help="inner optimisation steps")
    p.add_argument("--interval", type=_positive_int, default=25, help="inner steps per decision")
    p.add_argument("--seed", type=_seed, default=0, help="instance and trainer seed (>= 0)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument(
        "--out", default=None, help="folder for run.json and plots of the weights and sampling"
    )
    p.add_argument(
        "--no-reference",
        action="store_true",
        help="skip the single-task references (and Δm%%); they cost one run per task, cached",
    )
    _output_flags(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "train",
        help="train the PPO meta-controller on the training distribution",
        description="Train a curriculum policy with PPO (config: agents/*.toml). Writes "
        "policy.json + policy.pt (safe artifact: JSON metadata + plain tensors, loaded without "
        "unpickling), best.json/.pt (best held-out gain), TensorBoard logs under tb/, "
        "learning_curve.png and checkpoints/. checkpoints/last.zip is stable-baselines3's own "
        "format, used only by --resume to continue this run; never load shared policies from it.",
    )
    p.add_argument(
        "--config",
        default=None,
        help="training config TOML (default: the shipped agents/default.toml; with "
        "--resume: the run's own config.json)",
    )
    p.add_argument("--out", default="runs/train", help="output folder of the run")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint (same timestep "
        "counter and optimizer state)",
    )
    p.add_argument(
        "--total-timesteps",
        type=_positive_int,
        default=None,
        help="override [train] total_timesteps (e.g. to extend a resumed run)",
    )
    p.add_argument(
        "--seed",
        type=_seed,
        default=None,
        help="override [train] seed: train the same recipe from another seed (the learned "
        "part of a policy varies with it; train several and pick on the validation suites)",
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="override [train] workers: collect rollouts from this many Ray actors, each "
        "a batched trainer of [train] n_envs runs (above 1 needs "
        "`pip install 'curriculum-rl[ray]'`; a local Ray unless --address)",
    )
    p.add_argument(
        "--address",
        default=None,
        help="override [train] address: the Ray cluster for the rollout workers, `auto` "
        "(started here with `ray start`) or HOST:PORT",
    )
    _output_flags(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser(
        "benchmark",
        help="suites x controllers x seeds, paired with uniform weighting; tables and plots",
        description=BENCHMARK_DESCRIPTION,
    )
    p.add_argument(
        "--suite",
        nargs="+",
        action="extend",
        required=True,
        metavar="SPEC",
        help="suite SPECs (see `suites`)",
    )
    p.add_argument(
        "--controller",
        nargs="+",
        action="extend",
        required=True,
        metavar="NAME",
        help="controller names, `all` (every heuristic), `static-tuned` (static weights "
        "tuned per instance on validation error; `static-tuned-loss`: on validation log "
        "loss), `default` or policy files; uniform is always run",
    )
    p.add_argument(
        "--seeds",
        type=_positive_int,
        default=10,
        metavar="N",
        help="N seeds per suite and controller, from --first-seed F: seeds F..F+N-1 "
        "(default F 0; rerun with more to add runs)",
    )
    p.add_argument(
        "--first-seed",
        type=_seed,
        default=0,
        metavar="F",
        help="first seed; seeds F..F+N-1 run per suite and controller (default 0); a check "
        "on training suites can keep off the seeds a validation suite uses",
    )
    p.add_argument(
        "--budget", type=_positive_int, default=1500, help="inner optimisation steps per run"
    )
    p.add_argument("--interval", type=_positive_int, default=25, help="inner steps per decision")
    p.add_argument("--out", required=True, help="output folder (rerun on it to resume)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument(
        "--no-reference",
        action="store_true",
        help="skip the single-task reference: no Δm%% columns, but K fewer "
        "single-task runs per suite and seed",
    )
    p.add_argument(
        "--versus",
        metavar="NAME",
        default=None,
        help="one of the controllers (e.g. the shipped policy): the aggregate table adds "
        "every other's paired gap to it (its G_m minus theirs, run by run), beside the gap "
        "to the leader, over all suites and over the suites where the two differ, its mean, "
        "and the suite where each is furthest behind it",
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        help="at most this many runs train as one batch, one unit of work (default 16; memory "
        "and speed only: the results do not depend on it; raise it on a GPU)",
    )
    p.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="where the units run: this process, or Ray tasks (a local Ray, or the cluster "
        "at --address; needs `pip install 'curriculum-rl[ray]'`); the same results",
    )
    p.add_argument(
        "--address",
        default=None,
        help="with --executor ray: the Ray cluster, `auto` (started here with `ray start`) "
        "or HOST:PORT; default: a local Ray for this command",
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="with --executor ray: at most this many units at once (a local Ray gets this "
        "many CPUs); default: as many as the cluster has CPUs",
    )
    _output_flags(p)
    p.set_defaults(func=cmd_benchmark)
    return parser


INTERRUPTED = {
    "benchmark": "the runs finished so far are stored in {out}; rerun the same command to "
    "resume (finished runs are not recomputed)",
    "train": "stopped before training began or without a final checkpoint; "
    "`curriculum-rl train --out {out} --resume` continues from the last checkpoint, if "
    "{out} has one (else start it again without --resume)",
    "run": "nothing was written",
    "suites": "nothing was written",
}
"""What Ctrl-C leaves behind, per command (``train`` saves a checkpoint on the first
Ctrl-C itself and returns; this is the second one)."""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        left = INTERRUPTED[args.command].format(out=getattr(args, "out", None))
        print(f"\ninterrupted: {left}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `curriculum-rl ... | head`: the reader left; so do we, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
