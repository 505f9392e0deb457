"""The single-task reference of Δm%: each task trained alone with the same budget.

It comes from :func:`curriculum_rl.reference.single_task_reference`; the scores built on
it are :mod:`curriculum_rl.scores`. References are cached under ``<out>/reference``, so a
resumed benchmark does not retrain them; ``--no-reference`` skips them (and the Δm%
columns).
"""

from __future__ import annotations

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
    keys = [(s.label, seed) for s in suites for seed in config.seed_range]
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
