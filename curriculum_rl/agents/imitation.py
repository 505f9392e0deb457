"""Imitation warm start: behaviour-clone the best rule of the ``loss_power`` family.

For instances of the training distribution, every rule ``w_k ∝ E_k^-gamma`` of a grid of
gammas (:class:`~curriculum_rl.controllers.inverse_error.ErrorPower`) trains the same
instance from the same initialisation, in one batch; the label of the instance is the
gamma whose run ends with the lowest mean log test error over the target tasks (the
quantity the headline score G_m compares; these are training instances, never evaluation
ones). The observations met along the best rule's own run, paired with the action that
reproduces that rule under the ``loss_power`` transform (third column gamma /
GAMMA_SCALE, the others 0), form a supervised data set; the task-set actor is fitted to
it by masked mean squared error. PPO then fine-tunes from the cloned actor
(``[train] init_policy``): it starts by recognising, from the observation, which rule of
the family suits the run, instead of discovering it through exploration noise.

Run as ``python -m curriculum_rl.agents.imitation --config agents/FILE.toml --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, cast

import numpy as np
import torch
from tqdm.auto import tqdm

from curriculum_rl.agents.config import TrainConfig, load_config
from curriculum_rl.controllers.actions import GAMMA_SCALE
from curriculum_rl.controllers.base import Controller, Decision, DecisionState, RunContext
from curriculum_rl.controllers.inverse_error import ErrorPower
from curriculum_rl.controllers.learned import NetworkConfig, TaskSetActor, save_artifact
from curriculum_rl.controllers.learned.network import init_weights
from curriculum_rl.controllers.observation import NUM_FEATURES
from curriculum_rl.env import EnvConfig
from curriculum_rl.runner import run_controller
from curriculum_rl.scores import run_errors
from curriculum_rl.suites import SuiteInstance, resolve_suite
from curriculum_rl.trainer import BatchKey, batch_key

GAMMAS = (-0.5, 0.0, 0.5, 1.0, 1.5)
GRID_BATCH = 8  # instances trained side by side (times the rules: runs per trainer batch)
FIRST_SEED = 3_000_000  # instance seeds apart from the evaluation ones (1e6+) and from 0..


class RuleGrid(Controller):
    """Rule ``j % R`` decides run ``j`` of a batch, for ``R`` rules: the runs come in
    blocks of ``R``, each block one instance from one initialisation. Every observation
    met is recorded, ``(runs, K_max, F)`` per decision."""

    def __init__(self, rules: Sequence[Controller], width: int) -> None:
        self.rules = list(rules)
        self.width = width
        self.observations: list[torch.Tensor] = []
        self.name = "rule-grid"

    def reset(self, context: RunContext) -> None:
        super().reset(context)
        for rule in self.rules:
            rule.reset(context)
        self.observations = []

    def decide(self, signals: DecisionState) -> Decision:
        self.observations.append(signals.observation(self.width).clone())
        rows = [rule.decide(signals) for rule in self.rules]
        runs = range(len(rows[0].weights))
        r = len(rows)
        return Decision(
            torch.stack([rows[j % r].weights[j] for j in runs]),
            torch.stack([rows[j % r].sampling[j] for j in runs]),
            torch.stack([rows[j % r].normalisation[j] for j in runs]),
            torch.stack([rows[j % r].scale[j] for j in runs]),
        )


@dataclass
class GridRun:
    """One training instance (drawn with ``seed``) run under every rule of a
    :class:`RuleGrid` from the initialisation ``run_seed``: the mean log test error over
    its target tasks per rule (``inf`` if diverged), the observations
    ``(decisions, R, K_max, F)`` and the name of the suite it was drawn from (``None`` in
    demonstrations stored before it was recorded)."""

    seed: int
    run_seed: int
    budget: int
    setting: str | None
    scores: list[float]
    observations: torch.Tensor
    suite: str | None = None


class GridDraw(NamedTuple):
    """One training instance to run under every rule of a grid: drawn with ``seed``,
    trained for ``budget`` inner steps from the initialisation ``run_seed``."""

    instance: SuiteInstance
    seed: int
    budget: int
    run_seed: int


def run_grids(
    env: EnvConfig,
    draws: Sequence[GridDraw],
    rules: Sequence[Controller],
    batch: int = GRID_BATCH,
    progress: tqdm | None = None,
) -> list[GridRun]:
    """Each draw trained once per rule, all rules from the draw's initialisation; one
    :class:`GridRun` per draw, in order. Draws of one budget that the trainer can batch
    (:func:`~curriculum_rl.trainer.batch_key`) train side by side, up to ``batch`` draws
    at a time, each with the numbers it has alone; ``progress`` advances per draw."""
    groups: dict[tuple[int, BatchKey], list[int]] = {}
    for i, draw in enumerate(draws):
        groups.setdefault((draw.budget, batch_key(draw.instance)), []).append(i)
    runs: list[GridRun | None] = [None] * len(draws)
    for members in groups.values():
        for start in range(0, len(members), batch):
            chunk = members[start : start + batch]
            done = _run_chunk(env, [draws[i] for i in chunk], rules)
            for i, run in zip(chunk, done, strict=True):
                runs[i] = run
            if progress is not None:
                progress.update(len(chunk))
    return cast(list[GridRun], runs)


def _run_chunk(
    env: EnvConfig, draws: Sequence[GridDraw], rules: Sequence[Controller]
) -> list[GridRun]:
    grid = RuleGrid(rules, env.max_tasks)
    r = len(grid.rules)
    records = run_controller(
        [d.instance for d in draws for _ in range(r)],
        [d.run_seed for d in draws for _ in range(r)],
        grid,
        draws[0].budget,
        env.interval,
        env.trainer,
        max_tasks=env.max_tasks,
    )
    observations = torch.stack(grid.observations)  # (decisions, draws * R, K_max, F)
    return [
        GridRun(
            d.seed,
            d.run_seed,
            d.budget,
            d.instance.info.get("setting"),
            [mean_log_error(rec.to_dict()) for rec in records[i * r : (i + 1) * r]],
            observations[:, i * r : (i + 1) * r].clone(),  # its own storage when saved
            d.instance.name,
        )
        for i, d in enumerate(draws)
    ]


def draw_run(rng: np.random.Generator, env: EnvConfig) -> tuple[int, int]:
    """The initialisation seed and the budget (one of ``env.budgets``, else
    ``env.budget``) of a training instance's demonstration runs."""
    budgets = env.budgets or (env.budget,)
    return int(rng.integers(2**31)), int(budgets[int(rng.integers(len(budgets)))])


@dataclass
class Demonstrations:
    """Observations (M, K_max, F), target actions (M, K_max, 3) and the label of each
    instance (gamma, and the mean log test error of every gamma)."""

    observations: torch.Tensor
    actions: torch.Tensor
    labels: list[dict]


def demonstrate(
    config: TrainConfig, instances: int, gammas: tuple[float, ...] = GAMMAS, seed: int = 0
) -> Demonstrations:
    """Label ``instances`` training instances with their best gamma and record the
    observations of the best rule's run (module docstring)."""
    env = config.env
    suite = resolve_suite(env.suite)
    rng = np.random.default_rng(seed)
    draws = []
    for i in range(instances):
        run_seed, budget = draw_run(rng, env)
        draws.append(GridDraw(suite.sample(FIRST_SEED + i), FIRST_SEED + i, budget, run_seed))
    rules = [ErrorPower(g) for g in gammas]
    with tqdm(total=instances, desc="demonstrations", unit="instance") as progress:
        runs = run_grids(env, draws, rules, progress=progress)
    observations, actions, labels = [], [], []
    for run in runs:
        best = int(np.argmin(run.scores))
        labels.append(
            {
                "seed": run.seed,
                "budget": run.budget,
                "gamma": gammas[best],
                "scores": dict(zip(map(str, gammas), run.scores, strict=True)),
                "setting": run.setting,
            }
        )
        observations.append(run.observations[:, best])
        actions.append(_power_actions(run.observations[:, best], gammas[best]))
    return Demonstrations(torch.cat(observations), torch.cat(actions), labels)


def mean_log_error(run: dict) -> float:
    """Mean log test error over a run's target tasks (``inf`` if it diverged): the
    quantity whose difference between two runs of one instance and seed is their G_m gap."""
    errors = run_errors(run)
    chosen = [math.log(max(e, 1e-30)) for e, t in zip(errors, run["targets"], strict=True) if t]
    value = sum(chosen) / len(chosen)
    return value if math.isfinite(value) and not run["diverged"] else math.inf


def _power_actions(obs: torch.Tensor, gamma: float) -> torch.Tensor:
    """The ``loss_power`` action reproducing ``ErrorPower(gamma)``: a_g = gamma /
    GAMMA_SCALE on every valid row, no residual, uniform sampling."""
    mask = obs[..., 0:1] > 0.5
    actions = torch.zeros(*obs.shape[:2], 3)
    actions[..., 2] = gamma / GAMMA_SCALE
    return actions * mask


def clone(
    demos: Demonstrations,
    network: NetworkConfig,
    epochs: int = 30,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
) -> TaskSetActor:
    """Fit a fresh actor's action means to the demonstrations (masked MSE)."""
    torch.manual_seed(seed)
    actor = TaskSetActor(network)
    init_weights(actor)
    optimizer = torch.optim.Adam(actor.parameters(), lr=lr)
    count = len(demos.observations)
    for _ in range(epochs):
        for start in range(0, count, batch_size):
            rows = torch.randperm(count)[start : start + batch_size]
            obs, target = demos.observations[rows], demos.actions[rows]
            mask = obs[..., 0:1] > 0.5
            error = ((actor(obs) - target) ** 2 * mask).sum() / mask.sum().clamp_min(1)
            optimizer.zero_grad()
            error.backward()
            optimizer.step()
    return actor.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="training config (agents/*.toml)")
    parser.add_argument("--out", required=True, help="folder for the cloned policy")
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = load_config(args.config)
    if config.env.action != "loss_power":
        print(
            f"error: imitation clones the loss_power family, {args.config} trains "
            f'{config.env.action!r}; set action = "loss_power" in its [env] table',
            file=sys.stderr,
        )
        return 2
    demos = demonstrate(config, args.instances, seed=config.train.seed)
    network = NetworkConfig(
        **{**config.policy.__dict__, "num_features": NUM_FEATURES, "action_dim": 3}
    )
    actor = clone(demos, network, epochs=args.epochs, seed=config.train.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "labels.json").write_text(json.dumps(demos.labels, indent=1))
    path = save_artifact(
        out / "policy",
        actor,
        max_tasks=config.env.max_tasks,
        action=config.env.action,
        training=config.to_dict(),
        notes={"imitation": {"instances": args.instances, "gammas": list(GAMMAS)}},
    )
    gammas = [label["gamma"] for label in demos.labels]
    print(
        f"cloned {len(demos.observations)} decisions of {args.instances} instances; "
        f"label counts {dict(zip(*np.unique(gammas, return_counts=True), strict=True))}; "
        f"policy: {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
