"""Where a benchmark's units run: in this process, or as Ray tasks on a cluster.

An executor maps a function over calls and yields each result with its call's index as
soon as it is ready; :mod:`curriculum_rl.benchmark.run` stores every run as its unit
returns, so whatever stops a benchmark (Ctrl-C, a lost driver, a unit that fails) loses
only the units still running, and the rerun computes only what is missing.

* :class:`LocalExecutor`: one call after another, in order, in this process (the
  default; per-decision progress on the bar).
* :class:`RayExecutor` (``--executor ray``, ``pip install 'curriculum-rl[ray]'``): each
  call a Ray task of one CPU and one torch thread (and one GPU with device ``cuda``),
  on a local Ray or the cluster at ``--address``. Objects many calls need (the suite
  instances) are put in Ray's object store once. A task on a node that dies is rerun
  elsewhere by Ray (:data:`RETRIES` times); a task that raises stops the benchmark with
  its error, after the units that finished before it were stored.

Both run the same :func:`~curriculum_rl.benchmark.run.run_unit`, so the results are the
same bit for bit on the same machine (the local executor run with one torch thread, as a
Ray task is: ``OMP_NUM_THREADS=1``; other thread counts round differently,
README "Guarantees"). Policy files and suite files named on the command line must be
readable at the same path on every node of a cluster (a shared file system), and every
node needs the same curriculum-rl installed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from types import ModuleType
from typing import Any, Protocol

import torch

from curriculum_rl.benchmark.config import BenchmarkConfig
from curriculum_rl.cluster import import_ray, ray_cluster, worker_resources

RETRIES = 3
"""Times Ray reruns a task whose worker or node died (not one that raised)."""

Progress = Callable[[int], Callable[[int, int], None]]
"""``progress(i)``: the per-decision callback of call ``i`` (``on_decision(done, total)``)."""


class Executor(Protocol):
    """Runs calls of one function, yielding ``(index, result)`` as each finishes; a
    context manager around its resources (a Ray connection)."""

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...

    def share(self, value: Any) -> Any:
        """``value`` as an argument many calls will get (sent once where that matters)."""

    def map_unordered(
        self, fn: Callable[..., Any], calls: Sequence[tuple], progress: Progress | None = None
    ) -> Iterator[tuple[int, Any]]:
        """``(i, fn(*calls[i]))`` for every call, in the order they finish."""


class LocalExecutor:
    """Every call in this process, one after another, in order; ``fn`` gets the
    per-decision callback of ``progress`` as ``on_decision``."""

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def share(self, value: Any) -> Any:
        return value

    def map_unordered(
        self, fn: Callable[..., Any], calls: Sequence[tuple], progress: Progress | None = None
    ) -> Iterator[tuple[int, Any]]:
        for i, args in enumerate(calls):
            kwargs = {"on_decision": progress(i)} if progress else {}
            yield i, fn(*args, **kwargs)


class RayExecutor:
    """Every call a Ray task, at most ``workers`` at once (``None``: as many as the
    cluster schedules). Without ``address`` it starts a local Ray of ``workers`` CPUs
    (``None``: all of them) for the duration of the ``with`` block.

    Raises:
        ValueError: Ray is not installed (at construction, before any work), the
            cluster cannot be reached, or device ``cuda`` on a cluster without a GPU.
    """

    def __init__(self, address: str | None, workers: int | None, device: str) -> None:
        import_ray("--executor ray")
        self.address, self.workers, self.device = address, workers, device
        self._stack = ExitStack()
        self._ray: ModuleType | None = None
        self._resources: dict[str, float] = {}

    def __enter__(self) -> RayExecutor:
        ray = self._stack.enter_context(ray_cluster("--executor ray", self.address, self.workers))
        try:
            # One at a time must fit; the others queue for the CPUs (and GPUs).
            self._resources = worker_resources(ray, self.device, 1)
        except BaseException:
            self._stack.close()
            raise
        self._ray = ray
        return self

    def __exit__(self, *exc: object) -> None:
        self._ray = None
        self._stack.close()

    def share(self, value: Any) -> Any:
        return self._connected().put(value)

    def map_unordered(
        self, fn: Callable[..., Any], calls: Sequence[tuple], progress: Progress | None = None
    ) -> Iterator[tuple[int, Any]]:
        """As the protocol says; ``progress`` is not called (a task reports only when it
        returns). Leaving the iteration early cancels the tasks still running."""
        ray = self._connected()
        task = ray.remote(_in_worker).options(**self._resources, max_retries=RETRIES)
        window = self.workers or len(calls)
        queue = iter(enumerate(calls))
        pending: dict[Any, int] = {}
        try:
            while True:
                for i, args in itertools.islice(queue, window - len(pending)):
                    pending[task.remote(fn, *args)] = i
                if not pending:
                    return
                (ready,), _ = ray.wait(list(pending), num_returns=1)
                i = pending.pop(ready)
                yield i, ray.get(ready)
        finally:
            for ref in pending:
                ray.cancel(ref)

    def _connected(self) -> ModuleType:
        if self._ray is None:
            raise RuntimeError("use a RayExecutor inside `with executor:`")
        return self._ray


def _in_worker(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a Ray worker, on one thread for the one CPU it reserved: more
    would oversubscribe the node (and one thread gives the numbers of the local executor
    run with ``OMP_NUM_THREADS=1``)."""
    torch.set_num_threads(1)
    return fn(*args)


def make_executor(config: BenchmarkConfig) -> LocalExecutor | RayExecutor:
    """The executor ``config`` asks for; a missing Ray is reported here, before any work."""
    if config.executor == "ray":
        return RayExecutor(config.address, config.workers, config.trainer.device)
    return LocalExecutor()
