"""Switch imitation: teach a policy *when* to switch a part of its decision on, from
labelled runs instead of PPO exploration (lever 2 of issue #13, applied to one decision).

A switch is one more action column of a twin of the policy's transform, whose strength
``clip(mean a, 0, 1)`` is 0 for the policy's own decision and 1 for the switched one
(:mod:`curriculum_rl.controllers.actions`):

* ``gate`` (``error_power_gate``): each auxiliary's weight times the positive cosine of
  its gradient with the targets' (Du et al. 2018). It helps where auxiliaries pull
  against the targets and hurts where a small, noisy target makes every cosine small
  (benchmarks/RESULTS.md §18); only instances with auxiliaries are demonstrated.
* ``beta-up`` / ``beta-down`` (``error_power_beta_up`` / ``_down``): ``beta`` raised
  (lowered) by ``BETA_SHIFT``, dividing out more (less) of each task's scale than the
  policy chose (§20); ``aux-beta-up`` (``error_power_aux_beta_up``) raises it for the
  auxiliary tasks only (§21); only instances with auxiliaries are demonstrated.
* ``aux-cap`` (``error_power_aux_cap``): each auxiliary whose weighted error exceeds the
  targets' level cut down to it (§22); ``aux-cap-10`` (``error_power_aux_cap10``) cuts
  only above ten times that level; only instances with auxiliaries are demonstrated.
  ``start-cap`` (``..._aux_startcap``) holds each auxiliary to the targets' weight at
  start scale (§26g): it rescues a target starved beside auxiliaries that fit to
  near-zero error and hurts a noisy target on few examples, which overfits when held up.
* ``fallback`` (``..._fallback``, on v7): the decision mixed towards ``scale-normalised-gs``,
  the runner-up heuristic of most read tiers, which won the attention-trunk suites v7
  missed by most (§27c); at strength 1 the heuristic's decision. ``ie-fallback``
  (``..._iefallback``, on v8) falls back to ``inverse-error`` (§32d); ``gm-fallback``
  (``..._gmfallback``, on v8) to ``geometric-mean``'s per-step direction (uniform weights,
  every loss divided by its own batch value; §33), the rule that won most of held-out
  tier N where v8 missed (§32a, §32f), and ``gmc-fallback`` (``..._gmcfallback``) the same
  except on runs with a regression auxiliary, where it cannot act (§35); ``gmt-fallback``
  (``..._gmtfallback``) takes that direction for the targets only, the auxiliaries keeping
  v8's emphasis (§34);
  ``gms-fallback`` (``..._gmsfallback``) keeps instead each auxiliary's share of v8's
  objective, the targets splitting the rest equally (§34e).
* ``target-start-down`` (``..._tstartdown``, on v8): each target's weight times its start
  error to the power ``TARGET_START_SHIFT`` times the strength: v8's start-scale exponent
  lowered for the targets, so it divides out less of a raw target's start scale (§34f).
* ``aux-drop`` (``..._auxdrop``, on v7): the auxiliaries' weights towards 0 and their
  sampling towards the floor; at strength 1 the targets alone are trained (§31). Only
  instances with auxiliaries are demonstrated. ``aux-reg-drop`` (``..._auxregdrop``)
  drops only the regression auxiliaries.
* ``gamma-up`` (``error_power_gamma_up``): ``gamma`` raised by ``GAMMA_SHIFT``, more of
  each weight following the task's current error (§22); ``gamma-ahead-up``
  (``error_power_gamma_ahead_up``) raises it for the tasks ahead of the run's geometric
  mean error only (§23); ``gamma-progress-up`` (``error_power_gamma_progress_up``)
  applies the shift to each task's progress ``E / E0``, not its error (§24).

PPO did not learn such a column: its exploration is a mean of per-task noise (§18c).

1. Every training instance (from the config's suite and its ``[[train.mix]]`` suites,
   in turn) is trained twice from the same initialisation, by the policy with the switch
   off and on (:class:`~curriculum_rl.agents.imitation.RuleGrid`; instances that can
   share a trainer batch train side by side:
   :func:`~curriculum_rl.agents.imitation.run_grids`). Its ``gain`` is the off run's
   mean log test error over the target tasks minus the on run's: the G_m gap of
   switching on that instance.
2. A cost-sensitive logistic regression predicts, per decision, whether switching wins,
   from the policy's own frozen features: the mean over valid tasks of its actor's task
   latents (what its head reads). Decisions of both runs count, each weighted by
   ``|gain| / decisions``, so an instance weighs what a wrong choice costs it.
3. The logit ``z`` becomes the head row of the switch column: ``a = 0.5 + z / (2 *
   sharpness)``, so the strength is 1 where ``z >= sharpness``, 0 where ``z <=
   -sharpness``. The rest of the network is untouched.

``--features run`` reads the run's raw observation statistics instead (mean, standard
deviation, max and min of each feature and the inverse task count, over all valid tasks,
over the targets and over the auxiliaries, standardised over the demonstrations): the
fitted row then goes to a run head (``NetworkConfig.run_head``) with the standardisation
folded in. For the fallback switch on v7 they captured several times what v7's latents
did in cross-validation (§28–29): the latents are trained for per-task weights and need
not carry the run's regime. ``--statistics`` keeps only the statistics it names
(``targets.mean.log_weight``; :func:`selected_statistics`): a fit on all of them leaned on
many at once and told training families apart rather than regimes (§36c, §37).

The L2 strength is chosen by cross-validation over instances (training instances only,
five folds, the mean over ``REPEATS`` random splits), on the gain the fitted switch would
capture: the mean of ``strength * gain`` over held-out instances (strength averaged over
the off run's decisions), beside never
switching (0), always switching (mean gain) and the oracle (mean positive gain). Where
always switching scores at least as well as every fitted L2, the written policy switches
always (strength 1 at every decision: the switch is a fixed part of the rule).

    python -m curriculum_rl.agents.switch_imitation --switch gate \\
        --config agents/switch-imitation.toml --policy agents/v3.json \\
        --instances 240 --out runs/gate-im

``--reuse`` refits on OUT's stored demonstrations; ``--demos A B`` fits on those stored
in folders A and B (say a first set and one from a new training family).

``--latch linear`` (or ``conservative``) reads the switch as a latch, for a switch with a
latched twin (``gmc-fallback``: ``..._gmclatch``): fully on from the first decision whose
strength reaches ``LATCH_AT`` to the end of the run. The demonstrations and the fit are
the same; cross-validation scores :func:`latched_gains`, and the written policy runs under
the latched twin (RESULTS §35c: a fallback whose strength dips for one interval can wreck
a run that the switched-on demonstration won). ``--latch start`` reads it at the first
decision only (``..._gmcstart``): on for the whole run or never, which its demonstrations
score exactly (RESULTS §36a: latches that closed mid-run lost on raw-scale runs).
``--latch continuous`` writes the latch that holds the objective's scale continuous at a
mid-run close instead (``..._gmccont``, RESULTS §36d), scored as ``linear``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import numpy as np
import torch
from tqdm.auto import tqdm

from curriculum_rl.agents.average import save_derived, twin_actor
from curriculum_rl.agents.config import TrainConfig, load_config
from curriculum_rl.agents.imitation import FIRST_SEED, GridDraw, GridRun, draw_run, run_grids
from curriculum_rl.atomic import atomic_path, write_json_atomic
from curriculum_rl.controllers.actions import LATCH_AT, TRANSFORMS
from curriculum_rl.controllers.learned import LearnedController, load_artifact
from curriculum_rl.controllers.learned.artifact import PolicyArtifact
from curriculum_rl.controllers.learned.network import (
    POOLED,
    RUN_GROUPS,
    TaskSetActor,
    run_statistic_names,
    run_statistics,
    target_mask,
    task_mask,
)
from curriculum_rl.controllers.observation import FEATURES, OBS_VERSION
from curriculum_rl.suites import Suite, SuiteInstance, resolve_suite
from curriculum_rl.suites.base import TaskKind

L2_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
FOLDS = 5
REPEATS = 5  # fold splits averaged in cross-validation
SHARPNESS = 1.0
DEFAULT_INSTANCES = 200
MAX_DRAWS = 200  # instances drawn per suite in search of one with auxiliaries
GAIN_CLAMP = 10.0  # a diverged run's loss, in nats of mean log error
SPREAD_FLOOR = 1e-6  # run statistics with less spread in the demonstrations count as constant
# latched_gains; "start": the start latch; "continuous" scores as "linear" (its twin differs)
LATCH_SCORINGS = ("linear", "conservative", "start", "continuous")


@dataclass(frozen=True)
class Switch:
    """A switch (module docstring): the suffix of the twin transform whose last column
    sets its strength, whether only instances with auxiliaries are demonstrated and, if
    it acts on one kind of auxiliary only, that task kind (an instance without one would
    run the same schedule twice, its gain round-off); ``latched``, if the switch can be
    read as a latch (``--latch linear`` or ``conservative``), the suffix of that twin, and
    ``started`` the suffix of the twin that reads it at the first decision only (``--latch
    start``), ``continuous`` that of the latch holding the objective's scale continuous
    at a mid-run close (``--latch continuous``)."""

    name: str
    suffix: str
    auxiliaries_only: bool
    auxiliary_kind: TaskKind | None = None
    latched: str | None = None  # the suffix of the twin that reads the column as a latch
    started: str | None = None  # the suffix of the twin that reads it at the first decision
    continuous: str | None = None  # the suffix of the latch with a continuous scale

    def __post_init__(self) -> None:
        # a kind filter on a switch that demonstrates every instance would be silently unused
        if self.auxiliary_kind is not None and not self.auxiliaries_only:
            raise ValueError(
                f"switch {self.name!r}: auxiliary_kind needs auxiliaries_only=True "
                "(only instances with auxiliaries are filtered by kind)"
            )
        if self.auxiliary_kind not in (None, *get_args(TaskKind)):
            raise ValueError(
                f"switch {self.name!r}: auxiliary_kind {self.auxiliary_kind!r} is not a task "
                f"kind; use one of {get_args(TaskKind)} or None"
            )

    def twin(self, policy: PolicyArtifact) -> str:
        return f"{policy.action}{self.suffix}"

    def latch_suffix(self, latch: str) -> str | None:
        """The suffix of the twin a fit read as a latch by ``latch`` (one of
        ``LATCH_SCORINGS``) runs under, ``None`` if this switch has none."""
        return {"start": self.started, "continuous": self.continuous}.get(latch, self.latched)


SWITCHES = {
    s.name: s
    for s in (
        Switch("gate", "_gate", True),
        Switch("beta-up", "_beta_up", False),
        Switch("beta-down", "_beta_down", False),
        Switch("aux-beta-up", "_aux_beta_up", True),
        Switch("aux-cap", "_aux_cap", True),
        Switch("aux-cap-10", "_aux_cap10", True),
        Switch("start-cap", "_aux_startcap", True),
        Switch("fallback", "_fallback", False),
        Switch("ie-fallback", "_iefallback", False),
        Switch("gm-fallback", "_gmfallback", False),
        Switch(
            "gmc-fallback",
            "_gmcfallback",
            False,
            latched="_gmclatch",
            started="_gmcstart",
            continuous="_gmccont",
        ),
        Switch("sqrt-fallback", "_sqrtfallback", False, started="_sqrtstart"),
        Switch("fourth-root-fallback", "_fourthfallback", False, started="_fourthstart"),
        Switch("gmt-fallback", "_gmtfallback", False),
        Switch("gms-fallback", "_gmsfallback", False),
        Switch("target-start-down", "_tstartdown", False),
        Switch("aux-drop", "_auxdrop", True),
        Switch("aux-reg-drop", "_auxregdrop", True, "regression"),
        Switch("gamma-up", "_gamma_up", False),
        Switch("gamma-ahead-up", "_gamma_ahead_up", False),
        Switch("gamma-progress-up", "_gamma_progress_up", False),
    )
}


def switched_rules(
    policy: PolicyArtifact, switch: Switch, strengths: Sequence[float] = (0.0, 1.0)
) -> list[LearnedController]:
    """One controller per switch strength: at 0 the policy as it is, otherwise its twin
    with the switch held at that strength at every decision (by default off and fully
    on, the two runs a demonstration compares)."""
    rules = []
    for strength in strengths:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"a switch strength lies in [0, 1], got {strength}")
        if strength == 0.0:
            rules.append(LearnedController(policy.actor, policy.max_tasks, policy.action))
            continue
        twin = twin_actor(policy, switch.twin(policy))
        with torch.no_grad():
            twin.head.bias[-1] = strength
        rules.append(LearnedController(twin, policy.max_tasks, switch.twin(policy)))
    return rules


def demonstrate(
    config: TrainConfig,
    policy: PolicyArtifact,
    switch: Switch,
    instances: int,
    seed: int = 0,
    strengths: Sequence[float] = (0.0, 1.0),
) -> list[GridRun]:
    """Run ``instances`` training instances, drawn by :func:`demonstration_draws`, at each
    switch strength (:func:`switched_rules`; by default off and on, module docstring step
    1), side by side from one initialisation per instance."""
    draws = demonstration_draws(config, switch, instances, seed)
    rules = switched_rules(policy, switch, strengths)
    with tqdm(total=instances, desc=f"{switch.name} demonstrations", unit="instance") as bar:
        return run_grids(config.env, draws, rules, progress=bar)


def demonstration_draws(
    config: TrainConfig, switch: Switch, instances: int, seed: int = 0
) -> list[GridDraw]:
    """The ``instances`` training instances a demonstration runs: suites take turns, each
    instance from the next seed of its suite (that has an auxiliary task, for a switch
    that needs one); budgets and initialisations drawn from ``seed``."""
    names = [config.env.suite, *(m.suite for m in config.train.mix)]
    suites = [resolve_suite(name) for name in names]
    next_seed = [FIRST_SEED] * len(suites)
    rng = np.random.default_rng(seed)
    draws = []
    for i in range(instances):
        which = i % len(suites)
        suite, name = suites[which], names[which]
        if switch.auxiliaries_only:
            instance, drawn = _with_auxiliaries(
                suite, next_seed[which], name, switch.auxiliary_kind
            )
        else:
            drawn = next_seed[which]
            instance = suite.sample(drawn)
        next_seed[which] = drawn + 1
        run_seed, budget = draw_run(rng, config.env)
        draws.append(GridDraw(instance, drawn, budget, run_seed))
    return draws


def _with_auxiliaries(
    suite: Suite, seed: int, name: str, kind: str | None = None
) -> tuple[SuiteInstance, int]:
    """The first instance from ``seed`` on with a target and an auxiliary task (of task
    ``kind``, if given), and its seed."""
    for draw in range(seed, seed + MAX_DRAWS):
        instance = suite.sample(draw)
        targets = set(instance.target_tasks)
        auxiliaries = [t for k, t in enumerate(instance.tasks) if k not in targets]
        if targets and any(kind in (None, t.kind) for t in auxiliaries):
            return instance, draw
    what = "an auxiliary task" if kind is None else f"a {kind} auxiliary task"
    raise ValueError(
        f"{name}: none of {MAX_DRAWS} instances from seed {seed} has {what}; "
        "this switch needs suites with such auxiliaries (docs/suites.md, `auxiliary`)"
    )


def rule_gains(scores: Sequence[float]) -> list[float]:
    """Per rule after the first: the first rule's score (mean log test error) minus that
    rule's, > 0 where it wins, clamped to ``±GAIN_CLAMP``. A diverged run loses to one
    that did not; two diverged runs tie."""
    first = scores[0]
    return [
        0.0 if first == score else float(np.clip(first - score, -GAIN_CLAMP, GAIN_CLAMP))
        for score in scores[1:]
    ]


def gains(runs: list[GridRun]) -> torch.Tensor:
    """(I,) the gain of switching on (:func:`rule_gains` of the off and on runs)."""
    return torch.tensor([rule_gains(run.scores)[0] for run in runs], dtype=torch.float32)


@torch.no_grad()
def switch_features(actor: TaskSetActor, observations: torch.Tensor) -> torch.Tensor:
    """(M, H) mean over valid tasks of the actor's task latents for observations
    (M, K_max, F): the switch column's mean is a linear function of exactly this."""
    mask = task_mask(observations)
    latent = actor.encoder(observations, mask)
    count = mask.sum(1, keepdim=True).clamp_min(1).float()
    return latent.sum(1) / count


@torch.no_grad()
def run_features(actor: TaskSetActor, observations: torch.Tensor) -> torch.Tensor:
    """(M, 3 (4F + 1)) the run statistics a run head reads (``NetworkConfig.run_head``)."""
    mask, targets = task_mask(observations), target_mask(observations)
    return run_statistics(observations * actor.encoder.keep, mask, targets)


SWITCH_INPUTS = {"latent": switch_features, "run": run_features}  # what a switch can read


def selected_statistics(patterns: Sequence[str]) -> torch.Tensor:
    """(S,) float mask of the run statistics (:func:`run_features`) whose names
    (``run_statistic_names``, e.g. ``targets.mean.log_weight``) match any of ``patterns``
    (shell-style: ``*.mean.log_weight``). A pattern that matches nothing is refused, as a
    misspelt name would silently drop a statistic."""
    names = run_statistic_names()
    chosen = torch.zeros(len(names))
    for pattern in patterns:
        hits = [i for i, name in enumerate(names) if fnmatch.fnmatchcase(name, pattern)]
        if not hits:
            raise ValueError(
                f"run statistic pattern {pattern!r} matches none of the {len(names)} "
                "names GROUP.STATISTIC.FEATURE or GROUP.inverse_count (groups "
                f"{', '.join(RUN_GROUPS)}; statistics {', '.join(POOLED)}; features "
                "as in the observation layout, e.g. targets.mean.log_weight)"
            )
        chosen[hits] = 1.0
    return chosen


@dataclass
class DecisionTable:
    """Every decision of both runs of every instance: the switch features, whether
    switching won the instance, the decision's weight (``|gain| / decisions``), the
    instance it belongs to and whether it comes from the run with the switch off;
    ``gain`` per instance."""

    features: torch.Tensor
    labels: torch.Tensor
    weights: torch.Tensor
    owner: torch.Tensor
    off: torch.Tensor
    gain: torch.Tensor
    centre: torch.Tensor | None = None
    spread: torch.Tensor | None = None
    """For ``run`` features: the raw statistics' mean and standard deviation, by which
    ``features`` are standardised (the fit's L2 then treats every statistic alike)."""

    @classmethod
    def build(
        cls,
        actor: TaskSetActor,
        runs: list[GridRun],
        features: str = "latent",
        statistics: Sequence[str] | None = None,
    ) -> DecisionTable:
        """The table of ``runs``; for ``run`` features, ``statistics`` (patterns of
        :func:`selected_statistics`) keeps only the run statistics they name."""
        if statistics is not None and features != "run":
            raise ValueError("a selection of run statistics needs features='run'")
        table = cls._collect(actor, runs, SWITCH_INPUTS[features])
        if features == "run":
            spread = table.features.std(0)
            table.centre = table.features.mean(0)
            # a statistic below the floor is constant up to float round-off, which can
            # still tell training suites apart: zero it, as the written run head does;
            # one not selected is treated as constant
            if statistics is not None:
                spread = spread * selected_statistics(statistics)
            table.spread = spread.clamp_min(SPREAD_FLOOR)
            varies = spread > SPREAD_FLOOR
            standardised = (table.features - table.centre) / table.spread
            table.features = torch.where(varies, standardised, torch.zeros_like(standardised))
        return table

    @classmethod
    def _collect(
        cls, actor: TaskSetActor, runs: list[GridRun], read: Callable[..., torch.Tensor]
    ) -> DecisionTable:
        gain = gains(runs)
        features, labels, weights, owner, off = [], [], [], [], []
        for i, run in enumerate(runs):
            obs = run.observations.flatten(0, 1)  # (decisions * 2, K_max, F): off first
            features.append(read(actor, obs))
            labels.append(torch.full((len(obs),), float(gain[i] > 0)))
            weights.append(torch.full((len(obs),), float(gain[i].abs()) / len(obs)))
            owner.append(torch.full((len(obs),), i))
            off.append(torch.arange(len(obs)) % 2 == 0)
        columns = (features, labels, weights, owner, off)
        return cls(*(torch.cat(c) for c in columns), gain=gain)


def fit_switch(
    features: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, l2: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted, L2-regularised logistic regression (full-batch L-BFGS): ``(w, b)`` of the
    logit ``z = features @ w + b``. Weights are normalised to sum 1."""
    weights = weights / weights.sum().clamp_min(1e-12)
    w = torch.zeros(features.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        logits = features @ w + b
        nll = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")
        value = (weights * nll).sum() + l2 * w.pow(2).sum()
        value.backward()
        return value

    optimizer.step(loss)
    return w.detach(), b.detach()


def strength(
    features: torch.Tensor, w: torch.Tensor, b: torch.Tensor, sharpness: float
) -> torch.Tensor:
    """The switch strength the fitted row sets: ``clip(0.5 + z / (2 sharpness), 0, 1)``."""
    return (0.5 + (features @ w + b) / (2 * sharpness)).clamp(0, 1)


def fold_splits(
    count: int, seed: int = 0, folds: int = FOLDS, repeats: int = REPEATS
) -> list[np.ndarray]:
    """``repeats`` random assignments of ``count`` instances to ``folds`` folds (each a
    ``(count,)`` array of fold ids), drawn from ``seed``: the splits cross-validation
    averages over."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(count) % folds for _ in range(repeats)]


def cross_validate(
    table: DecisionTable,
    l2_grid: tuple[float, ...] = L2_GRID,
    folds: int = FOLDS,
    sharpness: float = SHARPNESS,
    seed: int = 0,
    repeats: int = REPEATS,
    latch: str | None = None,
) -> dict[str, float]:
    """Mean gain per held-out instance captured by the fitted switch, per L2 strength, and
    the three references (module docstring). Folds split instances, not decisions, and
    the split is drawn ``repeats`` times: on a few hundred instances one split's figure
    moved by as much as its mean (RESULTS §29a), so the mean over splits is selected on.
    With ``latch`` (one of ``LATCH_SCORINGS``) the switch is read as a latch
    (:func:`latched_gains`) instead of by its mean strength."""
    gain = table.gain
    splits = [torch.from_numpy(f) for f in fold_splits(len(gain), seed, folds, repeats)]
    result = {
        "never": 0.0,
        "always": gain.mean().item(),
        "oracle": gain.clamp_min(0).mean().item(),
    }
    for l2 in l2_grid:
        captured = [captured_gains(table, f, l2, sharpness, latch) for f in splits]
        result[f"l2={l2:g}"] = torch.stack(captured).mean().item()
    return result


def captured_gains(
    table: DecisionTable,
    fold_of: torch.Tensor,
    l2: float,
    sharpness: float = SHARPNESS,
    latch: str | None = None,
) -> torch.Tensor:
    """(I,) the gain each instance captures under a switch fitted without its fold
    (:func:`readout_gains` of :func:`held_out_readouts`)."""
    return readout_gains(held_out_readouts(table, fold_of, l2, sharpness), table.gain, latch)


def readout_gains(
    readouts: list[torch.Tensor], gain: torch.Tensor, latch: str | None = None
) -> torch.Tensor:
    """(I,) the gain each instance captures from its off run's ``readouts``: its mean
    strength times its gain, or with ``latch`` :func:`latched_gains`."""
    if latch is None:
        return mean_strengths(readouts) * gain
    return latched_gains(readouts, gain, latch)


def held_out_readouts(
    table: DecisionTable, fold_of: torch.Tensor, l2: float, sharpness: float = SHARPNESS
) -> list[torch.Tensor]:
    """Per instance, the switch strength at each decision of its off run, in order, under
    a switch fitted without the instances of its fold; ``fold_of`` (I,) gives each
    instance's fold (random in :func:`cross_validate`, a training family in
    benchmarks/family_holdout.py)."""
    readouts = [torch.empty(0)] * len(table.gain)
    for fold in fold_of.unique().tolist():
        train = fold_of[table.owner] != fold
        w, b = fit_switch(table.features[train], table.labels[train], table.weights[train], l2)
        for i in (fold_of == fold).nonzero().flatten().tolist():
            rows = (table.owner == i) & table.off
            readouts[i] = strength(table.features[rows], w, b, sharpness)
    return readouts


def mean_strengths(readouts: list[torch.Tensor]) -> torch.Tensor:
    """(I,) each instance's switch strength, the mean over its off run's decisions."""
    return torch.stack([r.mean() for r in readouts])


def latched_gains(readouts: list[torch.Tensor], gain: torch.Tensor, scoring: str) -> torch.Tensor:
    """(I,) the gain a latched switch (``LATCH_AT``, ``actions.LatchedFallbackTransform``)
    captures on each instance, from its off run's ``readouts``: the latched run follows
    the off run until the latch closes, at the first decision ``t`` with strength >=
    ``LATCH_AT``. Never closed: 0; closed at ``t = 0``: the run is the switched-on run, so
    the instance's gain, exactly. Closed later, the run is not demonstrated: ``linear``
    counts ``gain (1 - t / T)`` of its ``T`` decisions, ``conservative`` ``min(gain, 0)``.
    ``start`` scores the start latch (``..._gmcstart``), which closes at ``t = 0`` or
    never: the instance's gain where the first readout reaches ``LATCH_AT``, else 0,
    exactly. ``continuous`` (``..._gmccont``) counts as ``linear``: with the objective's
    scale held at the close, a late close lost little on the runs measured (§36d)."""
    if scoring not in LATCH_SCORINGS:
        raise ValueError(f"latch scoring must be one of {LATCH_SCORINGS}, got {scoring!r}")
    captured = torch.zeros(len(gain))
    for i, readout in enumerate(readouts):
        closed = (readout >= LATCH_AT).nonzero().flatten()
        if len(closed) == 0:
            continue
        t = int(closed[0])
        if scoring == "start":
            captured[i] = gain[i] if t == 0 else 0.0
        elif t == 0:
            captured[i] = gain[i]
        elif scoring in ("linear", "continuous"):
            captured[i] = gain[i] * (1 - t / len(readout))
        else:
            captured[i] = gain[i].clamp_max(0)
    return captured


def fitted_switch_policy(
    policy: PolicyArtifact,
    switch: Switch,
    w: torch.Tensor,
    b: torch.Tensor,
    out: str | Path,
    sharpness: float = SHARPNESS,
    notes: dict | None = None,
    standardised: tuple[torch.Tensor, torch.Tensor] | None = None,
    action: str | None = None,
) -> Path:
    """Write ``policy`` with the switch's column, whose head row sets the strength
    ``clip(0.5 + z / (2 sharpness), 0, 1)``; return its JSON path. With
    ``standardised = (centre, spread)`` the fit read standardised run statistics: the
    row goes to a run head instead, the standardisation folded into it."""
    actor = twin_actor(policy, switch.twin(policy), run_head=standardised is not None)
    row = actor.head
    if standardised is not None:
        centre, spread = standardised
        # a statistic that never varied was 0 after standardising: it gets no weight
        w = torch.where(spread > SPREAD_FLOOR, w / spread, torch.zeros_like(w))
        b = b - w @ centre
        row = actor.run_head
    with torch.no_grad():
        row.weight[-1] = w / (2 * sharpness)
        row.bias[-1] = 0.5 + b / (2 * sharpness)
    return save_derived(
        actor,
        [policy],
        out,
        "switched",
        action=action or switch.twin(policy),
        switch_imitation={"switch": switch.name, **(notes or {})},
    )


def demonstration_source(policy: PolicyArtifact, switch: Switch) -> dict[str, Any]:
    """What demonstrations are made with, stored beside them (``source.json``): a fit on
    them must extend the same policy with the same switch, and read the same
    observation layout."""
    return {
        "switch": switch.name,
        "policy_sha256": policy.metadata.get("weights_sha256"),
        "observation": {"version": OBS_VERSION, "features": list(FEATURES)},
    }


def save_demonstrations(
    runs: list[GridRun], out: Path, source: dict[str, Any] | None = None
) -> None:
    """Store demonstrations in ``out``: ``labels.json`` (everything but the observations),
    ``demos.pt`` (the observations) and, if given, ``source.json``
    (:func:`demonstration_source`), each replaced atomically."""
    fields = ("seed", "run_seed", "budget", "setting", "scores", "suite")
    write_json_atomic(out / "labels.json", [{k: getattr(r, k) for k in fields} for r in runs])
    with atomic_path(out / "demos.pt") as tmp:
        torch.save({"observations": [r.observations for r in runs]}, tmp)
    if source is not None:
        write_json_atomic(out / "source.json", source)


def check_demonstrations(folder: Path, expected: dict[str, Any]) -> None:
    """Raise ``ValueError`` if ``folder``'s demonstrations were made with another switch,
    policy or observation layout than ``expected``. Sets stored before ``source.json``
    existed carry no record and pass."""
    path = folder / "source.json"
    if not path.is_file():
        return
    found = json.loads(path.read_text())
    for key, value in expected.items():
        if found.get(key) != value:
            # an observation layout is a long list: name the mismatch, not both lists
            shown = "" if key == "observation" else f" ({found.get(key)!r}, not {value!r})"
            what = {"policy_sha256": "policy", "observation": "observation layout"}.get(key, key)
            raise ValueError(
                f"{folder}: its demonstrations were made with another {what}{shown}; fit "
                "them with the --switch and --policy that made them, or run new "
                "demonstrations"
            )


def load_demonstrations(out: Path) -> list[GridRun]:
    """The demonstrations :func:`save_demonstrations` stored in ``out`` (tensors only:
    ``weights_only`` loading runs no code from the file)."""
    labels = json.loads((out / "labels.json").read_text())
    tensors = torch.load(out / "demos.pt", weights_only=True)["observations"]
    return [GridRun(**label, observations=obs) for label, obs in zip(labels, tensors, strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="env settings and suites (agents/*.toml)")
    parser.add_argument(
        "--switch", choices=sorted(SWITCHES), default="gate", help="the decision to learn"
    )
    parser.add_argument("--policy", required=True, help="the policy to extend (NAME.json)")
    parser.add_argument("--out", required=True, help="folder for labels, demos and the policy")
    parser.add_argument(
        "--instances",
        type=int,
        help=f"training instances to demonstrate (default {DEFAULT_INSTANCES}); not with "
        "--reuse or --demos, which fit on stored ones",
    )
    parser.add_argument("--reuse", action="store_true", help="refit on OUT's stored demonstrations")
    parser.add_argument(
        "--demos",
        nargs="+",
        type=Path,
        metavar="FOLDER",
        help="fit on the demonstrations stored in these folders, in order, instead of "
        "running new ones (e.g. a first set and a set from a new training family)",
    )
    parser.add_argument(
        "--features",
        choices=sorted(SWITCH_INPUTS),
        default="latent",
        help="what the switch reads: the policy's mean task latent (its head row), or the "
        "run's observation statistics (a run head, NetworkConfig.run_head)",
    )
    parser.add_argument(
        "--statistics",
        nargs="+",
        metavar="PATTERN",
        help="with --features run: read only the run statistics these names or patterns "
        "match (GROUP.STATISTIC.FEATURE, e.g. 'targets.mean.log_weight' or "
        "'*.mean.log_error_centred'; groups all, targets, auxiliaries; statistics mean, "
        "std, max, min; or GROUP.inverse_count)",
    )
    parser.add_argument(
        "--l2",
        type=float,
        help="fit with this L2 strength (cross-validation still runs and is reported); "
        "default: the L2 of the grid, or always switching, that cross-validation prefers",
    )
    parser.add_argument(
        "--latch",
        choices=LATCH_SCORINGS,
        help="read the switch as a latch (its latched twin): cross-validate by "
        "latched_gains, a latch closed after the start counted this way; 'start': "
        "the twin that reads it at the first decision only, scored exactly",
    )
    args = parser.parse_args(argv)
    if args.latch and SWITCHES[args.switch].latch_suffix(args.latch) is None:
        latchable = sorted(n for n, s in SWITCHES.items() if s.latch_suffix(args.latch))
        parser.error(
            f"--latch {args.latch}: {args.switch} has no twin read that way; switches "
            f"with one: {latchable}"
        )
    if args.statistics and args.features != "run":
        parser.error("--statistics selects run statistics: give it with --features run")
    if args.statistics:
        try:
            selected_statistics(args.statistics)
        except ValueError as err:
            parser.error(str(err))
    if args.l2 is not None and args.l2 < 0:
        parser.error(f"--l2 must be >= 0, got {args.l2}")
    if args.instances is not None and (args.reuse or args.demos):
        parser.error(
            "--instances sets how many new demonstrations run; --reuse and --demos run none"
        )
    if args.instances is None:
        args.instances = DEFAULT_INSTANCES
    if args.instances < 2:
        parser.error(f"--instances must be >= 2 (a fit needs both outcomes), got {args.instances}")
    out = Path(args.out)
    if args.reuse and args.demos:
        parser.error("--reuse refits on OUT's demonstrations, --demos on others': give one")
    if args.reuse:
        args.demos = [out]
    for folder in args.demos or []:
        if not (folder / "labels.json").is_file() or not (folder / "demos.pt").is_file():
            flag = "--reuse" if args.reuse else "--demos"
            parser.error(
                f"{flag}: no stored demonstrations in {folder} (labels.json and demos.pt); "
                "a run of this command without --reuse or --demos stores them"
            )
    torch.set_num_threads(1)
    config = load_config(args.config)
    switch = SWITCHES[args.switch]
    policy = load_artifact(args.policy)
    if switch.twin(policy) not in TRANSFORMS:
        parser.error(
            f"{args.policy} uses the {policy.action!r} action, which has no "
            f"{switch.twin(policy)!r} twin for the {switch.name} switch; switches extend "
            "error_power policies (e.g. agents/v3.json)"
        )
    source = demonstration_source(policy, switch)
    for folder in args.demos or []:
        try:
            check_demonstrations(folder, source)
        except ValueError as err:
            parser.error(str(err))
    out.mkdir(parents=True, exist_ok=True)
    if args.demos:
        runs = [run for folder in args.demos for run in load_demonstrations(folder)]
    else:
        runs = demonstrate(config, policy, switch, args.instances, seed=config.train.seed)
        save_demonstrations(runs, out, source)
    table = DecisionTable.build(policy.actor, runs, args.features, args.statistics)
    scores = cross_validate(table, seed=config.train.seed, latch=args.latch)
    choice = max(["always", *(f"l2={value:g}" for value in L2_GRID)], key=scores.__getitem__)
    if args.l2 is not None:
        choice = f"l2={args.l2:g}"
    notes = {"instances": len(runs), "sharpness": SHARPNESS, "cross_validation": scores}
    notes["features"] = args.features
    if args.statistics:
        notes["statistics"] = list(args.statistics)
    if args.latch:
        notes["latch"] = args.latch
    if args.demos and args.demos != [out]:
        notes["demonstrations"] = [str(folder) for folder in args.demos]
    if choice == "always":  # no fit captures more than switching everywhere: do that
        w, b = torch.zeros(table.features.shape[1]), torch.tensor(SHARPNESS)
        notes["always"] = True
    else:
        notes["l2"] = float(choice.removeprefix("l2="))
        notes["l2_given"] = args.l2 is not None
        w, b = fit_switch(table.features, table.labels, table.weights, notes["l2"])
    standardised = None if table.centre is None else (table.centre, table.spread)
    latched = policy.action + switch.latch_suffix(args.latch) if args.latch else None
    path = fitted_switch_policy(
        policy, switch, w, b, out / "policy", notes=notes, standardised=standardised, action=latched
    )
    wins, losses = int((table.gain > 0).sum()), int((table.gain < 0).sum())
    print(f"switching ({switch.name}) wins on {wins} of {len(runs)} instances, loses on {losses}")
    table = ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
    print(f"mean gain per instance (cross-validated): {table}")
    print(f"chose {choice}; policy: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
