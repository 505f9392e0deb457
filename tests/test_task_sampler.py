"""TaskBatchSampler: per-batch task counts within 1 of B p_k, every example once per pass
of its task, probabilities that take effect at the next batch, exact resume, one stream
per rank, and a DataLoader that uses it."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader, TensorDataset

from curriculum_rl.integrations import TaskBatchSampler

SIZES = [40, 25, 7]


def tasks_of(batch: list[int]) -> torch.Tensor:
    """Task of each index of a ConcatDataset of SIZES."""
    edges = torch.tensor(SIZES).cumsum(0)
    return torch.bucketize(torch.tensor(batch), edges, right=True)


def test_batches_follow_the_probabilities_within_one_example():
    sampler = TaskBatchSampler.from_sizes(SIZES, batch_size=16, num_batches=50)
    p = torch.tensor([0.55, 0.3, 0.15])
    sampler.set_probabilities(p)
    for batch in sampler:
        counts = torch.bincount(tasks_of(batch), minlength=3)
        assert len(batch) == 16 and ((counts - 16 * p).abs() < 1).all(), counts


def test_each_task_walks_its_examples_once_per_pass():
    sampler = TaskBatchSampler.from_sizes(SIZES, batch_size=6, num_batches=14, seed=1)
    drawn = torch.cat([torch.tensor(b) for b in sampler])
    small = drawn[tasks_of(drawn.tolist()) == 2]  # 14 batches x 2 = 28 = 4 passes of 7
    for first in range(0, 28, 7):
        assert sorted(small[first : first + 7].tolist()) == list(range(65, 72))


def test_new_probabilities_apply_from_the_next_batch():
    sampler = TaskBatchSampler.from_sizes(SIZES, batch_size=10, num_batches=2)
    batches = iter(sampler)
    next(batches)
    sampler.set_probabilities([0, 0, 1])
    assert (tasks_of(next(batches)) == 2).all()
    with pytest.raises(ValueError, match="finite"):
        sampler.set_probabilities([1, -1, 0])
    with pytest.raises(ValueError, match="probability 0"):
        sampler.set_probabilities([0, 0, 0])


def test_state_dict_resumes_the_same_batches(tmp_path):
    sampler = TaskBatchSampler.from_sizes(SIZES, batch_size=8, num_batches=30, seed=4)
    sampler.set_probabilities([0.2, 0.3, 0.5])
    stream = iter(sampler)
    for _ in range(11):
        next(stream)
    torch.save(sampler.state_dict(), tmp_path / "s.pt")
    expected = [next(stream) for _ in range(12)]
    resumed = TaskBatchSampler.from_sizes(SIZES, batch_size=8, num_batches=12, seed=4)
    resumed.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    assert list(resumed) == expected


def test_ranks_draw_their_own_batches_even_from_rank0s_checkpoint():
    ranks = [TaskBatchSampler.from_sizes(SIZES, 8, num_batches=5, rank=r) for r in (0, 1)]
    assert list(ranks[0]) != list(ranks[1])
    state = ranks[0].state_dict()
    for sampler in ranks:
        sampler.load_state_dict(state)
    assert list(ranks[0]) != list(ranks[1])
    assert ranks[1].drawn == ranks[0].drawn == 10


def test_a_task_column_and_a_dataloader():
    column = torch.tensor([1, 0, 2, 1, 1, 0, 2, 0, 1, 1])
    data = TensorDataset(torch.arange(10), column)
    sampler = TaskBatchSampler(column, batch_size=4, num_batches=6)
    loader = DataLoader(data, batch_sampler=sampler)
    assert len(loader) == 6
    for index, task in loader:
        torch.testing.assert_close(task, column[index])
    concat = ConcatDataset([TensorDataset(torch.zeros(n)) for n in SIZES])
    assert len(DataLoader(concat, batch_sampler=TaskBatchSampler.from_sizes(SIZES, 5))) == 15
    with pytest.raises(ValueError, match=r"tasks \[1\] have no examples"):
        TaskBatchSampler([0, 2, 2], batch_size=2)


def test_a_checkpoint_takes_back_the_batches_a_loader_drew_ahead():
    """Lightning and accelerate fetch batches before training uses them: the checkpoint is
    the state after the batches used, and the ones drawn ahead come back unchanged, with
    the probabilities they were drawn with."""
    whole = TaskBatchSampler.from_sizes(SIZES, 8, seed=2)
    drawn = [whole.next_batch() for _ in range(7)]  # training has used 5, the loader is ahead
    whole.set_probabilities([0.6, 0.3, 0.1])  # a decision at training step 5
    drawn += [whole.next_batch() for _ in range(5)]

    first = TaskBatchSampler.from_sizes(SIZES, 8, seed=2)
    used = [first.next_batch() for _ in range(7)][:5]
    first.set_probabilities([0.6, 0.3, 0.1])
    state = first.state_dict(consumed=5)
    resumed = TaskBatchSampler.from_sizes(SIZES, 8, seed=2)
    resumed.load_state_dict(state)
    assert used + [resumed.next_batch() for _ in range(7)] == drawn
    assert torch.bincount(tasks_of(drawn[6]), minlength=3).tolist() != [5, 2, 1]  # old p
    with pytest.raises(ValueError, match="go back"):
        first.state_dict(consumed=-100)
