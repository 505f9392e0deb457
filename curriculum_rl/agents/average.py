"""Average the weights of several checkpoints of one training run into one policy.

Averaging the parameters visited late in a run (stochastic weight averaging, Izmailov et
al. 2018, "Averaging Weights Leads to Wider Optima and Better Generalization") smooths
out the step-to-step noise of the last updates; PPO's checkpoints wander around a plateau,
so the average is a candidate beside the checkpoints themselves. Only checkpoints of one
run (one trajectory in weight space) should be averaged: two independently trained
networks are not aligned unit by unit, and their mean is a different, usually worse,
network.

    python -m curriculum_rl.agents.average --out runs/avg \\
        runs/my-policy/checkpoints/policy-51200.json runs/my-policy/checkpoints/policy-76800.json

The result is an ordinary policy artifact (NAME.json + NAME.pt, loaded without unpickling)
whose notes name the averaged files and their SHA-256.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch

from curriculum_rl.controllers.learned.artifact import (
    ArtifactError,
    PolicyArtifact,
    load_artifact,
    save_artifact,
)
from curriculum_rl.controllers.learned.network import TaskSetActor


def average_policies(paths: Sequence[str | Path], out: str | Path) -> Path:
    """Write the element-wise mean of the policies at ``paths`` (each NAME.json or NAME.pt)
    as a new artifact at ``out``; return its JSON path.

    Raises:
        ArtifactError: fewer than two policies, a policy that does not load, or policies
            that differ in network shape, action transform or ``max_tasks`` (their weights
            do not mean the same thing).
    """
    if len(paths) < 2:
        raise ArtifactError(f"give at least two policies to average, got {len(paths)}")
    policies = [load_artifact(p) for p in paths]
    first = policies[0]
    for other in policies[1:]:
        _check_same_kind(first, other)
    actor = TaskSetActor(first.network)
    states = [p.actor.state_dict() for p in policies]
    actor.load_state_dict({k: torch.stack([s[k] for s in states]).mean(0) for k in states[0]})
    sources = [{"path": str(p.path), "sha256": p.metadata["weights_sha256"]} for p in policies]
    return save_artifact(
        out,
        actor,
        max_tasks=first.max_tasks,
        action=first.action,
        training=first.metadata.get("training"),
        notes={"averaged": sources},
    )


def _check_same_kind(a: PolicyArtifact, b: PolicyArtifact) -> None:
    for what, x, y in (
        ("action transform", a.action, b.action),
        ("network", a.network, b.network),
        ("max_tasks", a.max_tasks, b.max_tasks),
    ):
        if x != y:
            raise ArtifactError(
                f"{b.path} differs from {a.path} in its {what} ({y} vs {x}): only checkpoints "
                "of one training run can be averaged"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m curriculum_rl.agents.average",
        description="Average the weights of checkpoints of one training run (SWA) into one "
        "policy artifact.",
    )
    parser.add_argument("policies", nargs="+", help="policy files (NAME.json) of one run")
    parser.add_argument("--out", required=True, help="output artifact (writes OUT.json, OUT.pt)")
    args = parser.parse_args(argv)
    try:
        path = average_policies(args.policies, args.out)
    except ArtifactError as err:
        parser.exit(2, f"error: {err}\n")
    print(f"wrote {path} (the mean of {len(args.policies)} policies)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
