"""How early inside a run does the better of two rules show? (the probe idea)

A controller could measure its regime instead of predicting it: train a short probe with
each of two rules from the same start, then keep the one ahead. That pays only if the
rule ahead early is the rule ahead at the end. Switch demonstrations
(:mod:`curriculum_rl.agents.switch_imitation`) hold both runs of each training instance,
off and on, from one initialisation, with every decision's observation. This reads them
and, at each fraction of the budget, picks the rule whose target tasks' mean
``log_error_ratio`` (log validation error over its value at the first decision, which
both runs share) is lower, then scores the pick on the final test errors: the mean gain
captured per instance (0: never switch; the oracle: always the better one), how often the
pick is right, and the correlation of the early gap with the final gain. A probe also
spends the losing rule's steps, which this does not charge.

    python benchmarks/probe_horizon.py runs/fallback-im runs/fallback-spread [--json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from curriculum_rl.agents.switch_imitation import gains, load_demonstrations
from curriculum_rl.controllers.observation import FEATURES

HORIZONS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0)
RATIO, TARGET, PROGRESS = (
    FEATURES.index(name) for name in ("log_error_ratio", "is_objective", "progress")
)


def early_gap(observations: torch.Tensor, horizon: float) -> float:
    """Off minus on of the target tasks' mean ``log_error_ratio`` at the first decision at
    or after ``horizon`` of the budget (the last one if none is): > 0 where on leads.
    ``observations`` is one demonstration's ``(decisions, 2, K_max, F)``."""
    progress = observations[:, 0, 0, PROGRESS]
    late = torch.nonzero(progress >= horizon - 1e-6)
    step = int(late[0]) if len(late) else len(progress) - 1
    targets = observations[step, 0, :, TARGET] > 0.5
    off, on = observations[step, :, :, RATIO][:, targets].mean(dim=1)
    return float(off - on)


def _correlation(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson's r, or None where either side is constant (r is undefined there)."""
    if x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def horizon_table(folder: Path) -> dict:
    runs = load_demonstrations(folder)
    final = gains(runs).numpy()
    table = {
        "instances": len(runs),
        "always": float(final.mean()),
        "oracle": float(np.maximum(final, 0).mean()),
        "horizons": {},
    }
    for horizon in HORIZONS:
        gap = np.array([early_gap(run.observations, horizon) for run in runs])
        pick = gap > 0
        table["horizons"][f"{horizon:g}"] = {
            "captured": float(np.where(pick, final, 0.0).mean()),
            "right": float((pick == (final > 0)).mean()),
            "correlation": _correlation(gap, final),
        }
    return table


def _format(r: float | None) -> str:
    return "undefined" if r is None else f"{r:+.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folders", nargs="+", type=Path, help="switch demonstration folders")
    parser.add_argument("--json", action="store_true", help="print a JSON object as last line")
    args = parser.parse_args()
    result = {}
    for folder in args.folders:
        table = result[str(folder)] = horizon_table(folder)
        print(
            f"{folder}: {table['instances']} instances, always {table['always']:+.4f}, "
            f"oracle {table['oracle']:.4f}"
        )
        for horizon, row in table["horizons"].items():
            print(
                f"  at {horizon} of the budget: captured {row['captured']:+.4f}, "
                f"right {row['right']:.0%}, correlation {_format(row['correlation'])}"
            )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
