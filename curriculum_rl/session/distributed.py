"""The session's collectives under ``torch.distributed``: sums over ranks and rank 0's
decision, on the host.

Under multi-process training every rank holds its own per-task losses. The session sums
what it has fetched to the host (its one device-to-host copy per decision) over the ranks,
every rank folds the same numbers into its own :class:`~curriculum_rl.loop.DecisionLoop`
and controller (so any rank's checkpoint is valid and per-step hooks stay identical), and
the decision put in force is rank 0's, broadcast. The values are a few dozen floats
already on the host, so the collectives run on the CPU over a gloo process group: the
default group when its backend serves CPU tensors, else one created on first use (every
rank reaches that first use at the same call, as collectives require). Without an
initialised process group, or with one process, every method is the identity.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world_size() -> int:
    """Processes in the default group; 1 without an initialised ``torch.distributed``."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


class Collective:
    """Host-side sums and broadcasts over all ranks (the identity in one process)."""

    def __init__(self) -> None:
        self._group: dist.ProcessGroup | None = None
        self._group_ready = False

    @property
    def size(self) -> int:
        return world_size()

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` (on the host) summed over ranks; the same tensor in one process."""
        if self.size == 1:
            return values
        total = values.clone()
        dist.all_reduce(total, group=self._cpu_group())
        return total

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` averaged over ranks."""
        return self.sum(values) / self.size if self.size > 1 else values

    def from_rank0(self, values: torch.Tensor) -> torch.Tensor:
        """Rank 0's ``values`` on every rank."""
        if self.size == 1:
            return values
        shared = values.clone()
        dist.broadcast(shared, src=0, group=self._cpu_group())
        return shared

    def _cpu_group(self) -> dist.ProcessGroup | None:
        if not self._group_ready:
            # "gloo", or a multi-device spec such as "cpu:gloo,cuda:nccl"
            serves_cpu = "gloo" in str(dist.get_backend())
            self._group = None if serves_cpu else dist.new_group(backend="gloo")
            self._group_ready = True
        return self._group
