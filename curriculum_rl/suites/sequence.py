"""Sequence: heterogeneous objectives on one shared token-sequence encoder.

Inputs are sequences of ``length`` tokens from a vocabulary of ``vocab`` ids (stored as
floats, as the trainer keeps every input in float32). Each sequence draws its own token
frequencies from a flat Dirichlet, so some tokens dominate and counts vary. The tasks
mix sequence-level and per-token objectives of different difficulty:

=================  ==============  ==========  =========================================
task               kind            out         what / constant-predictor baseline
=================  ==============  ==========  =========================================
``majority``       classification  vocab       most frequent token (ties: lowest id);
                                               ~17% accuracy for vocab 8 (the planted
                                               motif tokens win a little more often)
``motif``          classification  2           does the bigram ``motif`` occur? (planted
                                               in half the sequences); ~59%
``count``          regression      1           occurrences of token 0 (standardized);
                                               MSE ~1
``prev_token``     tagging         vocab + 1   each position's previous token (class 0
                                               at the first position); ~14%
``repeat``         tagging         2           has this token occurred earlier in the
                                               sequence? needs attention; ~64%
=================  ==============  ==========  =========================================

Sequence-level tasks read the token-averaged features, tagging tasks the per-token
features (the trainer does both). The body is a :class:`SequenceEncoder` (embedding,
positional embedding, a 1D convolution and one self-attention layer written with plain
ops) so N copies run batched under ``torch.func.vmap``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from curriculum_rl.suites.base import ModuleBody, SuiteInstance, TaskSpec
from curriculum_rl.suites.selection import (
    mark_auxiliary,
    select_tasks,
    split_task_data,
    standardize,
)

SPLITS = ("train", "val", "test")


class SequenceEncoder(nn.Module):
    """(B, L) token ids as floats -> (B, L, dim) per-token features.

    Token + position embeddings, a residual 1D convolution (local context: bigrams,
    previous token) and a residual single-head self-attention (global context: has this
    token occurred before). Only plain, vmap-compatible ops: no in-place updates, no
    data-dependent control flow.
    """

    def __init__(self, vocab: int, length: int, dim: int = 32, kernel: int = 3) -> None:
        super().__init__()
        self.vocab = vocab
        self.embed = nn.Embedding(vocab, dim)
        self.position = nn.Parameter(0.1 * torch.randn(length, dim))
        self.conv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2)
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The trainer pads evaluation chunks with zeros, which are valid ids; clamping
        # keeps any stray float from indexing outside the table.
        tokens = x.long().clamp(0, self.vocab - 1)
        h = self.embed(tokens) + self.position
        h = h + torch.relu(self.conv(h.transpose(1, 2))).transpose(1, 2)
        q, k, v = self.qkv(self.norm(h)).chunk(3, dim=-1)
        scores = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])
        h = h + self.out(torch.softmax(scores, dim=-1) @ v)
        return torch.relu(h)


@dataclass(frozen=True)
class SequenceEncoderFactory:
    """Builds a :class:`SequenceEncoder`; a frozen dataclass so that two instances with
    equal settings have equal bodies (the trainer batches only runs whose bodies compare
    equal)."""

    vocab: int
    length: int
    dim: int = 32
    kernel: int = 3

    def __call__(self) -> nn.Module:
        return SequenceEncoder(self.vocab, self.length, self.dim, self.kernel)


@dataclass(frozen=True)
class SequenceSuite:
    """Token sequences with classification, regression and tagging tasks (module docstring).

    Attributes:
        tasks: task names to include (any subset of :meth:`all_tasks`); ``None`` for all.
        vocab: number of token ids (>= 3). length: tokens per sequence (>= 4).
        motif: the bigram of the ``motif`` task.
        n_train, n_val, n_test: sequences per split (shared by every task).
        dim: width of the encoder's per-token features.
        auxiliary: task names that only help and do not count in the score; ``None``:
            none (every task is a target).
    """

    name: str = "sequence"
    tasks: tuple[str, ...] | None = None
    vocab: int = 8
    length: int = 16
    motif: tuple[int, int] = (1, 2)
    n_train: int = 4000
    n_val: int = 500
    n_test: int = 1000
    dim: int = 32
    auxiliary: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.vocab < 3 or self.length < 4:
            raise ValueError(f"suite {self.name!r}: need vocab >= 3 and length >= 4")
        if len(self.motif) != 2 or not all(0 <= t < self.vocab for t in self.motif):
            raise ValueError(f"suite {self.name!r}: motif must be two token ids < vocab")
        if min(self.n_train, self.n_val, self.n_test) < 1 or self.dim < 1:
            raise ValueError(f"suite {self.name!r}: sizes and dim must be >= 1")
        self.describe()  # fail early on a bad task name or auxiliary choice

    def all_tasks(self) -> tuple[TaskSpec, ...]:
        """Every task the suite offers (their widths depend on ``vocab``)."""
        return (
            TaskSpec("majority", "classification", self.vocab, "accuracy"),
            TaskSpec("motif", "classification", 2, "accuracy"),
            TaskSpec("count", "regression", 1, "mse"),
            TaskSpec("prev_token", "tagging", self.vocab + 1, "token_accuracy"),
            TaskSpec("repeat", "tagging", 2, "token_accuracy"),
        )

    def describe(self) -> list[TaskSpec]:
        specs = select_tasks(self.name, self.all_tasks(), self.tasks)
        return mark_auxiliary(self.name, specs, self.auxiliary)

    def sample(self, seed: int) -> SuiteInstance:
        rng = np.random.default_rng(seed)
        sizes = (self.n_train, self.n_val, self.n_test)
        tokens = self._draw_tokens(sum(sizes), rng)
        bounds = np.cumsum((0, *sizes))
        rows = {s: np.arange(bounds[i], bounds[i + 1]) for i, s in enumerate(SPLITS)}
        targets = _targets(tokens, self.vocab, self.motif, rows["train"])
        x = torch.as_tensor(tokens, dtype=torch.float32)
        specs = self.describe()
        data = [split_task_data(x, targets[spec.name], rows, spec) for spec in specs]
        return SuiteInstance(
            name=self.name,
            tasks=specs,
            data=data,
            body=ModuleBody(SequenceEncoderFactory(self.vocab, self.length, self.dim), self.dim),
            input_shape=(self.length,),
            info={"seed": seed, "vocab": self.vocab, "length": self.length, "sizes": list(sizes)},
        )

    def _draw_tokens(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, length) int tokens: flat-Dirichlet frequencies, the motif in half."""
        return draw_tokens(n, self.length, np.ones(self.vocab), self.motif, rng)


def draw_tokens(
    n: int,
    length: int,
    concentration: np.ndarray,
    motif: tuple[int, int] | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """(n, length) int token ids: each sequence draws its own token frequencies from a
    Dirichlet of ``concentration`` (one entry per token id); the ``motif`` bigram, unless
    ``None``, is planted at a random position in half of the sequences."""
    cdf = rng.dirichlet(concentration, size=n).cumsum(1)
    cdf[:, -1] = 1.0
    u = rng.random((n, length))
    tokens = (u[:, :, None] > cdf[:, None, :]).sum(-1)
    if motif is not None:
        plant = np.flatnonzero(rng.random(n) < 0.5)
        where = rng.integers(0, length - 1, size=len(plant))
        tokens[plant, where] = motif[0]
        tokens[plant, where + 1] = motif[1]
    return tokens.astype(np.int64)


def _targets(
    tokens: np.ndarray, vocab: int, motif: tuple[int, int], train_rows: np.ndarray
) -> dict[str, np.ndarray]:
    """Every task's targets for every sequence (see the module docstring)."""
    n, length = tokens.shape
    counts = np.stack([(tokens == v).sum(1) for v in range(vocab)], axis=1)
    bigram = (tokens[:, :-1] == motif[0]) & (tokens[:, 1:] == motif[1])
    prev = np.concatenate([np.zeros((n, 1), np.int64), tokens[:, :-1] + 1], axis=1)
    # repeat[i, t] = token t equals some earlier token: compare with every earlier position.
    same = tokens[:, :, None] == tokens[:, None, :]
    earlier = np.tril(np.ones((length, length), bool), k=-1)
    return {
        "majority": counts.argmax(1),
        "motif": bigram.any(1).astype(np.int64),
        "count": standardize(counts[:, 0].astype(np.float64), train_rows),
        "prev_token": prev,
        "repeat": (same & earlier).any(2).astype(np.int64),
    }
