"""Can the run's statistics choose the fallback strength per instance? (cross-validated)

:mod:`benchmarks.fallback_strength` scores each training instance at several fixed
switch strengths; the switch demonstrations of the same instances hold the run's
observations with the switch off. This predicts each strength's gain from the off run's
run statistics (:func:`~curriculum_rl.agents.switch_imitation.run_features`, averaged
over its decisions, standardised) with a ridge regression per strength, picks the
strength with the highest predicted gain (strength 0 predicts 0), and reports the gain
captured on held-out instances (5 folds, the mean over ``REPEATS`` splits) per L2, for
the two ends alone and for every strength; beside it a rule per training suite (the
strength best on average in the training folds) and the oracles.

    python benchmarks/strength_readout.py --demos runs/fallback-im \\
        --strengths runs/strength/fallback-v7-270.json [--json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from curriculum_rl.agents.imitation import GridRun
from curriculum_rl.agents.switch_imitation import (
    FOLDS,
    fold_splits,
    load_demonstrations,
    rule_gains,
    run_features,
)
from curriculum_rl.controllers.learned import load_artifact

L2_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)


def ridge_predictor(x: np.ndarray, y: np.ndarray, l2: float):
    """Ridge regression of every column of ``y`` on standardised ``x`` (intercept free,
    penalty ``l2`` per example); returns its ``predict``."""
    model = make_pipeline(StandardScaler(), Ridge(alpha=l2 * len(x)))
    return model.fit(x, y).predict


def held_out_mean(gains: np.ndarray, pick, seed: int = 0) -> float:
    """Mean over the cross-validation splits (:func:`fold_splits`) of the held-out gain
    that ``pick(train, test)`` (boolean masks) chooses for each test instance."""
    means = []
    for fold_of in fold_splits(len(gains), seed):
        picked = np.zeros(len(gains))
        for fold in range(FOLDS):
            train, test = fold_of != fold, fold_of == fold
            picked[test] = pick(train, test)
        means.append(picked.mean())
    return float(np.mean(means))


def captured_by_readout(x: np.ndarray, gains: np.ndarray, l2: float, seed: int = 0) -> float:
    """Held-out gain of picking, per instance, the column of ``gains`` (column 0: the
    reference, gain 0) with the highest ridge-predicted gain."""

    def pick(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        predicted = ridge_predictor(x[train], gains[train], l2)(x[test])
        predicted[:, 0] = 0.0
        return gains[test][np.arange(test.sum()), predicted.argmax(1)]

    return held_out_mean(gains, pick, seed)


def captured_by_suite_rule(suites: np.ndarray, gains: np.ndarray, seed: int = 0) -> float:
    """Held-out gain of the column best on average over the training folds' instances of
    the same suite."""

    def pick(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        chosen = np.zeros(len(gains))
        for suite in np.unique(suites):
            mine = suites == suite
            chosen[mine] = gains[mine][:, int(np.argmax(gains[train & mine].mean(0)))]
        return chosen[test]

    return held_out_mean(gains, pick, seed)


def paired_inputs(
    demos: list[GridRun], strength_run: dict
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[float]]:
    """(features, gains per strength, suites, strengths) of the instances both files hold,
    checked to be the same draws (seed, budget, and the off and full-on scores)."""
    instances = strength_run["instances"]
    strengths = [float(s) for s in strength_run["strengths"]]
    if len(instances) != len(demos):
        raise ValueError(f"{len(demos)} demonstrations but {len(instances)} strength rows")
    for run, row in zip(demos, instances, strict=True):
        same = (run.seed, run.budget, run.scores[0], run.scores[-1]) == (
            row["seed"],
            row["budget"],
            row["scores"][0],
            row["scores"][-1],
        )
        if not same:
            raise ValueError(f"instance seed {run.seed}: the two files ran different draws")
    actor = load_artifact(strength_run["command"]["policy"]).actor
    x = np.stack([run_features(actor, run.observations[:, 0]).mean(0).numpy() for run in demos])
    x = x[:, x.std(0) > 1e-6]
    gains = np.array([[0.0, *rule_gains(row["scores"])] for row in instances])
    return x, gains, np.array([row["suite"] for row in instances]), strengths


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--demos", type=Path, required=True, help="switch demonstrations")
    parser.add_argument("--strengths", type=Path, required=True, help="fallback_strength JSON")
    parser.add_argument("--json", action="store_true", help="print a JSON object as last line")
    args = parser.parse_args()
    run = json.loads(args.strengths.read_text())
    x, gains, suites, strengths = paired_inputs(load_demonstrations(args.demos), run)
    ends = [0, len(strengths) - 1]
    result = {
        "oracle_ends": float(gains[:, ends].max(1).mean()),
        "oracle_all": float(gains.max(1).mean()),
        "suite_rule_ends": captured_by_suite_rule(suites, gains[:, ends]),
        "suite_rule_all": captured_by_suite_rule(suites, gains),
        "readout_ends": {f"{l2:g}": captured_by_readout(x, gains[:, ends], l2) for l2 in L2_GRID},
        "readout_all": {f"{l2:g}": captured_by_readout(x, gains, l2) for l2 in L2_GRID},
    }
    print(f"{len(gains)} instances, {x.shape[1]} statistics, strengths {strengths}")
    for key, value in result.items():
        shown = value if isinstance(value, float) else max(value.values())
        print(f"  {key}: {shown:+.4f}" + ("" if isinstance(value, float) else " (best L2)"))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
