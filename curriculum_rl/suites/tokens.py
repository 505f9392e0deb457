"""Tokens: counting tasks on a small attention-only encoder.

Inputs are sequences of ``length`` tokens from a vocabulary of ``vocab`` ids (stored as
floats, as the trainer keeps every input in float32); each sequence draws its own token
frequencies from a Dirichlet of concentration ``concentration`` (below 1: a few tokens
dominate, so counts spread widely). The trunk is an :class:`AttentionEncoder`: token and
position embeddings and ``layers`` pre-norm blocks of single-head self-attention and an
MLP, with no convolution (unlike the ``sequence`` validation suite's encoder), so every
task must be solved by attention. Regression targets are raw counts, not standardised:

===============  ==============  ===  ==================================================
task             kind            out  what (for vocab 10, length 10: mean, variance)
===============  ==============  ===  ==================================================
``distinct``     regression      1    number of distinct tokens (4.6, 1.3)
``top_count``    regression      1    occurrences of the most frequent token (4.5, 2.0)
``token_sum``    regression      1    sum of the token ids (44, 2.0e2): the large scale
``first_count``  classification  6    occurrences of the first token, 1 to 6 or more;
                                      needs every position to compare with the first
``frequency``    tagging         4    per token: how often its id occurs in the whole
                                      sequence, 1 to 4 or more (attention matches ids)
===============  ==============  ===  ==================================================

Sequence-level tasks read the token-averaged features, the tagging task the per-token
features (the trainer does both). Every seed draws its own sequences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from curriculum_rl.suites.base import ModuleBody, SuiteInstance, TaskData, TaskSpec
from curriculum_rl.suites.selection import as_classes, as_regression, mark_auxiliary, select_tasks

SPLITS = ("train", "val", "test")
FIRST_COUNT_CLASSES = 6
FREQUENCY_CLASSES = 4


class AttentionBlock(nn.Module):
    """Pre-norm residual single-head self-attention, then a pre-norm residual MLP."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.norm1(h)).chunk(3, dim=-1)
        scores = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])
        h = h + self.out(torch.softmax(scores, dim=-1) @ v)
        return h + self.mlp(self.norm2(h))


class AttentionEncoder(nn.Module):
    """(B, L) token ids as floats -> (B, L, dim) per-token features. Plain,
    vmap-compatible ops only: no in-place updates, no data-dependent control flow."""

    def __init__(self, vocab: int, length: int, dim: int = 32, layers: int = 1) -> None:
        super().__init__()
        self.vocab = vocab
        self.embed = nn.Embedding(vocab, dim)
        self.position = nn.Parameter(0.1 * torch.randn(length, dim))
        self.blocks = nn.ModuleList(AttentionBlock(dim) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The trainer pads evaluation chunks with zeros (valid ids); clamping keeps any
        # stray float from indexing outside the table.
        h = self.embed(x.long().clamp(0, self.vocab - 1)) + self.position
        for block in self.blocks:
            h = block(h)
        return self.norm(h)


@dataclass(frozen=True)
class AttentionEncoderFactory:
    """Builds an :class:`AttentionEncoder`; a frozen dataclass so equal settings give
    equal bodies (the trainer batches only runs whose bodies compare equal)."""

    vocab: int
    length: int
    dim: int = 32
    layers: int = 1

    def __call__(self) -> nn.Module:
        return AttentionEncoder(self.vocab, self.length, self.dim, self.layers)


@dataclass(frozen=True)
class TokensSuite:
    """Counting tasks of raw scale on an attention-only encoder (module docstring).

    Attributes:
        tasks: task names to include (any subset of :meth:`all_tasks`); ``None`` for all.
        auxiliary: task names that only help (not scored); ``None``: none.
        vocab: number of token ids (>= 2). length: tokens per sequence (>= 2).
        concentration: Dirichlet concentration of each sequence's token frequencies.
        n_train, n_val, n_test: sequences per split (shared by every task).
        dim, layers: width and depth of the encoder.
    """

    name: str = "tokens"
    tasks: tuple[str, ...] | None = None
    auxiliary: tuple[str, ...] | None = None
    vocab: int = 10
    length: int = 10
    concentration: float = 0.5
    n_train: int = 2000
    n_val: int = 300
    n_test: int = 1000
    dim: int = 24
    layers: int = 1

    def __post_init__(self) -> None:
        if self.vocab < 2 or self.length < 2:
            raise ValueError(f"suite {self.name!r}: need vocab >= 2 and length >= 2")
        if not self.concentration > 0:
            raise ValueError(f"suite {self.name!r}: concentration must be > 0")
        if min(self.n_train, self.n_val, self.n_test, self.dim, self.layers) < 1:
            raise ValueError(f"suite {self.name!r}: sizes, dim and layers must be >= 1")
        self.describe()  # fail early on a bad task name or auxiliary choice

    def all_tasks(self) -> tuple[TaskSpec, ...]:
        """Every task the suite offers, in the default order."""
        return (
            TaskSpec("distinct", "regression", 1, "mse"),
            TaskSpec("top_count", "regression", 1, "mse"),
            TaskSpec("token_sum", "regression", 1, "mse"),
            TaskSpec("first_count", "classification", FIRST_COUNT_CLASSES, "accuracy"),
            TaskSpec("frequency", "tagging", FREQUENCY_CLASSES, "token_accuracy"),
        )

    def describe(self) -> list[TaskSpec]:
        specs = select_tasks(self.name, self.all_tasks(), self.tasks)
        return mark_auxiliary(self.name, specs, self.auxiliary)

    def sample(self, seed: int) -> SuiteInstance:
        rng = np.random.default_rng(seed)
        sizes = (self.n_train, self.n_val, self.n_test)
        tokens = self._draw_tokens(sum(sizes), rng)
        bounds = np.cumsum((0, *sizes))
        rows = {s: slice(bounds[i], bounds[i + 1]) for i, s in enumerate(SPLITS)}
        targets = _targets(tokens, self.vocab)
        x = torch.as_tensor(tokens, dtype=torch.float32)
        specs = self.describe()
        data = [
            TaskData(*(t for s in SPLITS for t in (x[rows[s]], targets[spec.name][rows[s]])))
            for spec in specs
        ]
        factory = AttentionEncoderFactory(self.vocab, self.length, self.dim, self.layers)
        return SuiteInstance(
            name=self.name,
            tasks=specs,
            data=data,
            body=ModuleBody(factory, self.dim),
            input_shape=(self.length,),
            info={"seed": seed, "vocab": self.vocab, "length": self.length, "sizes": list(sizes)},
        )

    def _draw_tokens(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, length) int tokens, each row from its own Dirichlet token frequencies."""
        probs = rng.dirichlet(np.full(self.vocab, self.concentration), size=n)
        cdf = probs.cumsum(1)
        cdf[:, -1] = 1.0
        u = rng.random((n, self.length))
        return (u[:, :, None] > cdf[:, None, :]).sum(-1).astype(np.int64)


def _targets(tokens: np.ndarray, vocab: int) -> dict[str, torch.Tensor]:
    """Every task's targets for every sequence (see the module docstring)."""
    counts = np.stack([(tokens == v).sum(1) for v in range(vocab)], axis=1)
    occurrences = np.take_along_axis(counts, tokens, axis=1)  # (n, L): count of each token
    return {
        "distinct": as_regression((counts > 0).sum(1)),
        "top_count": as_regression(counts.max(1)),
        "token_sum": as_regression(tokens.sum(1)),
        "first_count": as_classes(np.minimum(occurrences[:, 0], FIRST_COUNT_CLASSES) - 1),
        "frequency": as_classes(np.minimum(occurrences, FREQUENCY_CLASSES) - 1),
    }
