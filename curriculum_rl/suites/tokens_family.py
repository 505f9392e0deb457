"""Tokens family: procedural counting problems on an attention-only trunk, for training.

The ``tokens`` kind (:mod:`curriculum_rl.suites.tokens`) is one fixed problem; the
training distribution held none of its kind, and the test tiers' ``tokens`` suites were
where the shipped policy missed most (benchmarks/RESULTS.md §24f). Each seed of this suite
draws one tokens problem: 2 to 5 of the five tokens tasks (raw counts, a raw sum, a
first-token classification, a per-token tagging), some of them auxiliary, with its own
token statistics and training-set size, on the
:class:`~curriculum_rl.suites.tokens.AttentionEncoder` trunk. Vocabulary, length, width
and depth are fixed per suite (a trainer batches only runs whose trunks are equal), so a
training mix holds several files of this kind for several trunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curriculum_rl.suites.base import SuiteInstance, TaskSpec
from curriculum_rl.suites.selection import draw_count
from curriculum_rl.suites.tokens import TokensSuite

Range = tuple[float, float]


@dataclass(frozen=True)
class TokensFamilySuite:
    """Procedural tokens problems (module docstring).

    Attributes:
        vocab, length, dim, layers: the trunk's vocabulary, sequence length, width and
            number of attention blocks (fixed per suite).
        num_tasks: inclusive range of K, drawn uniformly; the tasks are a uniform subset
            of the five.
        auxiliary: inclusive range of the number of auxiliary tasks (at least one target
            always remains).
        concentration: log-uniform range of the Dirichlet concentration of a sequence's
            token frequencies (low: a few tokens dominate).
        n_train: log-uniform range of the training sequences (shared by every task).
        n_val, n_test: validation and test sequences.
        auxiliary_kinds: the task kinds an auxiliary may be (``"regression"``,
            ``"classification"``, ``"tagging"``); ``None``: any. With
            ``("classification", "tagging")`` the raw counts are always targets, the
            structure where ``geometric-mean`` beat v8 by more than a nat
            (benchmarks/RESULTS.md §34g).
    """

    name: str = "tokens-family"
    vocab: int = 11
    length: int = 10
    dim: int = 18
    layers: int = 1
    num_tasks: tuple[int, int] = (2, 5)
    auxiliary: tuple[int, int] = (0, 2)
    concentration: Range = (0.2, 3.0)
    n_train: tuple[int, int] = (500, 3000)
    n_val: int = 256
    n_test: int = 512
    auxiliary_kinds: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        where = f"suite {self.name!r}"
        specs = self._bank().all_tasks()
        kinds = {spec.kind for spec in specs}
        if self.auxiliary_kinds is not None and not set(self.auxiliary_kinds) <= kinds:
            raise ValueError(
                f"{where}: auxiliary_kinds must be task kinds of the tokens tasks "
                f"({sorted(kinds)}), got {list(self.auxiliary_kinds)}"
            )
        bank = len(specs)
        low, high = self.num_tasks
        if not 2 <= low <= high <= bank:
            raise ValueError(f"{where}: num_tasks must satisfy 2 <= low <= high <= {bank}")
        for key in ("auxiliary", "concentration", "n_train"):
            lo, hi = getattr(self, key)
            if not 0 <= lo <= hi:
                raise ValueError(f"{where}: {key} must be a range 0 <= low <= high")
        if self.concentration[0] <= 0 or self.n_train[0] < 1:
            raise ValueError(f"{where}: concentration must be > 0 and n_train >= 1")

    def _bank(self, **drawn) -> TokensSuite:
        """The fixed tokens suite on this family's trunk, with ``drawn`` settings."""
        return TokensSuite(
            name=self.name,
            vocab=self.vocab,
            length=self.length,
            dim=self.dim,
            layers=self.layers,
            n_val=self.n_val,
            n_test=self.n_test,
            **drawn,
        )

    def describe(self) -> list[TaskSpec]:
        """Every task an instance can hold (instances hold a subset), so a trainer sized
        from this list fits every instance."""
        return list(self._bank().all_tasks())

    def sample(self, seed: int) -> SuiteInstance:
        # Draws use their own stream (the tokens suite seeds its sequences from `seed`),
        # one per trunk, so two suites of the family draw different problems per seed.
        rng = np.random.default_rng([seed, self.vocab, self.length, self.dim, self.layers])
        kind = {spec.name: spec.kind for spec in self.describe()}
        names = list(kind)
        k = draw_count(self.num_tasks, rng)
        tasks = [names[i] for i in sorted(rng.choice(len(names), size=k, replace=False))]
        allowed = [
            t for t in tasks if self.auxiliary_kinds is None or kind[t] in self.auxiliary_kinds
        ]
        n_aux = draw_count(self.auxiliary, rng, cap=min(k - 1, len(allowed)))  # keep a target
        auxiliary = tuple(str(t) for t in rng.choice(allowed, size=n_aux, replace=False))
        concentration = float(np.exp(rng.uniform(*np.log(self.concentration))))
        n_train = int(np.exp(rng.uniform(*np.log(self.n_train))))
        suite = self._bank(
            tasks=tuple(tasks),
            auxiliary=auxiliary,
            concentration=concentration,
            n_train=n_train,
        )
        instance = suite.sample(seed)
        instance.info.update(concentration=concentration, auxiliary=list(auxiliary))
        return instance
