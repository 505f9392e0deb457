"""Sequence family: procedural multitask problems on a token-sequence trunk, for training.

The synthetic generator draws its problems on an MLP trunk only; users also bring
sequence models with sequence-level and per-token objectives. Each seed of this suite
draws one such problem: ``K`` tasks from a bank of token-sequence tasks, each with its
own parameters, output scale, label noise and training-set size, some marked auxiliary,
on the :class:`~curriculum_rl.suites.sequence.SequenceEncoder` trunk (vocabulary and
length fixed per suite: runs batch together only when their trunks are equal).

==============  ==============  ==========  ==============================================
bank entry      kind            out         target
==============  ==============  ==========  ==============================================
``count``       regression      1           occurrences of a drawn token, at a drawn scale
``distinct``    regression      1           distinct tokens in the sequence, drawn scale
``majority``    classification  vocab       most frequent token (ties: lowest id)
``motif``       classification  2           does a drawn bigram occur (planted in half)
``parity``      classification  2           is a drawn token's count odd (hard)
``first``       classification  4           occurrences of the first token, 1 to 4+
``prev_token``  tagging         vocab + 1   each position's previous token
``repeat``      tagging         2           has this token occurred earlier
``rises``       tagging         2           is this token's id above the previous one's
``noise``       classification  4           random labels (drawn only as an auxiliary)
==============  ==============  ==========  ==============================================

Every instance draws its own token statistics (per-sequence Dirichlet frequencies of a
drawn concentration), so the validation ``sequence`` suite and the test tiers' ``tokens``
suites are other draws, with other trunks or sizes; none is an instance of this family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from curriculum_rl.suites.base import ModuleBody, SuiteInstance, TaskSpec
from curriculum_rl.suites.selection import draw_count, split_task_data, standardize
from curriculum_rl.suites.sequence import SPLITS, SequenceEncoderFactory, draw_tokens

FIRST_CLASSES = 4
NOISE_CLASSES = 4
# Draw weights of the bank's entries (``noise`` only fills auxiliary slots); counts come
# at several scales, so they are drawn more often.
BANK = {
    "count": 3.0,
    "distinct": 1.0,
    "majority": 1.0,
    "motif": 1.0,
    "parity": 1.0,
    "first": 1.0,
    "prev_token": 1.0,
    "repeat": 1.0,
    "rises": 1.0,
}
Range = tuple[float, float]


@dataclass(frozen=True)
class SequenceFamilySuite:
    """Procedural token-sequence problems (module docstring).

    Attributes:
        vocab, length, dim: the trunk's vocabulary, sequence length and feature width
            (fixed per suite so every instance batches with every other).
        n_train, n_val, n_test: sequences per split before per-task subsampling.
        num_tasks: inclusive range of K.
        scale: log-uniform range of a regression target's scale (targets are
            standardised, then multiplied by it, then offset by ``offset`` x scale).
        offset: uniform range of that offset, in units of the scale.
        noisy_tasks, noise: that many tasks get label noise of strength ``noise``
            (Gaussian of std ``noise`` for standardised regression targets; a label is
            replaced by a uniform class with probability ``noise / (1 + noise)``).
        imbalance: a task keeps ``n_train / imbalance**u`` training sequences, u ~ U(0, 1).
        auxiliary: inclusive range of the number of auxiliary tasks (at least one
            target task always remains); half of them are ``noise`` tasks.
        concentration: log-uniform range of the Dirichlet concentration of a sequence's
            token frequencies (low: a few tokens dominate).
    """

    name: str = "sequence-family"
    vocab: int = 6
    length: int = 8
    dim: int = 16
    n_train: int = 2000
    n_val: int = 256
    n_test: int = 512
    num_tasks: tuple[int, int] = (2, 8)
    scale: Range = (1.0, 300.0)
    offset: Range = (0.0, 4.0)
    noisy_tasks: tuple[int, int] = (0, 2)
    noise: Range = (0.5, 3.0)
    imbalance: Range = (1.0, 30.0)
    auxiliary: tuple[int, int] = (0, 3)
    concentration: Range = (0.3, 3.0)

    def __post_init__(self) -> None:
        where = f"suite {self.name!r}"
        if self.vocab < 3 or self.length < 4 or self.dim < 1:
            raise ValueError(f"{where}: need vocab >= 3, length >= 4 and dim >= 1")
        if min(self.n_train, self.n_val, self.n_test) < 1:
            raise ValueError(f"{where}: split sizes must be >= 1")
        low, high = self.num_tasks
        bank_size = sum(int(w) for w in BANK.values())
        if not 1 <= low <= high <= bank_size:
            raise ValueError(f"{where}: num_tasks must satisfy 1 <= low <= high <= {bank_size}")
        ranges = ("scale", "offset", "noise", "imbalance", "concentration", "noisy_tasks")
        for key in (*ranges, "auxiliary"):
            lo, hi = getattr(self, key)
            if not 0 <= lo <= hi:
                raise ValueError(f"{where}: {key} must be a range 0 <= low <= high")
        if self.scale[0] <= 0 or self.imbalance[0] < 1 or self.concentration[0] <= 0:
            raise ValueError(f"{where}: scale and concentration must be > 0, imbalance >= 1")

    def describe(self) -> list[TaskSpec]:
        """The widest task each slot can hold (tasks vary by instance), so a trainer sized
        from this list fits every instance."""
        return [
            TaskSpec(f"task{i}", "tagging", self.vocab + 1, "token_accuracy")
            for i in range(self.num_tasks[1])
        ]

    def sample(self, seed: int) -> SuiteInstance:
        rng = np.random.default_rng(seed)
        sizes = (self.n_train, self.n_val, self.n_test)
        k = draw_count(self.num_tasks, rng)
        n_aux = draw_count(self.auxiliary, rng, cap=k - 1)  # keep a target task
        kinds = self._draw_kinds(k - n_aux // 2, rng) + ["noise"] * (n_aux // 2)
        motif = tuple(int(t) for t in rng.choice(self.vocab, size=2, replace=False))
        alpha = float(np.exp(rng.uniform(*np.log(self.concentration))))
        planted = motif if "motif" in kinds else None
        tokens = draw_tokens(sum(sizes), self.length, np.full(self.vocab, alpha), planted, rng)
        bounds = np.cumsum((0, *sizes))
        rows = {s: np.arange(bounds[i], bounds[i + 1]) for i, s in enumerate(SPLITS)}
        auxiliary = set(rng.choice(k, size=n_aux, replace=False).tolist()) if n_aux else set()
        # noise tasks are always auxiliaries: swap them onto auxiliary slots
        auxiliary = _auxiliary_with_noise(kinds, auxiliary)
        noisy = draw_count(self.noisy_tasks, rng, cap=k)
        noisy_slots = set(rng.choice(k, size=noisy, replace=False).tolist()) if noisy else set()
        x = torch.as_tensor(tokens, dtype=torch.float32)
        specs, data, drawn = [], [], []
        for i, kind in enumerate(kinds):
            spec, y, params = self._task(i, kind, tokens, motif, rows["train"], rng)
            noise = float(rng.uniform(*self.noise)) if i in noisy_slots else 0.0
            y = _add_noise(spec, y, noise, rng)
            spec = TaskSpec(spec.name, spec.kind, spec.out_dim, spec.metric, i in auxiliary)
            train = self._train_rows(rows["train"], rng)
            data.append(split_task_data(x, y, {**rows, "train": train}, spec))
            specs.append(spec)
            drawn.append({"kind": kind, "noise": noise, "n_train": len(train), **params})
        return SuiteInstance(
            name=self.name,
            tasks=specs,
            data=data,
            body=ModuleBody(SequenceEncoderFactory(self.vocab, self.length, self.dim), self.dim),
            input_shape=(self.length,),
            info={"seed": seed, "tasks": drawn},
        )

    def _draw_kinds(self, k: int, rng: np.random.Generator) -> list[str]:
        """``k`` bank entries without replacement, ``count`` up to three times."""
        pool = [name for name, weight in BANK.items() for _ in range(int(weight))]
        return [pool[i] for i in rng.choice(len(pool), size=k, replace=False)]

    def _task(
        self,
        i: int,
        kind: str,
        tokens: np.ndarray,
        motif: tuple[int, int],
        train_rows: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[TaskSpec, np.ndarray, dict]:
        """Slot ``i``'s spec, targets for every sequence and drawn parameters."""
        name = f"task{i}_{kind}"
        if kind in ("count", "distinct"):
            token = int(rng.integers(self.vocab))
            raw = (tokens == token).sum(1) if kind == "count" else _distinct(tokens)
            scale = float(np.exp(rng.uniform(*np.log(self.scale))))
            offset = float(rng.uniform(*self.offset))
            z = standardize(raw.astype(np.float64), train_rows)
            spec = TaskSpec(name, "regression", 1, "mse")
            return spec, scale * (z + offset), {"token": token, "scale": scale, "offset": offset}
        token = int(rng.integers(self.vocab))
        labels, classes, kind_of = _LABELS[kind](tokens, self.vocab, motif, token, rng)
        metric = "token_accuracy" if kind_of == "tagging" else "accuracy"
        params = {"token": token} if kind == "parity" else {}
        return TaskSpec(name, kind_of, classes, metric), labels, params

    def _train_rows(self, train: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """This task's training sequences: a random ``1 / imbalance**u`` share (>= 32)."""
        factor = self.imbalance[1] / self.imbalance[0]
        keep = self.imbalance[0] * factor ** rng.random()
        n = max(min(32, len(train)), int(len(train) / keep))
        return np.sort(rng.choice(train, size=n, replace=False))


def _distinct(tokens: np.ndarray) -> np.ndarray:
    ordered = np.sort(tokens, axis=1)
    return 1 + (ordered[:, 1:] != ordered[:, :-1]).sum(1)


def _majority(tokens, vocab, motif, token, rng):
    counts = np.stack([(tokens == v).sum(1) for v in range(vocab)], axis=1)
    return counts.argmax(1), vocab, "classification"


def _motif(tokens, vocab, motif, token, rng):
    hit = (tokens[:, :-1] == motif[0]) & (tokens[:, 1:] == motif[1])
    return hit.any(1).astype(np.int64), 2, "classification"


def _parity(tokens, vocab, motif, token, rng):
    return (tokens == token).sum(1) % 2, 2, "classification"


def _first(tokens, vocab, motif, token, rng):
    occurrences = (tokens == tokens[:, :1]).sum(1)
    return np.minimum(occurrences, FIRST_CLASSES) - 1, FIRST_CLASSES, "classification"


def _prev_token(tokens, vocab, motif, token, rng):
    n = len(tokens)
    prev = np.concatenate([np.zeros((n, 1), np.int64), tokens[:, :-1] + 1], axis=1)
    return prev, vocab + 1, "tagging"


def _repeat(tokens, vocab, motif, token, rng):
    same = tokens[:, :, None] == tokens[:, None, :]
    earlier = np.tril(np.ones((tokens.shape[1],) * 2, bool), k=-1)
    return (same & earlier).any(2).astype(np.int64), 2, "tagging"


def _rises(tokens, vocab, motif, token, rng):
    rise = np.zeros_like(tokens)
    rise[:, 1:] = tokens[:, 1:] > tokens[:, :-1]
    return rise, 2, "tagging"


def _noise(tokens, vocab, motif, token, rng):
    return rng.integers(NOISE_CLASSES, size=len(tokens)), NOISE_CLASSES, "classification"


_LABELS: dict[str, Callable] = {
    "majority": _majority,
    "motif": _motif,
    "parity": _parity,
    "first": _first,
    "prev_token": _prev_token,
    "repeat": _repeat,
    "rises": _rises,
    "noise": _noise,
}


def _auxiliary_with_noise(kinds: list[str], auxiliary: set[int]) -> set[int]:
    """The auxiliary slots, moved so that every ``noise`` task is among them (their
    number is unchanged: noise tasks are at most half of them)."""
    noise = {i for i, kind in enumerate(kinds) if kind == "noise"}
    others = sorted(auxiliary - noise)
    missing = len(auxiliary) - len(noise)
    return noise | set(others[:missing])


def _add_noise(spec: TaskSpec, y: np.ndarray, noise: float, rng: np.random.Generator):
    """Label noise of strength ``noise`` (see :class:`SequenceFamilySuite`)."""
    if noise == 0:
        return y
    if spec.kind == "regression":
        return y + noise * float(np.std(y)) * rng.standard_normal(y.shape)
    flip = rng.random(y.shape) < noise / (1 + noise)
    return np.where(flip, rng.integers(spec.out_dim, size=y.shape), y)
