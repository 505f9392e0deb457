"""The single-task reference of Δm%: each task trained alone with the same budget.

It comes from :mod:`curriculum_rl.reference` (``single_task_reference``, ``delta_m``,
``worst_task_change``). References are cached under ``<out>/reference``, so a resumed
benchmark does not retrain them; ``--no-reference`` skips them (and the Δm% columns).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from tqdm.auto import tqdm

from curriculum_rl import reference
from curriculum_rl.benchmark.config import BenchmarkConfig, SuiteEntry
from curriculum_rl.benchmark.run import InstanceCache

References = dict[tuple[str, int], dict]
"""(suite label, seed) -> the dict of ``single_task_reference``."""


def compute_references(
    config: BenchmarkConfig, suites: Sequence[SuiteEntry], instances: InstanceCache
) -> References | None:
    """Single-task references for every (suite, seed), or ``None`` when switched off
    (``config.reference``)."""
    if not config.reference:
        return None
    keys = [(s.label, seed) for s in suites for seed in range(config.seeds)]
    refs = {}
    for suite, seed in tqdm(
        keys, desc="single-task reference", unit="instance", disable=not config.progress
    ):
        refs[suite, seed] = reference.single_task_reference(
            instances.get(suite, seed),
            seed,
            config.budget,
            config.interval,
            config.trainer,
            cache_dir=config.out / "reference",
        )
    return refs


def relative_score(kind: str, metrics: list, ref_metrics: list, higher_is_better: list) -> float:
    """``delta_m`` or ``worst_task_change`` of :mod:`curriculum_rl.reference` (positive =
    worse than the reference); NaN where it is undefined (a reference metric that is
    missing, zero or non-finite, e.g. a diverged reference run)."""
    try:
        return float(getattr(reference, kind)(metrics, ref_metrics, higher_is_better))
    except ValueError:
        return math.nan
