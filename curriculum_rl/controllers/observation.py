"""The observation: signals + the decision in force -> a (K_max, F) float32 table.

:data:`SCHEMA` is the one ordered table of features (name, definition, value in padded
rows, how it is computed); :data:`FEATURES`, :data:`NUM_FEATURES`, the policy network's
input width, the artifact's layout check and docs/environment.md all derive from it.

Every feature is scale-free, so one policy reads a 2-task digits run and an 8-task
synthetic run alike. Loss features are *centred* logs (log L_k minus the mean over the
run's valid tasks), not z-scores: a z-score would make a 1.1x and a 10^4x loss spread look
the same, and that spread is exactly what tells a controller whether re-weighting pays
(measured in benchmarks/headroom.py). All values are finite and clipped to
``[-OBS_CLIP, OBS_CLIP]``; rows are computed over the run's K task slots and padded rows
(up to ``max_tasks``) hold each feature's padding value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch

from curriculum_rl.controllers.decision import Decision
from curriculum_rl.trainer.signals import Signals

OBS_VERSION = 2
OBS_CLIP = 10.0


def _log(x: torch.Tensor) -> torch.Tensor:
    return x.clamp_min(1e-12).log()


def _centred(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    k = mask.sum(1, keepdim=True).clamp_min(1)
    x = torch.where(mask, x, torch.zeros_like(x))
    return torch.where(mask, x - x.sum(1, keepdim=True) / k, torch.zeros_like(x))


@dataclass
class FeatureInputs:
    """What the features are computed from (cached intermediate terms shared by several)."""

    signals: Signals
    previous: Decision

    @property
    def mask(self) -> torch.Tensor:
        return self.signals.mask

    @cached_property
    def num_tasks(self) -> torch.Tensor:
        """(N, 1) valid tasks per run."""
        return self.mask.float().sum(1, keepdim=True).clamp_min(1)

    @cached_property
    def others(self) -> torch.Tensor:
        """(N, K, K) 1 where the column is another valid task of the row's run."""
        fmask = self.mask.float()
        pairs = fmask[:, None, :] * fmask[:, :, None]
        return pairs * (1 - torch.eye(self.mask.shape[1], device=self.mask.device))

    def row(self, values: torch.Tensor) -> torch.Tensor:
        """A per-run value broadcast to every task row."""
        return values.reshape(-1, 1).expand(self.mask.shape).to(torch.float32)


def _cos_mean_others(x: FeatureInputs) -> torch.Tensor:
    count = x.others.sum(-1).clamp_min(1)
    return (x.signals.grad_cos * x.others).sum(-1) / count


def _cos_min_others(x: FeatureInputs) -> torch.Tensor:
    cos = x.signals.grad_cos
    lowest = torch.where(x.others > 0, cos, torch.ones_like(cos)).amin(-1)
    return torch.where(x.others.sum(-1) > 0, lowest, torch.zeros_like(lowest))


@dataclass(frozen=True)
class Feature:
    """One column of the observation: ``compute`` maps the inputs to (N, K) values."""

    name: str
    definition: str
    compute: Callable[[FeatureInputs], torch.Tensor]
    padding: float = 0.0


SCHEMA: tuple[Feature, ...] = (
    Feature("mask", "1 for a real task, 0 for padding", lambda x: x.mask.float()),
    Feature(
        "log_train_centred",
        "log mean training loss over the last interval, centred over the run's tasks",
        lambda x: _centred(_log(x.signals.train_loss), x.mask),
    ),
    Feature(
        "log_val_centred",
        "log loss on the fixed validation probe, centred",
        lambda x: _centred(_log(x.signals.val_loss), x.mask),
    ),
    Feature(
        "log_val_ratio",
        "log(val loss / val loss at the first decision)",
        lambda x: x.signals.log_val_ratio,
    ),
    Feature(
        "lp_slope",
        "10 x least-squares slope of log val loss per decision over the recent window",
        lambda x: 10 * x.signals.lp_slope,
    ),
    Feature(
        "lp_gap",
        "10 x (fast EMA - slow EMA) of log val loss",
        lambda x: 10 * x.signals.lp_gap,
    ),
    Feature(
        "log_grad_norm_rel",
        "log norm of the task's gradient on the last shared layer, centred",
        lambda x: _centred(_log(x.signals.grad_norm), x.mask),
    ),
    Feature(
        "cos_update",
        "cosine of the task gradient with the update actually applied",
        lambda x: x.signals.cos_update,
    ),
    Feature("cos_mean_others", "mean cosine with the other tasks' gradients", _cos_mean_others),
    Feature("cos_min_others", "min cosine with the other tasks' gradients", _cos_min_others),
    Feature(
        "log_weight",
        "log of the loss weight in force (mean 1)",
        lambda x: _log(x.previous.weights),
    ),
    Feature(
        "log_sampling_rel",
        "log(K x sampling probability in force)",
        lambda x: _log(x.previous.sampling * x.num_tasks),
    ),
    Feature(
        "gen_gap",
        "log val loss - log train loss",
        lambda x: _log(x.signals.val_loss) - _log(x.signals.train_loss),
    ),
    Feature(
        "log_size_rel",
        "log training-set size, centred",
        lambda x: _centred(_log(x.signals.train_sizes), x.mask),
    ),
    Feature(
        "is_objective",
        "1 if the task counts in J (a target task), 0 for an auxiliary",
        lambda x: x.signals.objective.float(),
    ),
    Feature(
        "is_classification",
        "1 for a classification or tagging task, 0 for regression",
        lambda x: x.signals.classify.float(),
    ),
    Feature(
        "log_error_centred",
        "log validation error (MSE; smoothed soft error for classification), centred",
        lambda x: _centred(_log(x.signals.val_error), x.mask),
    ),
    Feature(
        "log_error_ratio",
        "log(val error / val error at the first decision)",
        lambda x: x.signals.log_error_ratio,
    ),
    Feature(
        "progress",
        "fraction of the inner-step budget used (same on every row)",
        lambda x: x.row(x.signals.progress),
    ),
    Feature(
        "log_budget",
        "log10(budget / 1000 inner steps) (same on every row)",
        lambda x: x.row(torch.log10(x.signals.budget.float().clamp_min(1) / 1000)),
    ),
    Feature(
        "inv_num_tasks",
        "1 / K (same on every row; independent of the padded width, so a policy runs any K)",
        lambda x: x.row(1 / x.num_tasks),
    ),
)
FEATURES: tuple[str, ...] = tuple(f.name for f in SCHEMA)
NUM_FEATURES = len(SCHEMA)


def build_observation(
    signals: Signals, previous: Decision, max_tasks: int | None = None
) -> torch.Tensor:
    """Return the (N, max_tasks, F) observation of a batch of runs.

    Args:
        signals: the runs' signals, task dimension K.
        previous: the decision in force (what the last interval trained with), (N, K).
        max_tasks: pad the task rows to this width (default K; the observation space of an
            env is fixed at its ``max_tasks``). No feature depends on the width, so a policy
            reads a run of any K alike. ``ValueError`` if it is smaller than K.
    """
    k = signals.max_tasks
    width = k if max_tasks is None else max_tasks
    if width < k:
        raise ValueError(f"cannot pad {k} task slots to a width of {width}; give max_tasks >= {k}")
    inputs = FeatureInputs(signals, previous)
    obs = torch.stack([f.compute(inputs).float() for f in SCHEMA], dim=-1)
    obs = obs.nan_to_num(0.0, OBS_CLIP, -OBS_CLIP).clamp(-OBS_CLIP, OBS_CLIP)
    padding = torch.tensor([f.padding for f in SCHEMA], device=obs.device)
    obs = torch.where(signals.mask[..., None], obs, padding)
    if width > k:
        obs = torch.cat([obs, padding.expand(obs.shape[0], width - k, NUM_FEATURES)], dim=1)
    return obs
