"""Aggregate statistics: interquartile mean and stratified bootstrap confidence intervals.

We follow rliable's conventions (Agarwal et al., 2021, "Deep RL at the edge of the
statistical precipice"): the point estimate is the interquartile mean (IQM, the 25%
trimmed mean of all scores pooled, ``scipy.stats.trim_mean(x, 0.25)``), and its 95%
confidence interval is the percentile interval of a *stratified* bootstrap: each
replicate resamples runs (seeds) with replacement independently within each stratum
(suite), so every suite keeps its number of runs, 50 000 replicates by default.

Why not call rliable itself: it pulls in ``arch``, ``pandas`` and ``seaborn`` for what is
twenty lines of numpy here, and the ``arch`` release that rliable 1.2 pins against does
not import with current pandas (``deprecate_kwarg`` signature change), so depending on it
would make the benchmark fail at import. The numpy version is vectorised over replicates
and seeded, so the same scores always give the same interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import trim_mean

TRIM = 0.25
DEFAULT_REPS = 50_000


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% confidence interval (``low <= value <= high``)."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict:
        return {"iqm": self.value, "ci": [self.low, self.high]}


def iqm(scores: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Interquartile mean: the mean of the middle 50% of the scores (25% trimmed mean)."""
    return trim_mean(np.asarray(scores, dtype=float), TRIM, axis=axis)


def stratified_iqm(
    strata: Sequence[Sequence[float]],
    reps: int = DEFAULT_REPS,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """IQM of all scores pooled, with a stratified percentile-bootstrap interval.

    Args:
        strata: one sequence of scores per stratum (per suite; a single stratum for a
            per-suite estimate). Empty strata are ignored.
        reps: bootstrap replicates. seed: seeds the resampling (deterministic output).
    """
    return _stratified(strata, iqm, reps, confidence, seed)


def stratified_mean(
    strata: Sequence[Sequence[float]],
    reps: int = DEFAULT_REPS,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """The mean of all scores pooled, with the interval of :func:`stratified_iqm`: for a
    statistic fixed in advance as a mean (a pre-registered rule), where the exact zeros of
    runs a switch left alone would make the IQM 0."""
    return _stratified(strata, np.mean, reps, confidence, seed)


def _stratified(
    strata: Sequence[Sequence[float]],
    statistic: Callable[..., Any],
    reps: int,
    confidence: float,
    seed: int,
) -> Estimate:
    groups = [np.asarray(s, dtype=float) for s in strata if len(s) > 0]
    if not groups:
        return Estimate(np.nan, np.nan, np.nan)
    point = float(statistic(np.concatenate(groups)))
    rng = np.random.default_rng(seed)
    # One (reps, n_s) resample per stratum, pooled along the run axis per replicate.
    resampled = np.concatenate(
        [g[rng.integers(0, len(g), size=(reps, len(g)))] for g in groups], axis=1
    )
    stats = statistic(resampled, axis=1)
    alpha = (1 - confidence) / 2
    # Linear interpolation between order statistics (as numpy/arch do) would turn
    # -inf neighbours (diverged runs) into NaN; fall back to the empirical quantile then.
    method = "linear" if np.isfinite(stats).all() else "inverted_cdf"
    low, high = np.quantile(stats, [alpha, 1 - alpha], method=method)
    # A percentile interval can, for very few and skewed runs, miss the point estimate by
    # a hair (or by rounding when all scores are equal); widen it to contain the point so
    # that readers can always rely on low <= IQM <= high (conservative, never narrower).
    return Estimate(point, float(min(low, point)), float(max(high, point)))
