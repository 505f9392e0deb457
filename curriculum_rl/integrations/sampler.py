"""A batch sampler whose task mix the controller sets: :class:`TaskBatchSampler`.

Each batch draws ``round(B p_k)`` examples of task k, within 1 of ``B p_k`` (systematic
sampling over the batch's slots, as the batched trainer does), and walks each task's
examples in a fresh random order per pass, so no example is repeated before its task's
data is used up. The probabilities change between decisions
(:meth:`TaskBatchSampler.set_probabilities`); the next batch drawn follows them (with
``num_workers > 0`` a DataLoader draws a few batches ahead: ``prefetch_factor x
num_workers`` batches still follow the old ones). It is a plain
``torch.utils.data.Sampler`` of index lists, usable as ``DataLoader(batch_sampler=...)``
in a plain loop, Lightning or Hugging Face, and checkpointable: ``state_dict(consumed=n)``
is its state after the ``n`` batches training has used, even when the loader has already
drawn a few more (Lightning and accelerate fetch one ahead), so a resumed run draws the
very batches the uninterrupted run trained on.

Under ``torch.distributed`` each rank draws its own batches (its own random stream) with
the same probabilities: give it to the DataLoader as is, not wrapped in a
``DistributedSampler`` (in Lightning: ``Trainer(use_distributed_sampler=False)``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Sampler

HISTORY = 64  # batches a loader may draw ahead of training and still be checkpointed


@dataclass
class _Draw:
    """The sampler's state before one draw, and the probabilities that draw used."""

    index: int
    generator: torch.Tensor
    cursors: list[int]
    orders: list[torch.Tensor]  # not copied: a task's order is replaced, never changed
    probabilities: torch.Tensor


class TaskBatchSampler(Sampler[list[int]]):
    """Batches of dataset indices, mixing tasks in the proportions last set.

    Args:
        task_ids: the task of every example of the dataset (a task column), ints in
            [0, K). For several datasets concatenated (``ConcatDataset``), use
            :meth:`from_sizes`.
        batch_size: examples per batch (per process).
        num_batches: batches per pass over the sampler (what ``len()`` reports; a
            DataLoader epoch); by default one dataset's worth, ``ceil(N / batch_size)``.
        seed: seeds the random streams (each rank derives its own from it).
        rank: this process's rank, for its stream; by default the ``torch.distributed``
            rank when initialised (at the first batch), else 0.
    """

    def __init__(
        self,
        task_ids: Sequence[int] | torch.Tensor | np.ndarray,
        batch_size: int,
        num_batches: int | None = None,
        seed: int = 0,
        rank: int | None = None,
    ) -> None:
        tasks = torch.as_tensor(np.asarray(task_ids), dtype=torch.long).flatten()
        if tasks.numel() == 0 or int(tasks.min()) < 0:
            raise ValueError("task_ids must be a non-empty list of task indices >= 0")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        num_tasks = int(tasks.max()) + 1
        self.members = [torch.nonzero(tasks == k).flatten() for k in range(num_tasks)]
        empty = [k for k, m in enumerate(self.members) if len(m) == 0]
        if empty:
            raise ValueError(f"tasks {empty} have no examples; task ids must be 0..K-1, all used")
        self.batch_size = batch_size
        self.num_batches = num_batches or -(-tasks.numel() // batch_size)
        self.seed, self.rank = seed, rank
        self.probabilities = torch.full((num_tasks,), 1.0 / num_tasks, dtype=torch.float64)
        self.drawn = 0  # batches drawn so far, by this rank
        self._generator: torch.Generator | None = None
        self._orders: list[torch.Tensor] = [torch.empty(0, dtype=torch.long)] * num_tasks
        self._cursors = [0] * num_tasks
        self._history: deque[_Draw] = deque(maxlen=HISTORY)
        self._replay: deque[torch.Tensor] = deque()  # probabilities of in-flight draws

    @classmethod
    def from_sizes(cls, sizes: Sequence[int], batch_size: int, **kwargs) -> TaskBatchSampler:
        """For ``ConcatDataset([task_0, task_1, ...])``: the datasets' lengths, in order."""
        ids = np.repeat(np.arange(len(sizes)), np.asarray(sizes, dtype=np.int64))
        return cls(ids, batch_size, **kwargs)

    @property
    def num_tasks(self) -> int:
        return len(self.members)

    def set_probabilities(self, probabilities: Sequence[float] | torch.Tensor) -> None:
        """Sampling probabilities (K,) for the next batches (renormalised to sum 1)."""
        p = torch.as_tensor(np.asarray(probabilities, dtype=np.float64)).flatten()
        if p.shape != (self.num_tasks,) or not torch.isfinite(p).all() or (p < 0).any():
            raise ValueError(
                f"probabilities must be {self.num_tasks} finite numbers >= 0, got {p.tolist()}"
            )
        if p.sum() <= 0:
            raise ValueError("probabilities give every task probability 0")
        self.probabilities = p / p.sum()

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        for _ in range(self.num_batches):
            yield self.next_batch()

    def next_batch(self) -> list[int]:
        """One batch of indices; task k gets ``B p_k`` of them, rounded up or down."""
        gen = self._stream()
        probabilities = self._replay.popleft() if self._replay else self.probabilities
        self._history.append(
            _Draw(
                self.drawn, gen.get_state(), list(self._cursors), list(self._orders), probabilities
            )
        )
        offset = float(torch.rand((), generator=gen, dtype=torch.float64))
        counts = self.task_counts(probabilities, offset)
        parts = [self._take(k, int(c)) for k, c in enumerate(counts.tolist()) if c > 0]
        self.drawn += 1
        return torch.cat(parts).tolist()

    def task_counts(self, probabilities: torch.Tensor, offset: float) -> torch.Tensor:
        """(K,) examples per task for one batch: systematic sampling of the B slots at
        ``(i + offset) / B`` against the cumulative probabilities."""
        grid = (torch.arange(self.batch_size, dtype=torch.float64) + offset) / self.batch_size
        cdf = probabilities.cumsum(0)
        cdf[-1] = 1.0 + 1e-9  # round-off at the top end
        slots = torch.searchsorted(cdf, grid).clamp_max(self.num_tasks - 1)
        return torch.bincount(slots, minlength=self.num_tasks)

    def _take(self, task: int, count: int) -> torch.Tensor:
        """The next ``count`` examples of ``task``, reshuffling its order at each pass."""
        taken = []
        while count > 0:
            if self._cursors[task] >= len(self._orders[task]):
                members = self.members[task]
                self._orders[task] = members[torch.randperm(len(members), generator=self._stream())]
                self._cursors[task] = 0
            start = self._cursors[task]
            chunk = self._orders[task][start : start + count]
            self._cursors[task] += len(chunk)
            count -= len(chunk)
            taken.append(chunk)
        return torch.cat(taken)

    def _stream(self) -> torch.Generator:
        if self._generator is None:
            self._generator = self._seeded(self.seed, self._my_rank())
        return self._generator

    def _my_rank(self) -> int:
        if self.rank is None:
            initialised = dist.is_available() and dist.is_initialized()
            self.rank = dist.get_rank() if initialised else 0
        return self.rank

    @staticmethod
    def _seeded(*entropy: int) -> torch.Generator:
        state = np.random.SeedSequence(list(entropy)).generate_state(1, dtype=np.uint64)
        return torch.Generator().manual_seed(int(state[0] % 2**63))

    def state_dict(self, consumed: int | None = None) -> dict[str, torch.Tensor]:
        """The random stream, the task orders and positions, and the probabilities.

        Args:
            consumed: batches training has used so far (all drawn ones by default); the
                state is the one before the first batch drawn but not yet used, and those
                batches are drawn again, with the probabilities they had, after a resume.
        """
        consumed = self.drawn if consumed is None else consumed
        if consumed >= self.drawn:
            generator, cursors, orders = self._stream().get_state(), self._cursors, self._orders
            replay = list(self._replay)
        else:
            ahead = [d for d in self._history if d.index >= consumed]
            if not ahead or ahead[0].index != consumed:
                raise ValueError(
                    f"the loader drew {self.drawn - consumed} batches beyond the {consumed} "
                    f"used; a checkpoint can only go back {HISTORY}"
                )
            generator, cursors, orders = ahead[0].generator, ahead[0].cursors, ahead[0].orders
            replay = [d.probabilities for d in ahead] + list(self._replay)
        state = {
            "generator": generator.clone(),
            "rank": torch.tensor(self._my_rank()),
            "drawn": torch.tensor(min(consumed, self.drawn)),
            "probabilities": self.probabilities.clone(),
            "replay": torch.stack(replay) if replay else torch.zeros(0, self.num_tasks),
            "cursors": torch.tensor(cursors),
        }
        for k, order in enumerate(orders):
            state[f"order.{k}"] = order.clone()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Continue from ``state``. A state saved by another rank (frameworks save rank
        0's) gives its probabilities and position only: this rank continues on a stream of
        its own, so ranks never draw the same batches."""
        if state["probabilities"].shape != (self.num_tasks,):
            raise ValueError(
                f"the sampler state is for {state['probabilities'].shape[0]} tasks, this "
                f"sampler has {self.num_tasks}"
            )
        self.probabilities = state["probabilities"].double().clone()
        self.drawn = int(state["drawn"])
        self._replay = deque(row.double().clone() for row in state["replay"])
        self._history.clear()
        if int(state["rank"]) != self._my_rank():
            self._generator = self._seeded(self.seed, self.rank, self.drawn)
            self._orders = [torch.empty(0, dtype=torch.long)] * self.num_tasks
            self._cursors = [0] * self.num_tasks
            return
        self._generator = torch.Generator()
        self._generator.set_state(state["generator"])
        self._cursors = [int(c) for c in state["cursors"].tolist()]
        self._orders = [state[f"order.{k}"].long().clone() for k in range(self.num_tasks)]
