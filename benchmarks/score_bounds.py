"""Does one task carry the ranking? G_m with each task's term bounded.

G_m is the mean over target tasks of ``log(E_uniform,k / E_k)``. One task whose error
moves by a large factor (a regression at a wide scale spread, or a tagging task near
zero error under add-one smoothing) can outweigh all the others, so a controller could
lead a table on one task's lottery. This reads a finished benchmark folder's stored runs
and recomputes every run's G_m with each task's term clipped to ``[-bound, bound]``
(:func:`curriculum_rl.scores.metric_gain`): a ranking that holds under tight bounds is
not one task's. Per bound it gives each controller's IQM of G_m with its stratified 95%
CI (strata: suites) and its rank, and, unbounded, the median share of a run's summed
|terms| that its largest term takes (runs with more than one target task).

    python benchmarks/score_bounds.py runs/envr/all --bounds 2 1 0.5 [--json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from curriculum_rl.scores import run_errors, run_failed, run_targets, score_run, task_terms
from curriculum_rl.stats import stratified_iqm

REFERENCE = "uniform"


def paired_runs(out: Path) -> dict[str, dict[str, list[tuple[dict, dict]]]]:
    """``{controller: {suite: [(run, uniform run of its seed), ...]}}`` from ``out/runs``."""
    pairs: dict[str, dict[str, list[tuple[dict, dict]]]] = {}
    suite_dirs = sorted((out / "runs").iterdir()) if (out / "runs").is_dir() else []
    for suite_dir in suite_dirs:
        for uniform_path in sorted((suite_dir / REFERENCE).glob("seed*.json")):
            uniform = json.loads(uniform_path.read_text())
            for controller_dir in sorted(suite_dir.iterdir()):
                path = controller_dir / uniform_path.name
                if controller_dir.name == REFERENCE or not path.exists():
                    continue
                suite_pairs = pairs.setdefault(controller_dir.name, {})
                suite_pairs.setdefault(suite_dir.name, []).append(
                    (json.loads(path.read_text()), uniform)
                )
    if not pairs:
        raise ValueError(
            f"{out}: no runs paired with {REFERENCE!r}; give a `curriculum-rl benchmark` "
            "--out folder (it holds runs/<suite>/<controller>/seed<k>.json)"
        )
    return pairs


def largest_term_share(run: dict, uniform: dict) -> float | None:
    """The largest |term| of a run's G_m over the sum of its |terms|; None for a failed
    run, a single target task or an exact tie with uniform."""
    if run_failed(run) or run_failed(uniform):
        return None
    terms = np.abs(task_terms(run_errors(uniform), run_errors(run), run_targets(run)))
    if len(terms) < 2 or terms.sum() == 0:
        return None
    return float(terms.max() / terms.sum())


def bound_table(out: Path, bounds: list[float], reps: int) -> dict:
    """Per bound (``"none"`` first) each controller's IQM, CI and rank, and per controller
    the median largest-term share."""
    pairs = paired_runs(out)
    table: dict = {"bounds": {}, "largest_term_share": {}}
    for bound in [None, *bounds]:
        estimates = {
            controller: stratified_iqm(
                [[score_run(r, u, bound=bound).gain for r, u in runs] for runs in suites.values()],
                reps,
            ).to_dict()
            for controller, suites in pairs.items()
        }
        order = sorted(estimates, key=lambda c: -estimates[c]["iqm"])
        for rank, controller in enumerate(order, 1):
            estimates[controller]["rank"] = rank
        table["bounds"]["none" if bound is None else str(bound)] = estimates
    for controller, suites in pairs.items():
        shares = [largest_term_share(r, u) for runs in suites.values() for r, u in runs]
        kept = [s for s in shares if s is not None]
        table["largest_term_share"][controller] = float(np.median(kept)) if kept else None
    return table


def _row(controller: str, table: dict) -> str:
    cells = []
    for estimates in table["bounds"].values():
        e = estimates[controller]
        cells.append(f"{e['iqm']:.3f} [{e['ci'][0]:.3f}, {e['ci'][1]:.3f}] ({e['rank']})")
    share = table["largest_term_share"][controller]
    cells.append("–" if share is None else f"{share:.0%}")
    return f"| {controller} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="a `curriculum-rl benchmark` --out folder")
    parser.add_argument(
        "--bounds", type=float, nargs="+", default=[2.0, 1.0, 0.5], help="term bounds (> 0)"
    )
    parser.add_argument("--reps", type=int, default=10_000, help="bootstrap replicates")
    parser.add_argument("--json", action="store_true", help="print a JSON object as last line")
    args = parser.parse_args()
    if any(not b > 0 for b in args.bounds):
        parser.error(f"--bounds must be > 0 (log error ratios), got {args.bounds}")
    table = bound_table(args.out, args.bounds, args.reps)
    unbounded = table["bounds"]["none"]
    header = [f"bound {b}" for b in table["bounds"]] + ["largest term's share (median)"]
    print("| G_m IQM [95% CI] (rank) | " + " | ".join(header) + " |")
    print("|---" * (len(header) + 1) + "|")
    for controller in sorted(unbounded, key=lambda c: unbounded[c]["rank"]):
        print(_row(controller, table))
    if args.json:
        print(json.dumps(table))


if __name__ == "__main__":
    main()
