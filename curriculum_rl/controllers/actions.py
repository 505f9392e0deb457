"""Action transforms: policy outputs in [-1, 1] -> task weights and sampling probabilities.

A transform reads one row of ``dim`` numbers per task slot (padded slots are ignored) and
the :class:`~curriculum_rl.controllers.base.DecisionState` it acts on. The env's
``action`` setting picks one of :data:`TRANSFORMS`, and a policy file records the one it was
trained with (its name and constants), so a loaded policy always maps its outputs the same
way.

``logits`` (``dim = 2``, per task ``(a_w, a_s)``), over the K valid tasks of a run::

    weights  = K * softmax(WEIGHT_SCALE * a_w)                      (mean 1)
    sampling = (1 - SAMPLING_FLOOR) * softmax(SAMPLING_SCALE * a_s) + SAMPLING_FLOOR / K

``loss_power`` (``dim = 3``, per task ``(a_w, a_s, a_g)``): the weights move along the
family of error-equalising rules, ``w_k ∝ E_k^-gamma``, plus bounded per-task residuals::

    gamma    = GAMMA_SCALE * mean over valid tasks of a_g            (in [-1.5, 1.5])
    weights  = K * softmax(-gamma * log E_k + RESIDUAL_SCALE * a_w)
    sampling = as for logits

with ``E_k`` the task's validation error (MSE for regression, the smoothed soft error for
classification: :func:`curriculum_rl.trainer.trainer.soft_error`). gamma = 0 is uniform,
gamma = 1 weights each task by the inverse of its error, which for regression tasks of
different output scales is the static or dynamic 1/L weighting that published comparisons
found hard to beat; matching it is one global number to recognise, not a per-task rule to
re-derive. The error is bounded for classification (at most 1, at least ``1 / (V + 1)``),
so a solved classification task can be favoured at most ``V + 1``-fold, unlike 1/L.

``error_power`` (``dim = 4``, per task ``(a_w, a_s, a_g, a_b)``): as ``loss_power``, but
centred on a rule that normalises task *scale* instead of on uniform, with a second
exponent on each task's error at the run's first decision, ``E0_k``::

    gamma    = GAMMA_CENTRE + GAMMA_SCALE * mean a_g
    beta     = START_CENTRE + START_SCALE * mean a_b
    weights  = K * softmax(-gamma * log E_k - beta * log E0_k + RESIDUAL_SCALE * a_w)
    sampling = as for logits

``E0_k`` measures a task's scale before training (for regression, the variance of its
raw targets), ``E_k`` its scale and how far it has come; ``beta`` normalises scale
without chasing tasks that are already solved, which ``1 / E_k`` does.

``error_power_weights`` (``dim = 3``, per task ``(a_w, a_g, a_b)``): ``error_power``
without the sampling column; every task is sampled uniformly (``1 / K``). Switching
the sampling part of the v3 policy off cost nothing on the validation suites and made
it safer (benchmarks/RESULTS.md §16), so this asks PPO to learn with one noisy action
number per task fewer.

``error_exponents`` (``dim = 2``, per task ``(a_g, a_b)``): only the two exponents, no
per-task residual, uniform sampling; a policy chooses two numbers per run and decision.
The exponents alone carried most of v3's gain over its centre (§16).

``error_power_gated`` (``dim = 4``, as ``error_power``): ``error_power``'s decision with
each auxiliary task's weight times ``max(0, cos(g_aux, g_targets))``, the cosine of its
gradient with the target tasks' weighted gradient (Du et al. 2018;
:mod:`curriculum_rl.controllers.auxiliary`). A suite without auxiliaries gets exactly
``error_power``; so a policy trained with ``error_power`` runs gated with the same weights
(``python -m curriculum_rl.agents.average POLICY --gate-auxiliaries``).

``error_power_gate`` (``dim = 5``, per task ``(a_w, a_s, a_g, a_b, a_d)``): the policy
chooses how hard to gate, ``delta = clip(mean a_d, 0, 1)``, and each auxiliary's weight
is multiplied by ``max(0, cos)^delta``: 0 (the zero action) is ``error_power`` exactly,
1 is ``error_power_gated``. Du et al.'s gate helps where auxiliaries pull against the
targets and hurts where a small, noisy target makes every cosine small, helpful
auxiliaries included (benchmarks/RESULTS.md §18), so whether to gate is left to the
policy (``python -m curriculum_rl.agents.average POLICY --gate-auxiliaries learned``
adds the column to an ``error_power`` policy, at 0).

``error_power_beta_up`` and ``error_power_beta_down`` (``dim = 5``, per task ``(a_w, a_s,
a_g, a_b, a_h)``): as ``error_power``, with ``beta`` raised (lowered) by ``BETA_SHIFT *
clip(mean a_h, 0, 1)``; ``error_power_aux_beta_up`` raises it for the auxiliary tasks
only (targets keep the policy's ``beta``). ``gamma + beta`` is how much of a task's scale
the weights divide out (1: all of it, as ``scale-normalised`` does); the v3 policy
chooses about 0.8 on its training distribution (benchmarks/RESULTS.md §14d), which is
best where every task is scored and too little for a tiny target among raw-scale
auxiliaries (§21). These columns let a policy divide out more (less) of the scale, per
decision, starting from its own choice (0 is ``error_power`` exactly;
``python -m curriculum_rl.agents.switch_imitation --switch aux-beta-up`` fits one).
``error_power_gamma_up`` (``dim = 5``) raises ``gamma`` instead, by ``GAMMA_SHIFT *
clip(mean a_h, 0, 1)``: more of each weight follows the task's current error, towards
the dynamic normalisers (``inverse-error``, ``geometric-mean``) that won where v3 missed
on tier F (benchmarks/RESULTS.md §22). ``error_power_gamma_ahead_up`` raises it by as much
for the tasks whose error is below the run's geometric mean only (the extra logit
``-shift * min(log E_k - mean log E, 0)``): tasks that are ahead gain weight as under
``error_power_gamma_up``, tasks that are behind are not pushed further down (the full
shift kept a raw-scale task's weight pinned low on a test suite; benchmarks/RESULTS.md §23).
``error_power_gamma_late_up`` scales the shift by the fraction of the budget used, so
early decisions (where that pinning formed) are ``error_power``'s and late ones
``error_power_gamma_up``'s. ``error_power_gamma_guarded_up`` drops the shift for a run while one of
its target tasks is both behind (error above the geometric mean) and slow (its log error
has fallen ``LAG`` nats less than the mean since the first decision).

``error_power_aux_cap`` (``dim = 5``, per task ``(a_w, a_s, a_g, a_b, a_c)``):
``error_power``'s decision with each auxiliary's weighted error ``w_k E_k`` cut towards
the targets' level (the geometric mean of their ``w_t E_t``) with strength
``clip(mean a_c, 0, 1)``: 1 caps every auxiliary at that level, 0 is ``error_power``
exactly (:func:`curriculum_rl.controllers.auxiliary.cap_auxiliaries`). Unlike
``error_power_aux_beta_up``, which divides more scale out of every auxiliary, the cap
touches only auxiliaries whose load exceeds the targets' (raw-scale ones), so helpful
auxiliaries at the targets' scale keep their weight (``python -m
curriculum_rl.agents.switch_imitation --switch aux-cap`` fits one).
``error_power_aux_cap10`` caps at ten times the targets' level: only auxiliaries that
outweigh the targets by more than that are cut. ``error_power_gamma_up_aux_cap10``
(``dim = 6``, per task ``(a_w, a_s, a_g, a_b, a_h, a_c)``) puts the same cap on
``error_power_gamma_up``'s decision (the cap column of a v4 policy);
``error_power_gamma_ahead_up_aux_cap10`` on ``error_power_gamma_ahead_up``'s.
``error_power_gamma_progress_up`` (and its cap twin) applies the shift to each task's
progress ``E_k / E0_k`` instead of its error (``gamma`` up and ``beta`` down by as much):
weights follow how far each task has come, but a task's raw scale is divided out no
further than under ``error_power``, so a raw-scale task is not pushed below its scale's
share (where the plain shift pinned one; benchmarks/RESULTS.md §23b).
``error_power_gamma_up_aux_cap10_gate`` (``dim = 7``) adds the learned gate column to
v5's transform, acting on its capped decision (the v6 policy's transform: ``--switch
gate`` on v5).
``error_power_gamma_up_aux_cap10_lifted`` (the same columns) lifts each target task that
is behind and lagging: its weight times ``exp(lag)``, with ``lag`` the nats by which its
log error has fallen less than the run's mean since the first decision, never past the
uniform weight 1 (:func:`lift_slow_targets`).
``error_power_gamma_up_aux_cap10_startcap`` (the same columns) holds every auxiliary to the
targets' weight relative to starting scale: ``w_k E0_k`` above the geometric mean of the
targets' ``w_t E0_t`` is cut to it (:func:`cap_auxiliaries` with ``scale="start"``): an
auxiliary fitting to near-zero error no longer gains weight on the targets as it goes
(benchmarks/RESULTS.md §26g). ``error_power_gamma_up_aux_cap10_startcap_guarded`` applies
it only in runs whose targets still generalise (mean ``log(val loss / train loss)`` at most
``OVERFIT_GAP`` = log 2): a noisy target that overfits is let fall, as the base rule does.
``error_power_gamma_up_aux_cap10_aux_startcap`` (``dim = 7``) makes the start cap a column
of its own, with strength ``clip(mean a, 0, 1)``: 0 is v5's transform bit for bit, 1 the
always-on ``..._startcap``; ``--switch start-cap`` fits when to set it from labelled runs.
``error_power_gamma_up_aux_cap10_aux_startcap_fallback`` (``dim = 8``) adds a fallback
column to v7's transform: with strength ``s = clip(mean a, 0, 1)`` the weights and sampling
are ``(1 - s)`` times v7's decision plus ``s`` times ``scale-normalised-gs``'s (the centre
rule, auxiliaries gated by gradient similarity): 0 is v7 bit for bit, 1 the heuristic that
led the heuristics on most read tiers and won the attention-trunk suites v7 missed by most
(benchmarks/RESULTS.md §27c); ``--switch fallback`` fits when to fall back.
``error_power_gamma_up_aux_cap10_aux_startcap_auxdrop`` (``dim = 8``) adds instead a column
that drops the auxiliaries: at strength ``s`` each auxiliary's weight is ``(1 - s)`` times
v7's and its sampling moves that far to the floor; 1 trains the targets only, as tuned
static weights nearly do where auxiliaries hurt (§31); ``--switch aux-drop`` fits when.
``..._aux_startcap_auxregdrop`` drops only the regression auxiliaries (``--switch
aux-reg-drop``); it is v8's transform.
``..._aux_startcap_auxregdrop_iefallback`` (``dim = 9``) adds to v8's a fallback column
to ``inverse-error`` (``w_k ∝ 1 / E_k``, uniform sampling): the rule that follows each
task's current error fully and divides out none of its start scale; ``--switch
ie-fallback`` fits when to fall back (on the training problems its regime is small and
the run statistics do not read it: benchmarks/RESULTS.md §32d).
``..._aux_startcap_auxregdrop_gmfallback`` (``dim = 9``) falls back instead to
``geometric-mean``, a per-step rule no weights held for a decision can express: at
strength ``s`` the weights and sampling move ``s`` of the way to uniform and the loss
normalisation is ``alpha = s`` (:class:`~curriculum_rl.controllers.decision.Decision`),
so 1 trains along the gradient of the mean log loss, that heuristic's direction
(:func:`~curriculum_rl.controllers.decision.loss_normalised_decision`); ``--switch
gm-fallback`` fits when. ``..._aux_startcap_auxregdrop_gmtfallback`` (``dim = 9``) takes
that direction for the targets only: the auxiliaries keep the emphasis v8 gives them
relative to the targets (:func:`normalise_targets`), since the direction with every
auxiliary an equal lost most where an auxiliary was large or noisy (benchmarks/RESULTS.md
§34); ``--switch gmt-fallback`` fits when. ``..._aux_startcap_auxregdrop_gmsfallback``
(``dim = 9``) falls back to that direction with each auxiliary keeping its share of v8's
objective (:func:`objective_share_decision`; ``--switch gms-fallback``, §34e).
``..._aux_startcap_auxregdrop_gmcfallback`` (``dim = 9``) is ``..._gmfallback`` that cannot
act on a run with a regression auxiliary (:func:`no_regression_auxiliary`): there the
direction with every auxiliary an equal lost most (§34b, §34h); ``--switch gmc-fallback``.
``..._aux_startcap_auxregdrop_gmclatch`` (``dim = 9``) reads the same column as a latch
(:class:`LatchedFallbackTransform`): fully on from the first decision where its strength
reaches ``LATCH_AT`` to the end of the run. A policy fitted for ``..._gmcfallback`` runs
under it unchanged (same column, same fit), and so do its demonstrations, which hold the
switch at 1 for a whole run. ``..._aux_startcap_auxregdrop_gmcstart`` (``dim = 9``) reads
it at the first decision only (``start_only``): a latch that closed later, switching the
normalised direction on mid-run, lost on raw-scale runs (§36a).
``..._aux_startcap_auxregdrop_gmccont`` (``dim = 9``) is the latch with the objective's
scale held continuous at a mid-run close (``continuous``, §36d).
``..._aux_startcap_auxregdrop_tstartdown`` (``dim = 9``) lowers instead, for the targets
only, how much of their start scale v8's weights divide out (``TARGET_START_SHIFT`` at
strength 1; ``--switch target-start-down``, §34f).
``..._aux_startcap_auxregdrop_sqrtfallback`` (``dim = 9``) falls back to ``sqrt-loss``
(uniform weights and sampling, loss normalisation 1/2: the gradient of ``sum_k sqrt(L_k)``,
:mod:`curriculum_rl.controllers.normalised`), which won on most of v8's misses on the read
tiers without the geometric mean's collapses (§38); ``..._sqrtstart`` reads that column at
the first decision only (``--switch sqrt-fallback``). ``..._fourthfallback`` and
``..._fourthstart`` do the same with ``fourth-root-loss`` (normalisation 3/4, §39;
``--switch fourth-root-fallback``).
``..._sqrtstart_fourthgeo33`` and ``..._fourthgeo15`` (``dim = 9``, v9's columns) take
v9's decision at every decision and move each task's step coefficient 0.33 (0.15) of the way to
``fourth-root-loss``'s in log space (:class:`FourthRootMixTransform`, :func:`geometric_mix`):
a linear mix of the two lost to both (the weights of a raw task, which v9 makes tiny, are
lifted towards 1 while only part of its scale is normalised away); in log space a scale
that both divide out stays divided out (§40). ``..._fourthgeo33to15`` fades the strength
from 0.33 at a run's start to 0.15 at its end, linearly in the fraction of the budget used:
the mix's gain came early in a run and its cost late (§41; v11, shipped in §42).
``..._fourthgeo33up50to15`` raises it from 0.33 to 0.5 at half the budget, then lowers it to
0.15 (§43f; v12, shipped in §44); ``..._fourthgeo33up50at30-70to15`` holds the 0.5 from
30% to 70% of the budget (v13, shipped in §45).

For ``logits`` and ``loss_power``, an all-zero action is uniform weighting and sampling;
for the three ``error_*`` transforms it is the centre rule
(``ErrorPower(GAMMA_CENTRE, START_CENTRE)``, registered as ``scale-normalised``). For all
of them the sampling floor keeps every task above ``SAMPLING_FLOOR / K``, and padded
tasks get weight 0 and probability 0.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import replace

import torch

from curriculum_rl.controllers.auxiliary import (
    cap_auxiliaries,
    check_cap_scale,
    drop_auxiliaries,
    gate_auxiliaries,
    no_regression_auxiliary,
)
from curriculum_rl.controllers.base import Controller, DecisionState
from curriculum_rl.controllers.decision import (
    Decision,
    loss_normalised_decision,
    mean_one_weights,
    normalize_decision,
    scale_weights,
)
from curriculum_rl.controllers.hooks import masked_softmax
from curriculum_rl.controllers.inverse_error import error_power_weights, inverse_error, log_errors
from curriculum_rl.controllers.normalised import FourthRootLoss, SqrtLoss
from curriculum_rl.trainer.objective import EPS, floored_log
from curriculum_rl.trainer.signals import Signals

WEIGHT_SCALE = 5.0
OVERFIT_GAP = math.log(2.0)  # validation loss twice the training loss: the start cap's guard
SAMPLING_SCALE = 2.0
SAMPLING_FLOOR = 0.1
GAMMA_SCALE = 1.5
RESIDUAL_SCALE = 2.0
GAMMA_CENTRE = 0.5
START_CENTRE = 0.5
START_SCALE = 1.0
BETA_SHIFT = 0.3
TARGET_START_SHIFT = 1.0  # at full strength a target's weight no longer divides by its E0
GAMMA_SHIFT = 0.3
GAMMA_SHIFTS = ("gamma", "gamma_late", "gamma_ahead", "gamma_guarded", "gamma_progress")
LAG = 1.0  # log-error progress (nats) a task may trail the run's mean by before the guard acts
LATCH_AT = 0.5  # a latched switch's threshold: the fitted readout's "switching wins" side
# How far FourthRootMixTransform moves to fourth-root-loss: fixed (§40), or (start, end) (§41).
FOURTH_ROOT_MIXES = (0.33, 0.15)
FOURTH_ROOT_FADES = ((0.33, 0.15),)
# (start, peak, end, the span of the budget the peak holds): the strength that paid
# mid-run (§43f; v12 at half the budget, v13 from 30% to 70%, §45).
FOURTH_ROOT_HUMPS = ((0.33, 0.5, 0.15, (0.5, 0.5)), (0.33, 0.5, 0.15, (0.3, 0.7)))


def _sampling(a_s: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    k = mask.sum(1, keepdim=True).clamp_min(1).float()
    soft = masked_softmax(SAMPLING_SCALE * a_s, mask)
    return ((1 - SAMPLING_FLOOR) * soft + SAMPLING_FLOOR / k) * mask


def _clean(actions: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    actions = torch.as_tensor(actions, dtype=torch.float32, device=mask.device)
    if actions.dim() != 3 or actions.shape[:2] != mask.shape or actions.shape[2] != dim:
        raise ValueError(
            f"actions must have shape {(*mask.shape, dim)}, got {tuple(actions.shape)}"
        )
    return actions.nan_to_num(0.0).clamp(-1, 1)


class ActionTransform(ABC):
    """Maps actions (N, K, dim) to a :class:`Decision`."""

    name: str
    dim: int
    columns: tuple[str, ...]
    """What each of the ``dim`` numbers per task sets, in order."""
    uniform_centre: bool = True
    """Whether the all-zero action is uniform weighting and sampling."""

    @abstractmethod
    def decision(self, actions: torch.Tensor, signals: Signals) -> Decision:
        """The decision that ``actions`` (N, K, dim) in [-1, 1] mean for these runs."""

    @abstractmethod
    def constants(self) -> dict[str, float]:
        """The constants a policy file records (a policy is only valid with them)."""

    def column(self, actions: torch.Tensor, name: str) -> torch.Tensor:
        """(N, K) action numbers called ``name``; zeros (the centre) for a column this
        transform does not have."""
        if name in self.columns:
            return actions[..., self.columns.index(name)]
        return torch.zeros_like(actions[..., 0])


class Logits(ActionTransform):
    """Per-task weight and sampling logits (the module docstring's ``logits``)."""

    name, dim = "logits", 2
    columns = ("weight", "sampling")

    def decision(self, actions: torch.Tensor, signals: Signals) -> Decision:
        mask = signals.mask
        actions = _clean(actions, mask, self.dim)
        k = mask.sum(1, keepdim=True).clamp_min(1).float()
        weights = k * masked_softmax(WEIGHT_SCALE * self.column(actions, "weight"), mask)
        return Decision(weights, _sampling(self.column(actions, "sampling"), mask))

    def constants(self) -> dict[str, float]:
        return {
            "weight_scale": WEIGHT_SCALE,
            "sampling_scale": SAMPLING_SCALE,
            "sampling_floor": SAMPLING_FLOOR,
        }


class LossPower(ActionTransform):
    """Weights ``∝ E_k^-gamma`` times bounded residuals (the module docstring's
    ``loss_power``)."""

    name, dim = "loss_power", 3
    columns = ("weight", "sampling", "gamma")

    def decision(self, actions: torch.Tensor, signals: Signals) -> Decision:
        mask = signals.mask
        actions = _clean(actions, mask, self.dim)
        gamma = power(self.column(actions, "gamma"), mask)
        residual, sampling = (self.column(actions, c) for c in ("weight", "sampling"))
        return _error_power_decision(residual, sampling, signals, gamma, torch.zeros_like(gamma))

    def constants(self) -> dict[str, float]:
        return {
            "gamma_scale": GAMMA_SCALE,
            "residual_scale": RESIDUAL_SCALE,
            "sampling_scale": SAMPLING_SCALE,
            "sampling_floor": SAMPLING_FLOOR,
        }


class ScaledErrorPower(ActionTransform):
    """Weights ``∝ E_k^-gamma E0_k^-beta`` times bounded residuals, centred on the
    scale-normalising rule (the module docstring's ``error_power``). ``columns`` names the
    action numbers a policy sets; ``gamma`` and ``beta`` always, ``weight`` (the per-task
    residual) and ``sampling`` optionally: without them the residual is 0 and sampling is
    uniform, as a zero action would give (``error_power_weights``, ``error_exponents``)."""

    uniform_centre = False

    def __init__(self, name: str, columns: tuple[str, ...]) -> None:
        if not {"gamma", "beta"} <= set(columns) <= {"weight", "sampling", "gamma", "beta"}:
            raise ValueError(f"error-power columns must include gamma and beta, got {columns}")
        self.name, self.columns, self.dim = name, columns, len(columns)

    def decision(self, actions: torch.Tensor, signals: Signals) -> Decision:
        mask = signals.mask
        actions = _clean(actions, mask, self.dim)
        residual, sampling = (self.column(actions, c) for c in ("weight", "sampling"))
        return _error_power_decision(residual, sampling, signals, *self.exponents(actions, mask))

    def exponents(
        self, actions: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(N,) gamma and beta that clean actions (N, K, dim) in [-1, 1] choose."""
        gamma = GAMMA_CENTRE + power(self.column(actions, "gamma"), mask)
        beta = START_CENTRE + START_SCALE * _task_mean(self.column(actions, "beta"), mask)
        return gamma, beta

    def constants(self) -> dict[str, float]:
        return {
            "gamma_centre": GAMMA_CENTRE,
            "gamma_scale": GAMMA_SCALE,
            "start_centre": START_CENTRE,
            "start_scale": START_SCALE,
            "residual_scale": RESIDUAL_SCALE,
            "sampling_scale": SAMPLING_SCALE,
            "sampling_floor": SAMPLING_FLOOR,
        }


class GatedTransform(ActionTransform):
    """Another transform's decision with auxiliaries gated by their gradient's alignment
    with the targets' (the module docstring's ``error_power_gated``); with
    ``learned_strength``, one more action column sets how hard (``error_power_gate``)."""

    uniform_centre = False

    def __init__(self, base: ActionTransform, learned_strength: bool = False) -> None:
        self.base, self.learned_strength = base, learned_strength
        self.name = f"{base.name}_gate" if learned_strength else f"{base.name}_gated"
        self.columns = (*base.columns, "gate") if learned_strength else base.columns
        self.dim = len(self.columns)

    def decision(self, actions: torch.Tensor, signals: Signals) -> Decision:
        mask = signals.mask
        actions = _clean(actions, mask, self.dim)
        decision = self.base.decision(actions[..., : self.base.dim], signals)
        if not self.learned_strength:
            return gate_auxiliaries(decision, signals)
        strength = _strength(self.column(actions, "gate"), mask)[:, None]
        # cos^0 = 1 (0^0 included): strength 0 leaves the base decision as it is.
        return gate_auxiliaries(decision, signals, lambda cos: cos.clamp_min(0).pow(strength))

    def constants(self) -> dict[str, float]:
        key = "auxiliary_gate_learned" if self.learned_strength else "auxiliary_gate"
        return {**self.base.constants(), key: 1.0}


class ShiftedTransform(ActionTransform):
    """An ``error_*`` transform with one more action column that moves ``beta`` by
    ``direction * BETA_SHIFT * clip(mean a_h, 0, 1)``, for every task or for the
    auxiliary tasks only (the module docstring's ``error_power_beta_up``,
    ``error_power_beta_down``, ``error_power_aux_beta_up``), or ``gamma`` by
    ``direction * GAMMA_SHIFT * clip(mean a_h, 0, 1)`` (``error_power_gamma_up``)."""

    uniform_centre = False

    def __init__(
        self,
        base: ScaledErrorPower,
        direction: int,
        auxiliaries_only: bool = False,
        exponent: str = "beta",
    ) -> None:
        if direction not in (1, -1):
            raise ValueError(f"direction must be 1 (up) or -1 (down), got {direction}")
        if exponent not in ("beta", *GAMMA_SHIFTS) or (auxiliaries_only and exponent != "beta"):
            raise ValueError(
                f"shift beta (for all or auxiliaries) or one of {GAMMA_SHIFTS}, got {exponent}"
            )
        self.base, self.direction, self.auxiliaries_only = base, direction, auxiliaries_only
        self.exponent = exponent
        which = "aux_beta" if auxiliaries_only else exponent
        self.name = f"{base.name}_{which}_{'up' if direction > 0 else 'down'}"
        self.columns = (*base.columns, "shift")
        self.dim = len(self.columns)

    def decision(self, actions: torch.Tensor, signals: Signals) -> Decision:
        mask = signals.mask
        actions = _clean(actions, mask, self.dim)
        gamma, beta = self.base.exponents(actions[..., : self.base.dim], mask)
        strength = _strength(self.column(actions, "shift"), mask)
        shift = self.direction * self._size * strength
        extra = None
        if self.exponent == "gamma":
            gamma = gamma + shift
        elif self.exponent == "gamma_late":  # ramped in over the run: early decisions unshifted
            gamma = gamma + shift * signals.progress.clamp(0, 1)
        elif self.exponent == "gamma_guarded":
            gamma = gamma + shift * (~_trapped(signals)).float()
        elif self.exponent == "gamma_ahead":
            extra = _ahead_boost(signals, shift)
        elif self.exponent == "gamma_progress":  # on E / E0: gamma up, beta down as much
            gamma, beta = gamma + shift, beta - shift
        elif self.auxiliaries_only:  # per task: the targets keep the policy's beta
            beta = beta[:, None] + shift[:, None] * (~signals.objective).float()
        else:
            beta = beta + shift
        residual, sampling = (self.column(actions, c) for c in ("weight", "sampling"))
        return _error_power_decision(residual, sampling, signals, gamma, beta, extra)

    @property
    def _size(self) -> float:
        return BETA_SHIFT if self.exponent == "beta" else GAMMA_SHIFT

    def constants(self) -> dict[str, float]:
        return {**self.base.constants(), f"{self.exponent}_shift": self.direction * self._size}


def _centred(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N, K) ``values`` minus their mean over each run's valid tasks."""
    return values - _task_mean(values, mask)[:, None]


def _behind_and_lag(signals: Signals) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, K) whether each valid target task is behind (error above the run's geometric
    mean, so a larger gamma lowers its weight), and (N, K) its lag: how many nats less its
    log error has fallen since the first decision than the valid tasks' mean (< 0: faster)."""
    mask = signals.mask
    behind = _centred(log_errors(signals), mask) > 0
    lag = _centred(signals.log_error_ratio.nan_to_num(0.0, 0.0, 0.0), mask)
    return behind & mask & signals.objective, lag


def _trapped(signals: Signals) -> torch.Tensor:
    """(N,) whether a run has a target task that is both behind and slow (lagging by more
    than ``LAG`` nats): the slow trap in which raising gamma keeps such a task's weight
    pinned low."""
    behind, lag = _behind_and_lag(signals)
    return (behind & (lag > LAG)).any(1)


def _ahead_boost(signals: Signals, shift: torch.Tensor) -> torch.Tensor:
    """(N, K) logits ``-shift * min(log E_k - mean log E, 0)``: ``gamma`` raised by ``shift``
    for the tasks whose error is below the run's geometric mean, none for the others, so
    a task that is behind keeps its weight relative to the rest of the behind tasks."""
    centred = _centred(log_errors(signals), signals.mask)
    return -shift[:, None] * centred.clamp_max(0) * signals.mask.float()


class CappedTransform(ActionTransform):
    """Another transform with one more action column, the strength ``clip(mean a_c, 0, 1)``
    of the auxiliary cap at ``headroom`` times the targets' level (the module docstring's
    ``error_power_aux_cap``, ``error_power_aux_cap10``, ``error_power_gamma_up_aux_cap10``),
    the load measured at ``scale`` (:func:`cap_auxiliaries`; ``"start"``: the
    ``..._aux_startcap`` twins). The cap acts on the base's decision, so it composes with
    any base, switches included."""

    uniform_centre = False

    def __init__(
        self, base: ActionTransform, headroom: float = 1.0, scale: str = "current"
    ) -> None:
        if headroom < 1:
            raise ValueError(f"headroom must be >= 1 (1: the targets' level), got {headroom}")
        check_cap_scale(scale)  # at construction, not at the first decision
        self.base, self.headroom, self.scale = base, float(headroom), scale
        self.cap = "startcap" if scale == "start" else "cap"  # its column's name
        self.name = f"{base.name}_aux_{self.cap}" + ("" if headroom == 1 else f"{headroom:g}")
        self.columns = (*base.columns, self.cap)
        self.dim = len(self.columns)

    def decision(self, actions: torch.Tensor, signals: Signals) -> Decision:
        mask = signals.mask
        actions = _clean(actions, mask, self.dim)
        decision = self.base.decision(actions[..., : self.base.dim], signals)
        strength = _strength(self.column(actions, self.cap), mask)
        return cap_auxiliaries(decision, signals, strength, self.headroom, self.scale)

    def constants(self) -> dict[str, float]:
        name = "auxiliary_start_cap" if self.scale == "start" else "auxiliary_cap"
        return {**self.base.constants(), name: self.headroom}


class SwitchColumnTransform(ActionTransform):
    """Another transform with one more action column, ``column``, whose strength
    ``s = clip(mean a, 0, 1)`` sets how far the base decision is changed by
    :meth:`switched`; at 0 in every run the base decision bit for bit. Subclasses name
    the column and the change."""

    uniform_centre = False
    column_name: str

    def __init__(self, base: ActionTransform, name: str) -> None:
        self.base, self.name = base, name
        self.columns = (*base.columns, self.column_name)
        self.dim = len(self.columns)

    def decision(self, actions: torch.Tensor, signals: Signals) -> Decision:
        actions = _clean(actions, signals.mask, self.dim)
        decision = self.base.decision(actions[..., : self.base.dim], signals)
        strength = self.strength(actions, signals)
        if not strength.any():
            return decision
        return self.switched(decision, strength, signals)

    def strength(self, actions: torch.Tensor, signals: Signals) -> torch.Tensor:
        """(N,) the switch's strength per run, from the (cleaned) ``actions``."""
        return _strength(self.column(actions, self.column_name), signals.mask)

    @abstractmethod
    def switched(self, decision: Decision, strength: torch.Tensor, signals: Signals) -> Decision:
        """The base ``decision`` changed at ``strength`` (N,)."""


class FallbackTransform(SwitchColumnTransform):
    """A switch column (:class:`SwitchColumnTransform`) for a fallback to a heuristic:
    weights and sampling are the linear mix ``(1 - s) base + s heuristic`` (both mean-one
    weights and distributions, so the mix is one too; linear, not geometric, because a
    heuristic can set a weight to 0). ``decide`` is the heuristic's decision on the
    signals, ``heuristic`` its registered name; the loss normalisation mixes the same way.
    ``acts``, if given, says per run (N,) where the column may act: elsewhere the strength
    is 0 and the run keeps the base decision bit for bit. The module docstring's
    ``..._fallback``, ``..._iefallback``, ``..._gmfallback`` and ``..._gmcfallback``."""

    column_name = "fallback"

    def __init__(
        self,
        base: ActionTransform,
        heuristic: str,
        decide: Callable[[Signals], Decision],
        suffix: str = "fallback",
        acts: Callable[[Signals], torch.Tensor] | None = None,
    ) -> None:
        super().__init__(base, f"{base.name}_{suffix}")
        self.heuristic, self.decide, self.acts = heuristic, decide, acts

    def switched(self, decision: Decision, strength: torch.Tensor, signals: Signals) -> Decision:
        if self.acts is None:
            return mixed(decision, self.decide(signals), strength)
        acting = self.acts(signals)
        if not (acting & (strength > 0)).any():
            return decision
        moved = mixed(decision, self.decide(signals), torch.where(acting, strength, 0.0))
        return moved.where(acting, decision)

    def constants(self) -> dict[str, float]:
        constants = {**self.base.constants(), f"fallback_{self.heuristic.replace('-', '_')}": 1.0}
        if self.acts is not None:
            constants[f"fallback_only_{self.acts.__name__}"] = 1.0
        return constants


class LatchedFallbackTransform(FallbackTransform):
    """A :class:`FallbackTransform` whose switch is binary and latched: fully on from the
    first decision where the column's strength reaches ``LATCH_AT``, and at every later
    one (read from the previous decision's loss normalisation, 1 where the fallback was
    on), otherwise the base decision bit for bit. For a fallback to ``geometric-mean``'s
    direction: a single interval part of the way there (``alpha < 1``) wrecked runs with
    a raw-scale loss, likely through Adam's second moments (RESULTS §35c), while the
    demonstrations that fit the switch hold it on for a whole run. The module
    docstring's ``..._gmclatch``.

    ``start_only`` closes the latch at the first decision or never: a run's switch is
    read once, before any training, and holds for the run (``..._gmcstart``). On a
    raw-scale run, switching the normalised direction on mid-run lost as a dip did
    (RESULTS §36a). ``continuous`` keeps such a close and removes the jump instead
    (``..._gmccont``): at a close after the first decision the decision's ``scale`` makes
    the objective's value what it was (``sum_k w_prev,k L_k`` over ``sum_k w_k``, ``L`` the
    interval's training losses), and later decisions carry it. Held that way, the
    mid-run closes' loss on 16 raw-scale runs went from -0.63 to -0.02 (§36d)."""

    def __init__(
        self,
        base: ActionTransform,
        heuristic: str,
        decide: Callable[[Signals], Decision],
        suffix: str,
        acts: Callable[[Signals], torch.Tensor] | None = None,
        start_only: bool = False,
        continuous: bool = False,
    ) -> None:
        super().__init__(base, heuristic, decide, suffix, acts)
        self.start_only, self.continuous = start_only, continuous

    def decision(self, actions: torch.Tensor, signals: Signals) -> Decision:
        decision = super().decision(actions, signals)
        if not self.continuous or not isinstance(signals, DecisionState):
            return decision
        return replace(decision, scale=held_scale(decision, signals))

    def strength(self, actions: torch.Tensor, signals: Signals) -> torch.Tensor:
        on = super().strength(actions, signals) >= LATCH_AT
        if self.start_only:
            # a run's first decision: at step 0 in the benchmark and the environments,
            # after the first interval in a user's loop (Signals counts this one)
            on = on & (signals.decisions == 1)
        if isinstance(signals, DecisionState):  # on before: the fallback's normalisation
            on = on | (signals.previous.normalisation >= self.decide(signals).normalisation)
        return on.float()

    def constants(self) -> dict[str, float]:
        constants = {**super().constants(), "fallback_latch_at": LATCH_AT}
        if self.start_only:
            constants["fallback_latch_start_only"] = 1.0
        if self.continuous:
            constants["fallback_latch_continuous"] = 1.0
        return constants


def geometric_mix(
    decision: Decision, toward: Decision, strength: float | torch.Tensor, mask: torch.Tensor
) -> Decision:
    """``decision`` moved ``strength`` (a number, or (N,) per run) of the way to ``toward``
    in log space: weights and sampling ``w^(1 - s) v^s`` (rescaled to mean one and to sum
    one over ``mask``'s tasks), loss normalisation and scale linear. A task's step
    coefficient ``w_k / L_k^alpha`` is then the geometric interpolation of the two
    decisions' coefficients; a weight of 0 stays 0 (:class:`FourthRootMixTransform`)."""
    per_task = strength[:, None] if isinstance(strength, torch.Tensor) else strength

    def blend(ours: torch.Tensor, theirs: torch.Tensor) -> torch.Tensor:
        return ours.clamp_min(0).pow(1 - per_task) * theirs.clamp_min(0).pow(per_task)

    moved = normalize_decision(
        blend(decision.weights, toward.weights), blend(decision.sampling, toward.sampling), mask
    )
    return replace(
        moved,
        normalisation=torch.lerp(decision.normalisation, toward.normalisation, strength),
        scale=torch.lerp(decision.scale, toward.scale, strength),
    )


def held_scale(decision: Decision, state: DecisionState) -> torch.Tensor:
    """(N,) the objective scale that keeps a run's objective continuous where
    ``decision`` turns the loss normalisation on after its first decision: the previous
    decision's objective value at the interval's training losses over the new one's (each
    normalised loss counts 1); where it was on already, the previous scale; else 1, and
    also where a loss is not finite (a diverged run: the trainer refuses such a scale)."""
    previous, mask = state.previous, state.mask
    was_on, on = previous.normalisation >= 1, decision.normalisation >= 1
    closing = on & ~was_on & (state.decisions > 1)
    losses = state.train_loss.clamp_min(EPS) * mask
    before = previous.scale * (previous.weights * losses).sum(1)
    after = (decision.weights * mask).sum(1).clamp_min(EPS)
    carried = torch.where(was_on & on, previous.scale, torch.ones_like(previous.scale))
    return torch.where(closing & torch.isfinite(before), before / after, carried)


def mixed(decision: Decision, fallback: Decision, strength: torch.Tensor) -> Decision:
    """The linear mix ``(1 - s) decision + s fallback`` of weights, sampling, loss
    normalisation and scale, ``s`` = ``strength`` (N,) per run (:class:`FallbackTransform`)."""
    s = strength[:, None]
    return Decision(
        torch.lerp(decision.weights, fallback.weights, s),
        torch.lerp(decision.sampling, fallback.sampling, s),
        torch.lerp(decision.normalisation, fallback.normalisation, strength),
        torch.lerp(decision.scale, fallback.scale, strength),
    )


class ShareFallbackTransform(SwitchColumnTransform):
    """A switch column (:class:`SwitchColumnTransform`) mixing the base decision, as
    :class:`FallbackTransform` does, with :func:`objective_share_decision` of it:
    ``geometric-mean``'s direction, each auxiliary keeping the share of the objective the
    base gives it. The module docstring's ``..._gmsfallback``."""

    column_name = "fallback"

    def __init__(self, base: ActionTransform) -> None:
        super().__init__(base, f"{base.name}_gmsfallback")

    def switched(self, decision: Decision, strength: torch.Tensor, signals: Signals) -> Decision:
        return mixed(decision, objective_share_decision(decision, signals), strength)

    def constants(self) -> dict[str, float]:
        return {**self.base.constants(), "fallback_geometric_mean_shares": 1.0}


def geometric_mean_direction(signals: Signals) -> Decision:
    """``geometric-mean``'s step direction as a decision (uniform weights and sampling,
    loss normalisation 1): the fallback of ``..._gmfallback``."""
    return loss_normalised_decision(signals.mask)


def normalise_targets(decision: Decision, signals: Signals, strength: torch.Tensor) -> Decision:
    """``decision`` moved ``strength`` (N,) of the way to ``geometric-mean``'s direction on
    the targets, the auxiliaries keeping the emphasis ``decision`` gives them relative to
    the targets (benchmarks/RESULTS.md §34: that direction with every auxiliary an equal
    lost most where an auxiliary was large or noisy).

    The loss normalisation is ``alpha = s``, so task ``k``'s step coefficient is
    ``w_k / L_k^s``. The targets' weights move ``s`` of the way to their geometric mean (so
    at 1 each target's coefficient is ``c / L_t``); each auxiliary's weight is multiplied by
    ``(L_a / G_t L_t)^s`` (``G_t``: geometric mean over the targets of the latest training
    losses), so at 1 its coefficient relative to the targets' geometric mean is the base
    decision's ``w_a / G_t w_t``. Sampling moves the targets' shares ``s`` of the way to an
    equal split of what the auxiliaries leave. In a run without auxiliaries, strength 1 is
    :func:`geometric_mean_direction`; runs at strength 0 keep ``decision`` bit for bit.
    """
    mask, targets = signals.mask, signals.mask & signals.objective
    auxiliary = mask & ~signals.objective
    s = strength[:, None]
    log_loss = floored_log(signals.train_loss)
    log_w = floored_log(decision.weights)
    level_loss = _task_mean(log_loss, targets)[:, None]
    level_w = _task_mean(log_w, targets)[:, None]
    weights = torch.where(
        targets,
        torch.lerp(decision.weights, level_w.exp().expand_as(decision.weights), s),
        decision.weights * (s * (log_loss - level_loss)).exp(),
    )
    target_share = _targets_split(decision.sampling, targets, auxiliary)
    sampling = torch.where(
        targets, torch.lerp(decision.sampling, target_share, s), decision.sampling
    )
    moved = normalize_decision(weights, sampling, mask)
    moved = replace(moved, normalisation=strength, scale=decision.scale)
    return moved.where(strength > 0, decision)  # the other runs keep it bit for bit


def objective_share_decision(decision: Decision, signals: Signals) -> Decision:
    """``geometric-mean``'s direction (loss normalisation 1) with each auxiliary keeping
    the share of the objective ``decision`` gives it, ``w_a L_a / sum_k w_k L_k`` (``L``:
    the latest training losses), and the targets splitting the rest equally. Under loss
    normalisation 1 a task's weight is its share of the step (its loss term is ``w``), so
    the weights are those shares, rescaled to mean 1. Sampling: the auxiliaries keep
    theirs and the targets split the rest equally. Without auxiliaries this is
    :func:`geometric_mean_direction`. (The direct reading of the base's emphasis, where
    :func:`normalise_targets` measures it against the targets' geometric-mean weight; both
    inherit a base's starvation of a start-scaled raw target: RESULTS §34d–e.)"""
    mask, targets = signals.mask, signals.mask & signals.objective
    auxiliary = mask & ~signals.objective
    terms = (decision.weights * signals.train_loss).nan_to_num(0.0, 0.0, 0.0).clamp_min(0)
    terms = terms * mask
    aux_share = terms / terms.sum(1, keepdim=True).clamp_min(EPS)
    share = torch.where(targets, _targets_split(aux_share, targets, auxiliary), aux_share)
    target_sampling = _targets_split(decision.sampling, targets, auxiliary)
    sampling = torch.where(targets, target_sampling, decision.sampling)
    return Decision(
        mean_one_weights(share, mask),
        sampling * mask,
        torch.ones_like(decision.normalisation),
    )


def _targets_split(
    shares: torch.Tensor, targets: torch.Tensor, auxiliary: torch.Tensor
) -> torch.Tensor:
    """(N, 1) each target's equal part of what the auxiliaries' ``shares`` (N, K) leave
    of 1."""
    left = 1 - (shares * auxiliary).sum(1, keepdim=True)
    return left / targets.sum(1, keepdim=True).clamp_min(1)


class TargetNormalisingTransform(SwitchColumnTransform):
    """A switch column (:class:`SwitchColumnTransform`) towards ``geometric-mean``'s
    direction on the targets only, the auxiliaries keeping the base decision's emphasis
    (:func:`normalise_targets`). The module docstring's ``..._gmtfallback``."""

    column_name = "fallback"

    def __init__(self, base: ActionTransform) -> None:
        super().__init__(base, f"{base.name}_gmtfallback")

    def switched(self, decision: Decision, strength: torch.Tensor, signals: Signals) -> Decision:
        return normalise_targets(decision, signals, strength)

    def constants(self) -> dict[str, float]:
        return {**self.base.constants(), "fallback_geometric_mean_targets": 1.0}


class TargetStartTransform(SwitchColumnTransform):
    """A switch column (:class:`SwitchColumnTransform`) that lowers, for the targets only,
    how much of its start scale a weight divides out: at strength ``s`` each target's
    weight is times ``E0_t^(s TARGET_START_SHIFT)`` and the weights are rescaled to mean 1,
    which is the base rule's ``E0^-beta`` with ``beta`` lowered by ``s TARGET_START_SHIFT``
    for the targets (in the same units as the base divides by). v8's ``E0^-beta`` keeps a
    raw target that started far from zero down for the whole run, below the auxiliaries
    (benchmarks/RESULTS.md §32a, §34d). The module docstring's ``..._tstartdown``."""

    column_name = "tstartdown"

    def __init__(self, base: ActionTransform) -> None:
        super().__init__(base, f"{base.name}_tstartdown")

    def switched(self, decision: Decision, strength: torch.Tensor, signals: Signals) -> Decision:
        targets = signals.mask & signals.objective
        log_start = signals.log_error_start.nan_to_num(0.0, 0.0, 0.0)
        shift = strength[:, None] * TARGET_START_SHIFT * log_start
        factor = torch.where(targets, shift.exp(), torch.ones_like(shift))
        return scale_weights(decision, signals.mask, factor)

    def constants(self) -> dict[str, float]:
        return {**self.base.constants(), "target_start_shift": TARGET_START_SHIFT}


def gated_centre(centre: ScaledErrorPower) -> Callable[[Signals], Decision]:
    """``scale-normalised-gs``'s decision: ``centre``'s zero action (an ``error_*``
    transform's centre rule, ``scale-normalised``) with the auxiliaries gated."""

    def decide(signals: Signals) -> Decision:
        zero = torch.zeros(*signals.mask.shape, centre.dim, device=signals.mask.device)
        return gate_auxiliaries(centre.decision(zero, signals), signals)

    return decide


class AuxiliaryDropTransform(SwitchColumnTransform):
    """A switch column (:class:`SwitchColumnTransform`) that drops the auxiliaries
    (:func:`drop_auxiliaries`, sampling floor ``SAMPLING_FLOOR``): 1 trains the targets
    only (with ``regression_only``, the targets and the classification and tagging
    auxiliaries). The module docstring's ``..._auxdrop`` and ``..._auxregdrop``."""

    column_name = "auxdrop"

    def __init__(self, base: ActionTransform, regression_only: bool = False) -> None:
        super().__init__(base, f"{base.name}_aux{'reg' if regression_only else ''}drop")
        self.regression_only = regression_only

    def switched(self, decision: Decision, strength: torch.Tensor, signals: Signals) -> Decision:
        return drop_auxiliaries(decision, signals, strength, SAMPLING_FLOOR, self.regression_only)

    def constants(self) -> dict[str, float]:
        name = "regression_auxiliary_drop" if self.regression_only else "auxiliary_drop"
        return {**self.base.constants(), name: 1.0}


class AlwaysOnTransform(ActionTransform):
    """Another transform's decision, adjusted by a fixed rule after it: no action column,
    so a network trained for the base runs under it unchanged. Subclasses name the rule
    (``suffix``, and ``constant``, recorded in a policy file's metadata) and apply it."""

    uniform_centre = False
    suffix: str
    constant: str

    def __init__(self, base: ActionTransform) -> None:
        self.base, self.name = base, f"{base.name}_{self.suffix}"
        self.columns, self.dim = base.columns, base.dim

    def decision(self, actions: torch.Tensor, signals: Signals) -> Decision:
        return self.adjust(self.base.decision(actions, signals), signals)

    @abstractmethod
    def adjust(self, decision: Decision, signals: Signals) -> Decision:
        """The base ``decision`` after this transform's rule."""

    def constants(self) -> dict[str, float]:
        return {**self.base.constants(), self.constant: 1.0}


class FourthRootMixTransform(AlwaysOnTransform):
    """Its base's decision moved ``strength`` of the way to ``fourth-root-loss``'s (uniform
    weights and sampling, loss normalisation 3/4) in log space, at every decision
    (:func:`geometric_mix`; the module docstring's ``..._fourthgeo33`` and
    ``..._fourthgeo15``, for ``strength`` 0.33 and 0.15). On the 62 read-tier suites the
    mix led v8, v9 and the heuristic run by run (RESULTS §40). With ``end``, the strength
    fades linearly with the fraction of the budget used, from ``strength`` at the start
    to ``end`` at the end (``..._fourthgeo33to15``, v11's): the mix paid early
    in a run and cost late, when it amplifies the gradients of losses near zero (RESULTS
    §41-42). With ``peak`` too, it rises from ``strength`` to ``peak`` at half the budget,
    then falls to ``end`` (``..._fourthgeo33up50to15``, v12's): the gain rose with the
    strength at mid-run across schedules (RESULTS §43d, §43f, §44). ``held`` spreads the
    peak over a span of the budget, ``(0.3, 0.7)`` in ``..._fourthgeo33up50at30-70to15``
    (v13's): it led the single peak on the read tiers and in validation, and tied it on
    a fresh tier (RESULTS §45).

    Under v9's start latch (``..._sqrtstart``), which reads the previous decision's
    normalisation, a run left off trains at ``3/4 s``, below the latch's 1/2 for any
    ``s < 2/3``, so it stays off; a run switched on trains at ``1/2 + s/4`` and stays on."""

    constant = "fourth_root_geometric_mix"

    def __init__(
        self,
        base: ActionTransform,
        strength: float,
        end: float | None = None,
        peak: float | None = None,
        held: tuple[float, float] = (0.5, 0.5),
    ) -> None:
        if peak is not None and end is None:
            raise ValueError("a peak needs an end strength: give end too")
        if not 0 < held[0] <= held[1] < 1:
            raise ValueError(f"held must be a span 0 < from <= until < 1 of the budget, got {held}")
        if held != (0.5, 0.5) and peak is None:
            raise ValueError("held spreads a peak over the budget: give peak too")
        for value in (strength, end, peak):
            if value is not None and not 0 < value < 2 / 3:
                raise ValueError(f"strength must be in (0, 2/3) for v9's latch, got {value}")
        self.suffix = f"fourthgeo{round(100 * strength)}"
        if peak is not None:
            self.suffix += f"up{round(100 * peak)}"
        if held != (0.5, 0.5):
            self.suffix += f"at{round(100 * held[0])}-{round(100 * held[1])}"
        if end is not None:
            self.suffix += f"to{round(100 * end)}"
        super().__init__(base)
        self.strength, self.end, self.peak, self.held = strength, end, peak, held
        self.root = FourthRootLoss()

    def strength_at(self, progress: torch.Tensor) -> torch.Tensor | float:
        """The mix's strength at ``progress``, the fraction of the budget used (per run):
        fixed, linear from ``strength`` to ``end``, or with a ``peak`` linear from
        ``strength`` to ``peak`` at ``held[0]`` of the budget, ``peak`` until ``held[1]``
        and linear from there to ``end``."""
        if self.end is None:
            return self.strength
        p = progress.clamp(0, 1)
        if self.peak is None:
            return self.strength - (self.strength - self.end) * p
        (start, until), peak = self.held, self.peak
        rising = self.strength + (peak - self.strength) * (p / start)
        falling = peak - (peak - self.end) * ((p - until) / (1 - until))
        return torch.where(p <= start, rising, torch.where(p <= until, peak, falling))

    def adjust(self, decision: Decision, signals: Signals) -> Decision:
        strength = self.strength_at(signals.progress)
        return geometric_mix(decision, self.root.decide(signals), strength, signals.mask)

    def constants(self) -> dict[str, float]:
        constants = {**self.base.constants(), self.constant: self.strength}
        if self.end is not None:
            constants["fourth_root_geometric_mix_end"] = self.end
        if self.peak is not None:
            constants["fourth_root_geometric_mix_peak"] = self.peak
        if self.held != (0.5, 0.5):
            constants["fourth_root_geometric_mix_held_from"] = self.held[0]
            constants["fourth_root_geometric_mix_held_until"] = self.held[1]
        return constants


class LiftedTransform(AlwaysOnTransform):
    """Every target task that is behind and lagging lifted (the module docstring's
    ``error_power_gamma_up_aux_cap10_lifted``): its weight times ``exp(lag)``, at most up
    to the uniform weight 1 (a weight already above 1 is left as it is), then all rescaled
    to mean 1; the base decision bit for bit in a run where no target is lifted."""

    suffix, constant = "lifted", "slow_target_lift"

    def adjust(self, decision: Decision, signals: Signals) -> Decision:
        return replace(decision, weights=lift_slow_targets(decision.weights, signals))


class StartCappedTransform(AlwaysOnTransform):
    """Each auxiliary's weight relative to its starting scale, ``w_k E0_k``, cut to the
    targets' level (:func:`cap_auxiliaries` with ``scale="start"``, headroom 1; the module
    docstring's ``error_power_gamma_up_aux_cap10_startcap``); the base decision bit for
    bit in a run where no auxiliary is above that level."""

    suffix, constant = "startcap", "auxiliary_start_cap"

    def adjust(self, decision: Decision, signals: Signals) -> Decision:
        full = torch.ones(signals.num_runs, device=decision.weights.device)
        return cap_auxiliaries(decision, signals, full, headroom=1.0, scale="start")


class GuardedStartCapTransform(StartCappedTransform):
    """The start cap, on in a run only while its targets generalise: their mean
    ``log(val loss / train loss)`` is at most ``OVERFIT_GAP``; otherwise the base decision
    (the module docstring's ``error_power_gamma_up_aux_cap10_startcap_guarded``). Where a
    noisy target on few examples overfits, a rule that follows its error lowers its weight
    like early stopping, and holding it up hurts (benchmarks/RESULTS.md §26g). Measured on
    v5's network: passed validation, lost test tier L, where a noisy regression target
    beside near-zero auxiliaries needed v5's starving and the guard did not fire (§26h–i)."""

    suffix, constant = "startcap_guarded", "auxiliary_start_cap_overfit_gap"

    def adjust(self, decision: Decision, signals: Signals) -> Decision:
        capped = super().adjust(decision, signals)
        on = (target_generalisation_gap(signals) <= OVERFIT_GAP)[:, None]
        return replace(decision, weights=torch.where(on, capped.weights, decision.weights))

    def constants(self) -> dict[str, float]:
        return {**self.base.constants(), self.constant: OVERFIT_GAP}


def target_generalisation_gap(signals: Signals) -> torch.Tensor:
    """(N,) mean over each run's target tasks of ``log(val loss / train loss)``: how far
    the targets' validation loss has drawn above their training loss (0 with no targets)."""
    gap = floored_log(signals.val_loss) - floored_log(signals.train_loss)
    return _task_mean(gap, signals.mask & signals.objective)


def lift_slow_targets(weights: torch.Tensor, signals: Signals) -> torch.Tensor:
    """(N, K) ``weights`` (mean 1 over valid tasks) with each target task that is behind
    and lags the run's mean progress by ``lag > 0`` nats raised to ``min(w exp(lag),
    max(w, 1))``, then rescaled to mean 1; runs with no such task unchanged, bit for bit.
    Lifting by the lag, not removing a shift, counters the slow trap where it forms: a
    raw-scale target whose small weight keeps it slow, and whose slowness keeps its
    weight small (benchmarks/RESULTS.md §23b, §23g)."""
    behind, lag = _behind_and_lag(signals)
    lifted = behind & (lag > 0)
    raised = torch.minimum(weights * lag.clamp_min(0).exp(), weights.clamp_min(1.0))
    new = mean_one_weights(torch.where(lifted, raised, weights), signals.mask)
    return torch.where(lifted.any(1, keepdim=True), new, weights)


def _error_power_decision(
    residual: torch.Tensor,
    sampling: torch.Tensor,
    signals: Signals,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    extra: torch.Tensor | None = None,
) -> Decision:
    """:func:`error_power_weights` with the bounded residual ``RESIDUAL_SCALE * residual``
    (plus ``extra`` (N, K) logits, if any), sampling from its (N, K) action column;
    ``gamma`` is (N,), ``beta`` (N,) or (N, K)."""
    logits = RESIDUAL_SCALE * residual if extra is None else RESIDUAL_SCALE * residual + extra
    weights = error_power_weights(signals, gamma, beta, logits)
    return Decision(weights, _sampling(sampling, signals.mask))


def _task_mean(column: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N,) mean of one per-task column (an action's, a signal's) over the tasks in
    ``mask`` (order-invariant; 0 where a run has none)."""
    valid = mask.float()
    return (column * valid).sum(1) / valid.sum(1).clamp_min(1)


def _strength(column: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N,) strength ``clip(mean a, 0, 1)`` of an extra column (gate, shift, cap): 0 is the
    base transform's decision exactly, 1 the full change."""
    return _task_mean(column, mask).clamp(0, 1)


def power(column: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N,) gamma offset from a (N, K) ``gamma`` action column: its mean over valid tasks
    (a mean, so it is invariant to the order of the tasks), scaled by ``GAMMA_SCALE``."""
    return GAMMA_SCALE * _task_mean(column, mask)


_ERROR_POWER = ScaledErrorPower("error_power", ("weight", "sampling", "gamma", "beta"))
_GAMMA_UP = ShiftedTransform(_ERROR_POWER, 1, exponent="gamma")  # the v4 policy's transform
_GAMMA_AHEAD = ShiftedTransform(_ERROR_POWER, 1, exponent="gamma_ahead")
_GAMMA_LATE = ShiftedTransform(_ERROR_POWER, 1, exponent="gamma_late")
_GAMMA_GUARDED = ShiftedTransform(_ERROR_POWER, 1, exponent="gamma_guarded")
_GAMMA_PROGRESS = ShiftedTransform(_ERROR_POWER, 1, exponent="gamma_progress")
_GAMMA_UP_CAP10 = CappedTransform(_GAMMA_UP, headroom=10.0)  # the v5 policy's transform
_V7 = CappedTransform(_GAMMA_UP_CAP10, scale="start")  # the v7 policy's transform
_V8 = AuxiliaryDropTransform(_V7, regression_only=True)  # the v8 policy's transform


def _root_loss_fallbacks(root: Controller, tag: str) -> tuple[ActionTransform, ...]:
    """v8's fallback to the root loss ``root`` (``..._{tag}fallback``) and that column read
    at a run's first decision only (``..._{tag}start``)."""
    return (
        FallbackTransform(_V8, root.name, root.decide, f"{tag}fallback"),
        LatchedFallbackTransform(_V8, root.name, root.decide, f"{tag}start", start_only=True),
    )


_SQRT_FALLBACKS = _root_loss_fallbacks(SqrtLoss(), "sqrt")
_V9 = _SQRT_FALLBACKS[1]  # the v9 policy's transform: v8's sqrt-loss switch, start latch

TRANSFORMS: dict[str, ActionTransform] = {
    t.name: t
    for t in (
        Logits(),
        LossPower(),
        _ERROR_POWER,
        ScaledErrorPower("error_power_weights", ("weight", "gamma", "beta")),
        ScaledErrorPower("error_exponents", ("gamma", "beta")),
        GatedTransform(_ERROR_POWER),
        GatedTransform(_ERROR_POWER, learned_strength=True),
        ShiftedTransform(_ERROR_POWER, 1),
        ShiftedTransform(_ERROR_POWER, -1),
        ShiftedTransform(_ERROR_POWER, 1, auxiliaries_only=True),
        _GAMMA_UP,
        _GAMMA_AHEAD,
        _GAMMA_LATE,
        _GAMMA_GUARDED,
        CappedTransform(_ERROR_POWER),
        CappedTransform(_ERROR_POWER, headroom=10.0),
        _GAMMA_UP_CAP10,
        CappedTransform(_GAMMA_AHEAD, headroom=10.0),
        CappedTransform(_GAMMA_LATE, headroom=10.0),
        CappedTransform(_GAMMA_GUARDED, headroom=10.0),
        LiftedTransform(_GAMMA_UP_CAP10),
        StartCappedTransform(_GAMMA_UP_CAP10),
        GuardedStartCapTransform(_GAMMA_UP_CAP10),
        _V7,
        FallbackTransform(_V7, "scale-normalised-gs", gated_centre(_ERROR_POWER)),
        AuxiliaryDropTransform(_V7),
        _V8,
        FallbackTransform(_V8, "inverse-error", inverse_error().decide, "iefallback"),
        FallbackTransform(_V8, "geometric-mean", geometric_mean_direction, "gmfallback"),
        FallbackTransform(
            _V8, "geometric-mean", geometric_mean_direction, "gmcfallback", no_regression_auxiliary
        ),
        LatchedFallbackTransform(
            _V8, "geometric-mean", geometric_mean_direction, "gmclatch", no_regression_auxiliary
        ),
        LatchedFallbackTransform(
            _V8,
            "geometric-mean",
            geometric_mean_direction,
            "gmcstart",
            no_regression_auxiliary,
            start_only=True,
        ),
        LatchedFallbackTransform(
            _V8,
            "geometric-mean",
            geometric_mean_direction,
            "gmccont",
            no_regression_auxiliary,
            continuous=True,
        ),
        *_SQRT_FALLBACKS,
        *(FourthRootMixTransform(_V9, strength) for strength in FOURTH_ROOT_MIXES),
        *(FourthRootMixTransform(_V9, start, end) for start, end in FOURTH_ROOT_FADES),
        *(
            FourthRootMixTransform(_V9, s, end=end, peak=peak, held=held)
            for s, peak, end, held in FOURTH_ROOT_HUMPS
        ),
        *_root_loss_fallbacks(FourthRootLoss(), "fourth"),
        TargetNormalisingTransform(_V8),
        ShareFallbackTransform(_V8),
        TargetStartTransform(_V8),
        GatedTransform(_GAMMA_UP_CAP10, learned_strength=True),  # the v6 policy's transform
        _GAMMA_PROGRESS,
        CappedTransform(_GAMMA_PROGRESS, headroom=10.0),
    )
}
DEFAULT_TRANSFORM = "error_power"


def action_transform(name: str) -> ActionTransform:
    """The transform called ``name``; ``ValueError`` listing the valid names."""
    if name not in TRANSFORMS:
        raise ValueError(f"unknown action transform {name!r}; use one of {sorted(TRANSFORMS)}")
    return TRANSFORMS[name]


def actions_to_decision(
    actions: torch.Tensor, signals: Signals, transform: str = DEFAULT_TRANSFORM
) -> Decision:
    """Map actions (N, K, dim) in [-1, 1] to a :class:`Decision` with the named transform."""
    return action_transform(transform).decision(actions, signals)


def emphasis_divergence(
    decision: Decision, mask: torch.Tensor, reference: Decision | None = None
) -> torch.Tensor:
    """KL(r || q) per run, (N,): how far a decision's effective per-task emphasis ``q`` is
    from a reference emphasis ``r`` (``None``: uniform training). ``q_k`` is proportional
    to ``w_k p_k`` (a task's share of the weighted loss: its weight times its share of the
    batch) over the valid tasks, ``r`` likewise from ``reference``. 0 when the two agree;
    against uniform it grows with the log of how much a task is starved (a task at 1/r of
    its uniform share adds log(r) / K)."""
    log_q = _log_emphasis(decision, mask)
    if reference is None:
        k = mask.sum(1).clamp_min(1).float()
        return -k.log() - log_q.sum(1) / k
    log_r = _log_emphasis(reference, mask)
    return (log_r.exp() * mask * (log_r - log_q)).sum(1)


def _log_emphasis(decision: Decision, mask: torch.Tensor) -> torch.Tensor:
    """log of each valid task's share of ``w p``, (N, K); 0 on padded slots."""
    emphasis = decision.weights * decision.sampling * mask
    q = emphasis / emphasis.sum(1, keepdim=True).clamp_min(1e-12)
    return torch.where(mask, q.clamp_min(1e-12).log(), torch.zeros_like(q))


def decision_to_actions(decision: Decision, mask: torch.Tensor) -> torch.Tensor:
    """The ``logits`` action that reproduces ``decision`` as closely as [-1, 1] allows
    (inverse transform; logits are centred over the valid tasks, then clipped)."""
    k = mask.sum(1, keepdim=True).clamp_min(1).float()

    def centred_log(x: torch.Tensor) -> torch.Tensor:
        logs = x.clamp_min(1e-12).log() * mask
        return (logs - logs.sum(1, keepdim=True) / k) * mask

    soft = ((decision.sampling - SAMPLING_FLOOR / k) / (1 - SAMPLING_FLOOR)).clamp_min(1e-6)
    a_w = centred_log(decision.weights) / WEIGHT_SCALE
    a_s = centred_log(soft) / SAMPLING_SCALE
    return torch.stack([a_w, a_s], dim=-1).clamp(-1, 1)
