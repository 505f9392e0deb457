"""When did a switch turn on, and what did each run gain by it?

A latched switch (RESULTS §35c, §36) is either off for a whole run, on from the first
decision, or on from a later one; what it gains can differ in kind between the three
(§36a: the closes at the start won, the later ones lost). For every controller of a
benchmark folder but the reference, this reads each run's loss normalisation per decision
(a fallback is on where it reaches its direction's normalisation, ``--on-at``: 1 for
``geometric-mean``'s, the default, 1/2 for ``sqrt-loss``'s, 3/4 for ``fourth-root-loss``'s;
a controller whose runs stop below it is named in a warning) and its paired gain
over the reference run of the same suite and seed (the difference of their G_m), and
reports:

* the mean paired gain over every run, with the stratified (by suite) bootstrap interval
  of :func:`curriculum_rl.stats.stratified_mean`: a mean, not the benchmark's IQM, since
  the runs a switch left alone are exact zeros;
* per timing (never on, on from the first decision, on from a later one): the runs and
  their mean gain;
* per suite where it turned on (``--by-suite``): those runs and their mean gain, where
  a switch acts and what it gains there (RESULTS §37c).

    python benchmarks/switch_timing.py --runs runs/fresh-rw --versus v8     # RESULTS §36a
    python benchmarks/switch_timing.py --runs runs/tokval-sqrt --versus default --on-at 0.5
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from curriculum_rl.benchmark.store import run_path, stored_gains
from curriculum_rl.stats import stratified_mean

TIMINGS = ("never", "first", "later")
ON = 1.0  # the normalisation of a decision that took geometric-mean's direction fully


def timing(normalisation: list[float], on_at: float = ON) -> str:
    """When a run's switch first turned fully on (normalisation ``on_at`` or more):
    ``never``, at its ``first`` decision, or ``later``."""
    on = [i for i, alpha in enumerate(normalisation) if alpha >= on_at]
    if not on:
        return "never"
    return "first" if on[0] == 0 else "later"


def paired_gains(folder: Path, versus: str) -> dict[str, dict[str, dict[int, float]]]:
    """``{controller: {suite: {seed: G_m minus the reference's}}}`` from ``results.csv``,
    for every controller but ``versus`` and uniform, over the seeds both ran."""
    gains = stored_gains(folder, required=(versus,))
    table: dict[str, dict[str, dict[int, float]]] = defaultdict(dict)
    for (controller, suite), runs in gains.items():
        if controller in (versus, "uniform"):
            continue
        reference = gains.get((versus, suite), {})
        table[controller][suite] = {s: g - reference[s] for s, g in runs.items() if s in reference}
    return dict(table)


def switch_timing(folder: Path, versus: str, reps: int = 10_000, on_at: float = ON) -> dict:
    """Per controller: the mean paired gain over ``versus`` with its interval, and per
    timing the runs and their mean gain (module docstring)."""
    result = {}
    for controller, suites in sorted(paired_gains(folder, versus).items()):
        by_timing: dict[str, list[float]] = {t: [] for t in TIMINGS}
        on_by_suite: dict[str, list[float]] = defaultdict(list)
        highest = 0.0
        for suite, seeds in suites.items():
            for seed, gain in seeds.items():
                run = json.loads(run_path(folder, suite, controller, seed).read_text())
                highest = max([highest, *run["normalisation"]])
                when = timing(run["normalisation"], on_at)
                by_timing[when].append(gain)
                if when != "never":
                    on_by_suite[suite].append(gain)
        estimate = stratified_mean([list(s.values()) for s in suites.values()], reps=reps)
        result[controller] = {
            "runs": sum(len(s) for s in suites.values()),
            "mean": estimate.value,
            "ci": [estimate.low, estimate.high],
            "timing": {t: _runs_and_mean(g) for t, g in by_timing.items()},
            "suites_on": {suite: _runs_and_mean(g) for suite, g in on_by_suite.items()},
            "highest_normalisation": highest,
        }
    return result


def _runs_and_mean(gains: list[float]) -> dict:
    return {"runs": len(gains), "mean": float(np.mean(gains)) if gains else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=Path, required=True, help="a benchmark's --out folder")
    parser.add_argument("--versus", required=True, help="the reference controller's label")
    parser.add_argument(
        "--by-suite",
        action="store_true",
        help="also list each suite where the switch turned on: its runs on and their mean gain",
    )
    parser.add_argument(
        "--on-at",
        type=float,
        default=ON,
        help="the loss normalisation at which the switch counts as on: its fallback's "
        "(default 1, geometric-mean's direction; 0.5 for sqrt-loss's, 0.75 for "
        "fourth-root-loss's)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object as last line")
    args = parser.parse_args(argv)
    if not 0 < args.on_at <= 1:
        parser.error(f"--on-at is a loss normalisation in (0, 1], got {args.on_at}")
    if not (args.runs / "results.csv").is_file():
        parser.error(f"--runs: no results.csv in {args.runs}; give a benchmark's --out folder")
    try:
        result = switch_timing(args.runs, args.versus, on_at=args.on_at)
    except ValueError as err:
        parser.error(str(err))
    for controller, row in result.items():
        if 0 < row["highest_normalisation"] < args.on_at:  # the level of another fallback
            print(
                f"warning: no run of {controller} reaches --on-at {args.on_at:g}, but some reach "
                f"{row['highest_normalisation']:g}: if that is its fallback's normalisation "
                f"(1/2 for sqrt-loss, 3/4 for fourth-root-loss), pass --on-at "
                f"{row['highest_normalisation']:g}",
                file=sys.stderr,
            )
        low, high = row["ci"]
        print(
            f"{controller}: mean paired gain over {args.versus} {row['mean']:+.4f} "
            f"[{low:+.4f}, {high:+.4f}] on {row['runs']} runs"
        )
        for name, part in row["timing"].items():
            mean = "" if part["mean"] is None else f", mean {part['mean']:+.4f}"
            print(f"  on {name}: {part['runs']} runs{mean}")
        if args.by_suite:
            suites = sorted(row["suites_on"].items(), key=lambda item: item[1]["mean"])
            for suite, part in suites:
                print(f"    {suite}: on in {part['runs']} runs, mean {part['mean']:+.4f}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
