"""The observation: signals -> a (K_max, F) float32 array, one row per task slot.

Every feature is scale-free, so one policy reads a 2-task digits run and an 8-task
synthetic run alike. Loss features are *centred* logs (log L_k minus the mean over the
run's valid tasks), not z-scores: a z-score would make a 1.1x and a 10^4x loss spread look
the same, and that spread is exactly what tells a controller whether re-weighting pays
(measured in benchmarks/headroom.py). All values are finite and clipped to
``[-OBS_CLIP, OBS_CLIP]``; padded rows are all zero (their mask feature is 0).
"""

from __future__ import annotations

import torch

from curriculum_rl.controllers.base import Decision
from curriculum_rl.trainer.signals import Signals

OBS_VERSION = 1
OBS_CLIP = 10.0
FEATURES = (
    "mask",  # 1 for a real task, 0 for padding
    "log_train_centred",  # log train loss - mean over valid tasks
    "log_val_centred",  # log val loss - mean over valid tasks
    "log_val_ratio",  # log(val / val at the first decision)
    "lp_slope",  # 10 x slope of log val loss per decision (recent window)
    "lp_gap",  # 10 x (fast - slow moving average of log val loss)
    "log_grad_norm_rel",  # log gradient norm - mean over valid tasks
    "cos_update",  # cosine of the task gradient with the combined update
    "cos_mean_others",  # mean cosine with the other tasks' gradients
    "cos_min_others",  # min cosine with the other tasks' gradients
    "log_weight",  # log of the previous weight (mean 1)
    "log_sampling_rel",  # log(K x previous sampling probability)
    "gen_gap",  # log val loss - log train loss
    "log_size_rel",  # log train-set size - mean over valid tasks
    "is_objective",  # 1 if the task counts in J
    "progress",  # fraction of the budget used (same on every row)
    "task_fraction",  # K / K_max (same on every row)
)
NUM_FEATURES = len(FEATURES)


def _centred(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    k = mask.sum(1, keepdim=True).clamp_min(1)
    x = torch.where(mask, x, torch.zeros_like(x))
    return torch.where(mask, x - x.sum(1, keepdim=True) / k, torch.zeros_like(x))


def _log(x: torch.Tensor) -> torch.Tensor:
    return x.clamp_min(1e-12).log()


def build_observation(signals: Signals, previous: Decision) -> torch.Tensor:
    """Return the (N, K_max, F) observation for a batch of runs."""
    mask = signals.mask
    fmask = mask.float()
    k = fmask.sum(1, keepdim=True).clamp_min(1)
    others = fmask[:, None, :] * fmask[:, :, None]
    others = others * (1 - torch.eye(mask.shape[1], device=mask.device))
    n_others = others.sum(-1).clamp_min(1)
    cos = signals.grad_cos
    cos_mean = (cos * others).sum(-1) / n_others
    cos_min = torch.where(others > 0, cos, torch.ones_like(cos)).amin(-1)
    cos_min = torch.where(others.sum(-1) > 0, cos_min, torch.zeros_like(cos_min))
    log_train, log_val = _log(signals.train_loss), _log(signals.val_loss)
    rows = [
        fmask,
        _centred(log_train, mask),
        _centred(log_val, mask),
        signals.log_val_ratio,
        10 * signals.lp_slope,
        10 * signals.lp_gap,
        _centred(_log(signals.grad_norm), mask),
        signals.cos_update,
        cos_mean,
        cos_min,
        _log(previous.weights),
        _log(previous.sampling * k),
        log_val - log_train,
        _centred(_log(signals.train_sizes), mask),
        signals.objective.float(),
        signals.progress[:, None].expand_as(fmask),
        (k / mask.shape[1]).expand_as(fmask),
    ]
    obs = torch.stack(rows, dim=-1).nan_to_num(0.0, OBS_CLIP, -OBS_CLIP)
    return (obs.clamp(-OBS_CLIP, OBS_CLIP) * fmask[..., None]).float()
