"""Combine several policies into one (the mean of their weights, or of their actions),
scale one policy's actions, or gate its auxiliaries.

**Weights** (:func:`average_policies`). Averaging the parameters visited late in a run
(stochastic weight averaging, Izmailov et al. 2018, "Averaging Weights Leads to Wider
Optima and Better Generalization") smooths out the step-to-step noise of the last
updates; PPO's checkpoints wander around a plateau, so the average is a candidate beside
the checkpoints themselves. Only checkpoints of one
run (one trajectory in weight space) should be averaged: two independently trained
networks are not aligned unit by unit, and their mean is a different, usually worse,
network.

**Actions** (:func:`ensemble_policies`). For policies of different runs (e.g. training
seeds), the mean of their action means is a seed ensemble: what the seeds agree on stays,
what one seed learned by chance is damped. Every layer of the task-set network acts unit
by unit (per-task MLP, masked mean and max pooling, the equivariant mix, a linear head),
so M networks of width H stack *exactly* into one of width M·H: their first layers side
by side, the later ones block-diagonal, and a head that averages the M heads. The
ensemble is one ordinary network, loaded and run like any other.

    python -m curriculum_rl.agents.average --out runs/avg \\
        runs/my-policy/checkpoints/policy-51200.json runs/my-policy/checkpoints/policy-76800.json
    python -m curriculum_rl.agents.average --ensemble --out runs/seeds \\
        runs/seed1/best.json runs/seed2/best.json runs/seed3/best.json

**Scale** (:func:`scale_policy`). The action head is linear, so multiplying it by ``f``
multiplies every action mean by ``f`` (before the transform clips actions to [-1, 1]).
For ``error_power`` the zero action is the centre rule, so ``f`` moves along the line
from the rule (0) through the policy (1) and beyond it (> 1): a one-number probe of
whether the learned residual is too timid or too bold, chosen on validation suites.

    python -m curriculum_rl.agents.average --scale 1.5 --out runs/v3-x1.5 agents/v3.json
    python -m curriculum_rl.agents.average --scale 0 --columns weight --out runs/v3-no-residual \\
        agents/v3.json

With ``--columns`` only the named action numbers are scaled (names from the action
transform: ``weight sampling gamma beta`` for ``error_power``): ``--scale 0`` on some of
them switches those parts of the policy off (they sit at the centre rule's value), which
attributes a policy's gain over its centre to its parts.

**Gate** (:func:`gate_policy`). The same network with its action transform's gated twin
(``error_power`` -> ``error_power_gated``, :mod:`curriculum_rl.controllers.actions`):
each auxiliary task's weight is then multiplied by the positive cosine of its gradient
with the target tasks' (Du et al. 2018); suites without auxiliaries run exactly as before.

    python -m curriculum_rl.agents.average --gate-auxiliaries --out runs/v3-gated \\
        agents/v3.json

With ``--gate-auxiliaries learned`` the twin is ``error_power_gate``: one more action
column, the gate's strength, whose head row starts at 0, so the result acts exactly as the
original until PPO fine-tunes it (``[train] init_policy``).

The result is an ordinary policy artifact (NAME.json + NAME.pt, loaded without unpickling)
whose notes name the combined files and their SHA-256.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from curriculum_rl.controllers.actions import TRANSFORMS, action_transform
from curriculum_rl.controllers.learned.artifact import (
    ArtifactError,
    PolicyArtifact,
    load_artifact,
    save_artifact,
)
from curriculum_rl.controllers.learned.network import NetworkConfig, TaskSetActor


def average_policies(paths: Sequence[str | Path], out: str | Path) -> Path:
    """Write the element-wise mean of the policies at ``paths`` (each NAME.json or NAME.pt)
    as a new artifact at ``out``; return its JSON path.

    Raises:
        ArtifactError: fewer than two policies, a policy that does not load, or policies
            that differ in network shape, action transform or ``max_tasks`` (their weights
            do not mean the same thing).
    """
    policies = _load_alike(paths)
    actor = TaskSetActor(policies[0].network)
    states = [p.actor.state_dict() for p in policies]
    actor.load_state_dict({k: torch.stack([s[k] for s in states]).mean(0) for k in states[0]})
    return save_derived(actor, policies, out, "averaged")


def ensemble_policies(paths: Sequence[str | Path], out: str | Path) -> Path:
    """Write one network whose action means are the mean of those of the policies at
    ``paths`` (exactly, for every observation); return its JSON path. The policies may
    come from different runs but must share the network shape, action transform and
    ``max_tasks``; the result is as wide as all of them together.

    Raises:
        ArtifactError: as :func:`average_policies`.
    """
    policies = _load_alike(paths)
    first = policies[0]
    h, members = first.network.hidden, len(policies)
    states = [p.actor.state_dict() for p in policies]

    def cat(key: str, dim: int = 0) -> torch.Tensor:
        return torch.cat([s[key] for s in states], dim=dim)

    mix = torch.zeros(members * h, 3 * members * h)
    for m, s in enumerate(states):
        rows = slice(m * h, (m + 1) * h)
        for part in range(3):  # the per-task latent, then the pooled mean and max
            columns = slice((part * members + m) * h, (part * members + m + 1) * h)
            mix[rows, columns] = s["encoder.mix.0.weight"][:, part * h : (part + 1) * h]
    stacked = {
        "encoder.phi.0.weight": cat("encoder.phi.0.weight"),
        "encoder.phi.0.bias": cat("encoder.phi.0.bias"),
        "encoder.phi.2.weight": torch.block_diag(*(s["encoder.phi.2.weight"] for s in states)),
        "encoder.phi.2.bias": cat("encoder.phi.2.bias"),
        "encoder.mix.0.weight": mix,
        "encoder.mix.0.bias": cat("encoder.mix.0.bias"),
        "head.weight": cat("head.weight", dim=1) / members,
        "head.bias": torch.stack([s["head.bias"] for s in states]).mean(0),
        "log_std": torch.stack([s["log_std"] for s in states]).mean(0),
    }
    actor = TaskSetActor(replace(first.network, hidden=members * h))
    actor.load_state_dict(stacked)
    return save_derived(actor, policies, out, "ensembled")


def scale_policy(
    path: str | Path, factor: float, out: str | Path, columns: Sequence[str] | None = None
) -> Path:
    """Write the policy at ``path`` with its action means multiplied by ``factor`` (its
    exploration noise unchanged) as a new artifact at ``out``; return its JSON path.
    ``columns`` (names from the policy's action transform, e.g. ``["weight"]`` for
    ``error_power``'s per-task residual) scales only those action numbers; ``None``
    scales all. With factor 0 this switches parts of a policy off, to see which carry
    its gain.

    Raises:
        ArtifactError: a policy that does not load, a factor that is not finite, or a
            column its action transform does not have.
    """
    if not math.isfinite(factor):
        raise ArtifactError(f"the scale factor must be a finite number, got {factor}")
    policy = load_artifact(path)
    names = action_transform(policy.action).columns
    unknown = sorted(set(columns or ()) - set(names))
    if unknown:
        raise ArtifactError(
            f"{policy.path} uses the {policy.action!r} action, whose columns are "
            f"{list(names)}; unknown: {unknown}"
        )
    scaled = torch.tensor([columns is None or name in columns for name in names])
    per_column = torch.where(scaled, factor, 1.0)
    actor = TaskSetActor(policy.network)
    state = policy.actor.state_dict()
    state["head.weight"] = state["head.weight"] * per_column[:, None]
    state["head.bias"] = state["head.bias"] * per_column
    actor.load_state_dict(state)
    extra = {} if columns is None else {"columns": [n for n in names if n in columns]}
    return save_derived(actor, [policy], out, "scaled", factor=factor, **extra)


GATES = {"fixed": "_gated", "learned": "_gate"}
"""``gate_policy``'s kinds -> the suffix of the gated twin's transform name."""


def gate_policy(path: str | Path, out: str | Path, kind: str = "fixed") -> Path:
    """Write the policy at ``path`` with its action transform's gated twin as a new
    artifact at ``out``; return its JSON path. ``fixed``: the same network, Du et al.'s
    gate on every auxiliary (``error_power_gated``). ``learned``: one more action column,
    the gate strength, whose head row starts at 0 (so the new policy first acts exactly as
    the old one) for PPO to learn (``error_power_gate``).

    Raises:
        ArtifactError: a policy that does not load, or whose transform has no such twin.
    """
    policy = load_artifact(path)
    actor, action = gated_actor(policy, kind)
    return save_derived(actor, [policy], out, "gated", action=action, kind=kind)


def gated_actor(policy: PolicyArtifact, kind: str = "fixed") -> tuple[TaskSetActor, str]:
    """``policy``'s network for its transform's gated twin, and the twin's name (see
    :func:`gate_policy`); new action rows start at 0."""
    if kind not in GATES:
        raise ArtifactError(f"gate kind must be one of {sorted(GATES)}, got {kind!r}")
    gated = f"{policy.action}{GATES[kind]}"
    if gated not in TRANSFORMS:
        suffix = GATES[kind]
        twins = sorted(n.removesuffix(suffix) for n in TRANSFORMS if n.endswith(suffix))
        raise ArtifactError(
            f"{policy.path} uses the {policy.action!r} action, which has no {kind} gated "
            f"twin (transforms with one: {twins})"
        )
    return twin_actor(policy, gated), gated


def twin_actor(policy: PolicyArtifact, twin: str, run_head: bool = False) -> TaskSetActor:
    """``policy``'s network for the transform ``twin``, whose columns are those of the
    policy's transform followed by new ones; the new action rows start at 0 (the twin's
    zero action there is the policy's own decision), their noise at the others' mean.
    ``run_head`` adds a run-statistics readout (``NetworkConfig.run_head``), at 0. The
    policy's rows keep their own product (``NetworkConfig.head_rows``): with the new rows
    at 0 the twin decides as the policy bit for bit."""
    old, new = action_transform(policy.action).columns, action_transform(twin).columns
    if new[: len(old)] != old:
        raise ArtifactError(
            f"{twin!r} does not extend {policy.path}'s {policy.action!r} action "
            f"(columns {list(new)} vs {list(old)})"
        )
    base = policy.network
    config = replace(
        base,
        action_dim=len(new),
        run_head=base.run_head or run_head,
        head_rows=_head_rows(base, len(new) - len(old)),
    )
    actor = TaskSetActor(config)
    # Each new tensor holds the old one in its leading slice: the new action rows (and a
    # new run head) are 0, the new rows' noise the old columns' mean.
    trained = policy.actor.state_dict()
    state = {}
    for name, like in actor.state_dict().items():
        fill = trained["log_std"].mean() if name == "log_std" else 0.0
        value = torch.full_like(like, float(fill))
        if name in trained:
            value[tuple(slice(0, n) for n in trained[name].shape)] = trained[name]
        state[name] = value
    actor.load_state_dict(state)
    return actor


def _head_rows(base: NetworkConfig, new_columns: int) -> tuple[int, ...]:
    """The base's row blocks, then one for the new columns (none: the base's blocks)."""
    if not new_columns:
        return base.head_rows
    return (*(base.head_rows or (base.action_dim,)), new_columns)


def _load_alike(paths: Sequence[str | Path]) -> list[PolicyArtifact]:
    if len(paths) < 2:
        raise ArtifactError(f"give at least two policies to combine, got {len(paths)}")
    policies = [load_artifact(p) for p in paths]
    for other in policies[1:]:
        _check_same_kind(policies[0], other)
    return policies


def save_derived(
    actor: TaskSetActor,
    policies: list[PolicyArtifact],
    out: str | Path,
    how: str,
    action: str | None = None,
    **extra,
) -> Path:
    """Write ``actor`` with the provenance of its sources (K_max: theirs; the transform:
    theirs unless ``action`` names another)."""
    first = policies[0]
    sources = [{"path": str(p.path), "sha256": p.metadata["weights_sha256"]} for p in policies]
    return save_artifact(
        out,
        actor,
        max_tasks=first.max_tasks,
        action=action or first.action,
        training=first.metadata.get("training"),
        notes={how: sources, **extra},
    )


def _check_same_kind(a: PolicyArtifact, b: PolicyArtifact) -> None:
    for what, x, y in (
        ("action transform", a.action, b.action),
        ("network", a.network, b.network),
        ("max_tasks", a.max_tasks, b.max_tasks),
    ):
        if x != y:
            raise ArtifactError(
                f"{b.path} differs from {a.path} in its {what} ({y} vs {x}): the weights of "
                "the two do not mean the same thing"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m curriculum_rl.agents.average",
        description="Combine policies into one artifact: the mean of the weights of one "
        "run's checkpoints (SWA), or with --ensemble the mean of the actions of any policies "
        "of the same shape (e.g. training seeds); or with --scale F one policy's actions "
        "multiplied by F.",
    )
    parser.add_argument("policies", nargs="+", help="policy files (NAME.json)")
    parser.add_argument(
        "--ensemble",
        action="store_true",
        help="average the policies' actions (one wider network), not their weights",
    )
    parser.add_argument(
        "--scale",
        type=float,
        metavar="F",
        help="multiply one policy's action means by F (0: the transform's centre rule)",
    )
    parser.add_argument(
        "--columns",
        nargs="+",
        metavar="NAME",
        help="with --scale, only these action numbers (error_power: weight sampling gamma "
        "beta), e.g. --scale 0 --columns weight switches the per-task residual off",
    )
    parser.add_argument(
        "--gate-auxiliaries",
        nargs="?",
        const="fixed",
        choices=sorted(GATES),
        help="one policy with its action transform's gated twin: auxiliary tasks weighted "
        "by the positive cosine of their gradient with the targets' (Du et al. 2018); "
        "`learned` adds an action column for the gate's strength, starting at 0",
    )
    parser.add_argument("--out", required=True, help="output artifact (writes OUT.json, OUT.pt)")
    args = parser.parse_args(argv)
    if args.gate_auxiliaries and (
        args.ensemble or args.scale is not None or len(args.policies) != 1
    ):
        parser.error("--gate-auxiliaries takes exactly one policy and no --ensemble or --scale")
    if args.scale is not None and (args.ensemble or len(args.policies) != 1):
        parser.error("--scale takes exactly one policy and no --ensemble")
    if args.columns and args.scale is None:
        parser.error("--columns goes with --scale")
    try:
        if args.gate_auxiliaries:
            path = gate_policy(args.policies[0], args.out, args.gate_auxiliaries)
            print(f"wrote {path} ({args.policies[0]}, auxiliaries gated: {args.gate_auxiliaries})")
            return 0
        if args.scale is not None:
            path = scale_policy(args.policies[0], args.scale, args.out, args.columns)
            which = ", ".join(args.columns) if args.columns else "all"
            print(
                f"wrote {path} (the action means of {args.policies[0]} times {args.scale:g}; "
                f"columns: {which})"
            )
            return 0
        combine = ensemble_policies if args.ensemble else average_policies
        path = combine(args.policies, args.out)
    except ArtifactError as err:
        parser.exit(2, f"error: {err}\n")
    what = "actions" if args.ensemble else "weights"
    print(f"wrote {path} (the mean of the {what} of {len(args.policies)} policies)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
