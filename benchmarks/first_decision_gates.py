"""Could a readout at a run's first decision choose between two controllers? (no new runs)

A gate that reads a run's first decision and then follows one controller for the whole
run needs no runs of its own to be screened: at the first decision nothing has trained,
so every controller sees the same signals (same suite instance, same seed), and the gated
run is, decision for decision, the stored run of the controller it picks. This reads a
benchmark folder where ``--base`` and ``--alt`` both ran: each run's paired gain of
``--alt`` over ``--base`` (their G_m difference, from ``results.csv``) and the statistics
of ``--base``'s first decision (:data:`STATISTICS`, from its run JSON). It reports, for
every threshold gate ("alt where the statistic is above t", and "at or below t", t at
:data:`QUANTILES` of the statistic over all runs) and for a logistic readout on all the
statistics fitted with each suite left out in turn (RESULTS §43a):

* the mean paired gain of the gated controller over ``--base``, with the interval of
  :func:`curriculum_rl.stats.stratified_mean` (a run left to ``--base`` counts 0);
* the runs it switches to ``--alt``;
* the suite whose IQM of G_m falls furthest below ``--base``'s (the per-suite clause of
  the validation rule).

The best threshold is chosen among many on the suites it is scored on (selection); the
held-out readout is the figure that says whether a readout carries.

    python benchmarks/first_decision_gates.py --runs runs/gate/all --base v11 --alt v9-geo-50to15
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from curriculum_rl.benchmark.store import run_path, stored_gains
from curriculum_rl.scores import run_targets
from curriculum_rl.stats import iqm, stratified_mean

STATISTICS = (
    "normalisation",  # the base's first loss normalisation (v9's latch: on at 1/2 and above)
    "log_loss_mean",  # the first validation log losses: mean, spread and range over tasks
    "log_loss_spread",
    "log_loss_range",
    "target_log_loss_spread",
    "log_weight_spread",  # the base's first weights: log spread and largest share of the mean
    "largest_weight",
    "log_sampling_spread",
    "tasks",
)
QUANTILES = (0.2, 0.4, 0.5, 0.6, 0.8)
READOUT_L2 = (0.1, 1.0)  # inverse strengths C of the logistic readout


class Pair(NamedTuple):
    """One (suite, seed): both controllers' G_m and the base's first-decision statistics."""

    suite: str
    base: float
    alt: float
    statistics: dict[str, float]


def first_decision_statistics(run: dict) -> dict[str, float]:
    """:data:`STATISTICS` of a stored run's first decision."""
    log_loss = np.log(np.maximum(np.asarray(run["val_loss_curve"][0], float), 1e-12))
    targets = np.asarray(run_targets(run), bool)
    weights = np.maximum(np.asarray(run["weights"][0], float), 1e-6)
    sampling = np.maximum(np.asarray(run["sampling"][0], float), 1e-6)
    return {
        "normalisation": float(run["normalisation"][0]),
        "log_loss_mean": float(log_loss.mean()),
        "log_loss_spread": float(log_loss.std()),
        "log_loss_range": float(log_loss.max() - log_loss.min()),
        "target_log_loss_spread": float(log_loss[targets].std()),
        "log_weight_spread": float(np.log(weights).std()),
        "largest_weight": float(weights.max() / weights.mean()),
        "log_sampling_spread": float(np.log(sampling).std()),
        "tasks": float(len(log_loss)),
    }


def load_pairs(folder: Path, base: str, alt: str) -> list[Pair]:
    """Every (suite, seed) both controllers ran, from ``results.csv`` and the base's runs."""
    gains = stored_gains(folder, required=(base, alt))
    pairs = []
    for (controller, suite), runs in sorted(gains.items()):
        if controller != base:
            continue
        other = gains.get((alt, suite), {})
        for seed in sorted(set(runs) & set(other)):
            run = json.loads(run_path(folder, suite, base, seed).read_text())
            pairs.append(Pair(suite, runs[seed], other[seed], first_decision_statistics(run)))
    return pairs


def gate_figures(pairs: list[Pair], picks: np.ndarray, reps: int = 10_000) -> dict:
    """The gated controller (``--alt`` where ``picks``) against ``--base``: module docstring."""
    suites = sorted({p.suite for p in pairs})
    strata, worst = [], (np.inf, "")
    for suite in suites:
        rows = [(p, bool(pick)) for p, pick in zip(pairs, picks, strict=True) if p.suite == suite]
        gated = np.array([p.alt if pick else p.base for p, pick in rows])
        base = np.array([p.base for p, _ in rows])
        strata.append(list(gated - base))
        worst = min(worst, (float(iqm(gated) - iqm(base)), suite))
    estimate = stratified_mean(strata, reps=reps)
    return {
        "mean": estimate.value,
        "ci": [estimate.low, estimate.high],
        "switched": int(np.sum(picks)),
        "runs": len(pairs),
        "worst_suite": worst[1],
        "worst_gap": worst[0],
    }


def threshold_gates(pairs: list[Pair], reps: int = 10_000) -> list[dict]:
    """Every threshold gate, best mean first."""
    gates = []
    for name in STATISTICS:
        values = np.array([p.statistics[name] for p in pairs])
        for threshold in sorted({float(np.quantile(values, q)) for q in QUANTILES}):
            for above in (True, False):
                picks = values > threshold if above else values <= threshold
                rule = f"{name} {'>' if above else '<='} {threshold:.4g}"
                gates.append({"gate": rule, **gate_figures(pairs, picks, reps)})
    return sorted(gates, key=lambda g: -g["mean"])


def held_out_readout(pairs: list[Pair], l2: float) -> np.ndarray:
    """Per run, whether a logistic readout fitted on the other suites' runs picks ``--alt``
    (label: ``--alt`` gained; each run weighted by the size of its paired gain)."""
    x = np.array([[p.statistics[name] for name in STATISTICS] for p in pairs])
    gain = np.array([p.alt - p.base for p in pairs])
    suites = np.array([p.suite for p in pairs])
    picks = np.zeros(len(pairs), bool)
    for suite in np.unique(suites):
        train, held = suites != suite, suites == suite
        if len(np.unique(gain[train] > 0)) < 2:  # one class only: the readout is that class
            picks[held] = bool(np.all(gain[train] > 0))
            continue
        model = make_pipeline(StandardScaler(), LogisticRegression(C=l2, max_iter=1000))
        weight = np.abs(gain[train]) + 1e-9
        model.fit(x[train], gain[train] > 0, logisticregression__sample_weight=weight)
        picks[held] = model.predict(x[held])
    return picks


def screen(folder: Path, base: str, alt: str, reps: int = 10_000) -> dict:
    """Always ``--alt``, every threshold gate, and the held-out readouts."""
    pairs = load_pairs(folder, base, alt)
    if not pairs:
        raise ValueError(f"{folder}: {base!r} and {alt!r} share no (suite, seed)")
    return {
        "always": gate_figures(pairs, np.ones(len(pairs), bool), reps),
        "thresholds": threshold_gates(pairs, reps),
        "held_out": {
            f"C={l2:g}": gate_figures(pairs, held_out_readout(pairs, l2), reps) for l2 in READOUT_L2
        },
    }


def _line(name: str, figures: dict) -> str:
    low, high = figures["ci"]
    return (
        f"{name:40s} mean {figures['mean']:+.4f} [{low:+.4f}, {high:+.4f}], "
        f"{figures['switched']}/{figures['runs']} runs switched, worst suite "
        f"{figures['worst_gap']:+.3f} ({figures['worst_suite']})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=Path, required=True, help="a benchmark's --out folder")
    parser.add_argument("--base", required=True, help="the controller a gate leaves alone")
    parser.add_argument("--alt", required=True, help="the controller a gate switches to")
    parser.add_argument("--top", type=int, default=10, help="threshold gates listed (best mean)")
    parser.add_argument("--json", action="store_true", help="print a JSON object as last line")
    args = parser.parse_args(argv)
    if not (args.runs / "results.csv").is_file():
        parser.error(f"--runs: no results.csv in {args.runs}; give a benchmark's --out folder")
    try:
        result = screen(args.runs, args.base, args.alt)
    except ValueError as err:
        parser.error(str(err))
    print(_line(f"always {args.alt}", result["always"]))
    for name, figures in result["held_out"].items():
        print(_line(f"readout, each suite held out, {name}", figures))
    count = len(result["thresholds"])
    print(f"best {min(args.top, count)} of {count} threshold gates (chosen on these suites):")
    for gate in result["thresholds"][: args.top]:
        print(_line(gate["gate"], gate))
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
