"""Ray, the optional engine behind ``benchmark --executor ray`` and ``train --workers``.

The only module that imports Ray (an import-linter contract), and only when a command
asks for it: the library and every command without those options work without Ray
installed (``pip install 'curriculum-rl[ray]'`` adds it). Both users connect the same
way: to the cluster at ``address`` (``auto``: the one started on this machine with
``ray start``; ``HOST:PORT``; ``ray://HOST:PORT``), or else to a local Ray of as many
CPUs as they need, which lives as long as the command. A connection the caller already
made (a script of its own, a test) is used as it is and left open.

A stdlib leaf: Ray is imported inside the functions, so importing this module costs
nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

INSTALL_HINT = "pip install 'curriculum-rl[ray]'"


def import_ray(purpose: str) -> ModuleType:
    """The ``ray`` module, or a ``ValueError`` (what the CLI reports as a sentence) saying
    that ``purpose`` needs Ray and how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError(
            f"{purpose} runs on Ray, which is not installed here; install it with "
            f"`{INSTALL_HINT}`, or run without that option (in this process)"
        ) from None
    return ray


@contextmanager
def ray_cluster(purpose: str, address: str | None, num_cpus: int | None) -> Iterator[ModuleType]:
    """Connected to Ray while the block runs: to ``address`` when given, else to a fresh
    local Ray of ``num_cpus`` CPUs (``None``: all of this machine's), shut down at the
    end. An existing connection is reused and left open.

    Raises:
        ValueError: Ray is missing, or the cluster at ``address`` cannot be reached.
    """
    ray = import_ray(purpose)
    if ray.is_initialized():
        yield ray
        return
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING)
    except ConnectionError as err:
        raise ValueError(
            f"{purpose}: cannot reach a Ray cluster at {address!r} ({err}); start one with "
            "`ray start --head` (then --address auto on that machine), or leave --address "
            "out to run on a local Ray"
        ) from None
    try:
        yield ray
    finally:
        ray.shutdown()


def worker_resources(ray: ModuleType, device: str, together: int) -> dict[str, float]:
    """What each Ray worker reserves (``.options(**...)``) for a trainer on ``device``: one
    CPU, and one GPU for ``cuda`` (a batched trainer fills a GPU by itself: raise its runs
    per trainer to use more of one). With ``auto`` or ``cpu`` no GPU, and ``auto`` means
    CPU on a worker (Ray hides the GPUs from a worker that reserved none).

    Raises:
        ValueError: the cluster lacks the CPUs or GPUs for ``together`` workers that must
            run at once (they would wait for each other forever).
    """
    needs = {"CPU": 1.0, "GPU": 1.0 if device.startswith("cuda") else 0.0}
    have = ray.cluster_resources()
    for kind, each in needs.items():
        if each and have.get(kind, 0) < each * together:
            raise ValueError(
                f"{together} Ray worker(s) must run at once, each with one {kind} (device "
                f"{device!r}), but the cluster has {have.get(kind, 0):g}; use fewer workers"
                + (" or device cpu" if kind == "GPU" else ", or a larger cluster")
            )
    return {"num_cpus": needs["CPU"], "num_gpus": needs["GPU"]}
