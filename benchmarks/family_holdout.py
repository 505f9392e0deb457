"""Does a fitted switch read the regime, or only recognise its training families?

Cross-validation over random folds (:func:`~curriculum_rl.agents.switch_imitation.cross_validate`)
keeps instances of every training family on both sides of each split, so a switch that
merely tells the families apart scores well there. This holds out one family at a time
instead: the switch is fitted on the run statistics of the other families' demonstrations
(:func:`~curriculum_rl.agents.switch_imitation.held_out_readouts`) and scored on the held-out
family's, as the gain it captures there, beside always switching and the oracle. A
family is a demonstration's suite; sets stored before suites were recorded take
``--families N`` (suites take turns: instance ``i`` is of family ``i mod N``).

    python benchmarks/family_holdout.py --demos runs/auxregdrop-im --policy agents/v7.json \\
        --l2 0.001 0.01 0.1                                     # RESULTS §31c

``--demos A B`` holds out the families of several sets fitted as one (a first set and one
from new training families); ``--without-auxiliaries`` keeps only the instances without
auxiliary tasks (a switch that may act only there, RESULTS §34e); ``--latch linear`` (or
``conservative``) scores the switch as a latch (RESULTS §35c), ``--latch start`` as the
latch read at the first decision only (§36a); ``--statistics`` reads only the run
statistics it names, as ``switch_imitation --statistics`` does (§37).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from curriculum_rl.agents.imitation import GridRun
from curriculum_rl.agents.switch_imitation import (
    LATCH_SCORINGS,
    DecisionTable,
    check_demonstrations,
    held_out_readouts,
    load_demonstrations,
    mean_strengths,
    readout_gains,
)
from curriculum_rl.controllers.learned import load_artifact
from curriculum_rl.controllers.learned.network import target_mask, task_mask


def family_ids(runs: list[GridRun], families: int | None) -> tuple[torch.Tensor, list[str]]:
    """(I,) each demonstration's family index and the families' names: its suite, or, for
    sets without suites, its turn ``i mod families``."""
    if families is None:
        if any(run.suite is None for run in runs):
            raise ValueError(
                "these demonstrations record no suite; give --families N (the number of "
                "suites that took turns when they were made)"
            )
        names = list(dict.fromkeys(run.suite for run in runs))
        return torch.tensor([names.index(run.suite) for run in runs]), names
    return torch.arange(len(runs)) % families, [f"family {f}" for f in range(families)]


def load_sets(folders: list[Path]) -> list[GridRun]:
    """The demonstrations of every folder, in order; a folder made with another switch,
    policy or observation layout than the first is refused (their gains would not add)."""
    first = folders[0] / "source.json"
    if first.is_file():
        source = json.loads(first.read_text())
        for folder in folders[1:]:
            check_demonstrations(folder, source)
    return [run for folder in folders for run in load_demonstrations(folder)]


def without_auxiliaries(runs: list[GridRun]) -> list[GridRun]:
    """The demonstrations whose instance has no auxiliary task (read off the first
    observation: every valid task a target)."""
    first = [run.observations[0, 0] for run in runs]
    return [
        run
        for run, obs in zip(runs, first, strict=True)
        if torch.equal(task_mask(obs), target_mask(obs))
    ]


def holdout_table(
    table: DecisionTable,
    family: torch.Tensor,
    names: list[str],
    l2: float,
    latch: str | None = None,
) -> dict:
    """Per held-out family and over all instances: the mean gain captured (by the mean
    strength, or with ``latch`` as a latch: ``switch_imitation.latched_gains``), always
    switching and the oracle, plus the family's mean strength."""
    readouts = held_out_readouts(table, family, l2)
    strengths, gain = mean_strengths(readouts), table.gain
    captured = readout_gains(readouts, gain, latch)
    rows = {}
    for f, name in enumerate(names):
        mine = family == f
        rows[name] = {
            "strength": strengths[mine].mean().item(),
            "captured": captured[mine].mean().item(),
            "always": gain[mine].mean().item(),
            "oracle": gain[mine].clamp_min(0).mean().item(),
        }
    return {"captured": captured.mean().item(), "families": rows}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--demos",
        type=Path,
        nargs="+",
        required=True,
        help="folders of switch demonstrations, held out as one set (one switch, one policy)",
    )
    parser.add_argument("--policy", default="agents/v7.json", help="the policy they extend")
    parser.add_argument("--l2", type=float, nargs="+", default=[0.001, 0.01, 0.1])
    parser.add_argument("--families", type=int, help="for sets that record no suite")
    parser.add_argument(
        "--without-auxiliaries",
        action="store_true",
        help="hold out only the instances without auxiliary tasks",
    )
    parser.add_argument(
        "--latch",
        choices=LATCH_SCORINGS,
        help="score the switch as a latch, a latch closed after the start counted this way "
        "('start': the latch read at the first decision only)",
    )
    parser.add_argument(
        "--statistics",
        nargs="+",
        metavar="PATTERN",
        help="read only the run statistics these names or patterns match "
        "(switch_imitation --statistics)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object as last line")
    args = parser.parse_args()
    runs = load_sets(args.demos)
    if args.without_auxiliaries:
        runs = without_auxiliaries(runs)
        print(f"{len(runs)} instances without auxiliary tasks")
    family, names = family_ids(runs, args.families)
    actor = load_artifact(args.policy).actor
    table = DecisionTable.build(actor, runs, "run", args.statistics)
    result = {f"{l2:g}": holdout_table(table, family, names, l2, args.latch) for l2 in args.l2}
    for l2, row in result.items():
        print(f"L2 {l2}: captured {row['captured']:+.4f} per instance, one family held out")
        for name, fam in row["families"].items():
            print(
                f"  {name}: strength {fam['strength']:.2f}, captured {fam['captured']:+.3f} "
                f"(always {fam['always']:+.3f}, oracle {fam['oracle']:.3f})"
            )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
