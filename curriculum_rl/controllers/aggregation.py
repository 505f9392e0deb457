"""Gradient-aggregation baselines (Jacobian descent) from ``torchjd.aggregation``.

Per step and per run, the Jacobian of the run's K task losses with respect to its shared
parameters (body and last shared layer, flattened: one row per task) is aggregated into
one update direction by a torchjd aggregator (UPGrad, MGDA, PCGrad, ...); the task heads
get ordinary gradients of ``sum_k w_k L_k``. This is what ``torchjd.autojac.mtl_backward``
followed by ``jac_to_grad`` computes for one model; they cannot be used directly here
because our parameters are stacked over runs (leading dim N) and would make one Jacobian
of all N x K losses, which an aggregator would mix across runs. Instead all runs' rows
come from K backward passes (run n's gradient of ``L_{n,k}`` is slice n of the gradient of
``sum_n L_{n,k}``), then each run's (K_n, D) Jacobian is aggregated on its own.

Aggregators that need solvers outside the core dependencies (UPGrad: quadprog; CAGrad,
Nash-MTL: cvxpy) are installed with ``pip install "curriculum-rl[aggregators]"``; without
them, constructing their controller raises an ``ImportError`` that says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.util import find_spec

import torch
from torchjd.aggregation import (
    IMTLG,
    MGDA,
    Aggregator,
    AlignedMTL,
    CAGrad,
    NashMTL,
    PCGrad,
    UPGrad,
)

from curriculum_rl.controllers.base import Controller, Decision, RunContext, uniform_decision
from curriculum_rl.controllers.hooks import per_task_grads, run_generator
from curriculum_rl.trainer import StepContext, StepHook
from curriculum_rl.trainer.signals import Signals

INSTALL_HINT = 'install them with: pip install "curriculum-rl[aggregators]"'


class AggregatorHook:
    """Step hook: per-run Jacobian of the task losses on the shared parameters, aggregated
    by that run's own aggregator; heads get the gradient of ``sum_k w_k L_k``.

    Aggregators that draw random numbers (PCGrad's projection order) use the global torch
    RNG; each call runs inside a forked RNG seeded from the run's own generator, so runs
    are reproducible and independent of each other.
    """

    def __init__(
        self, aggregators: Sequence[Aggregator], generators: Sequence[torch.Generator]
    ) -> None:
        self.aggregators = list(aggregators)
        self.generators = list(generators)

    def backward(
        self, task_losses: torch.Tensor, weights: torch.Tensor, context: StepContext
    ) -> None:
        mask, active = context.mask, context.active.tolist()
        shared = list(context.shared_params)
        rows = per_task_grads(task_losses, shared, mask)
        heads = list(context.head_params)
        head_grads = torch.autograd.grad((weights * task_losses).sum(), heads, allow_unused=True)
        for p, g in zip(heads, head_grads, strict=True):
            p.grad = torch.zeros_like(p) if g is None else g
        for p in shared:
            p.grad = torch.zeros_like(p)
        for n in range(task_losses.shape[0]):
            if active[n]:
                self._aggregate_run(n, rows, mask[n], shared)

    def _aggregate_run(
        self,
        run: int,
        rows: list[list[torch.Tensor] | None],
        valid: torch.Tensor,
        shared: list[torch.Tensor],
    ) -> None:
        """Aggregate run ``run``'s (K_n, D) Jacobian and write it into ``.grad[run]``."""
        tasks = [k for k in range(valid.shape[0]) if valid[k]]
        jacobian = torch.stack([torch.cat([g[run].flatten() for g in rows[k]]) for k in tasks])
        seed = int(torch.randint(2**62, (1,), generator=self.generators[run]))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            direction = self.aggregators[run](jacobian)
        offset = 0
        for p in shared:
            size = p[run].numel()
            p.grad[run] = direction[offset : offset + size].view_as(p[run])
            offset += size


@dataclass(frozen=True)
class AggregatorSpec:
    """A registered aggregator: how to build it for K tasks, and what it needs."""

    label: str
    build: Callable[[int], Aggregator]
    requires: tuple[str, ...] = ()
    reference: str = ""

    def missing(self) -> list[str]:
        return [m for m in self.requires if find_spec(m) is None]


AGGREGATORS: dict[str, AggregatorSpec] = {
    "upgrad": AggregatorSpec(
        "UPGrad",
        lambda k: UPGrad(),
        ("numpy", "qpsolvers", "quadprog"),
        "Quinton & Rey 2024, Jacobian Descent for Multi-Objective Optimization",
    ),
    "mgda": AggregatorSpec(
        "MGDA",
        lambda k: MGDA(),
        (),
        "Sener & Koltun 2018, Multi-Task Learning as Multi-Objective Optimization",
    ),
    "pcgrad": AggregatorSpec(
        "PCGrad", lambda k: PCGrad(), (), "Yu et al. 2020, Gradient Surgery for Multi-Task Learning"
    ),
    "cagrad": AggregatorSpec(
        "CAGrad",
        lambda k: CAGrad(c=0.4),
        ("numpy", "cvxpy", "clarabel"),
        "Liu et al. 2021, Conflict-Averse Gradient Descent for Multi-task Learning (c = 0.4)",
    ),
    "imtl-g": AggregatorSpec(
        "IMTL-G", lambda k: IMTLG(), (), "Liu et al. 2021, Towards Impartial Multi-task Learning"
    ),
    "nash-mtl": AggregatorSpec(
        "Nash-MTL",
        lambda k: NashMTL(n_tasks=k, max_norm=1.0, update_weights_every=1, optim_niter=20),
        ("numpy", "cvxpy", "ecos"),
        "Navon et al. 2022, Multi-Task Learning as a Bargaining Game (their defaults)",
    ),
    "aligned-mtl": AggregatorSpec(
        "Aligned-MTL",
        lambda k: AlignedMTL(),
        (),
        "Senushkin et al. 2023, Independent Component Alignment for Multi-Task Learning",
    ),
}


class Aggregated(Controller):
    """Jacobian descent with a torchjd aggregator on every step (see the module docstring).

    ``Aggregated("mgda")`` uses a registered aggregator (:data:`AGGREGATORS` lists them,
    with references); ``Aggregated(build=lambda k: MyAggregator())`` any other, built once
    per run for its number of tasks K (stateful aggregators such as Nash-MTL must not be
    shared between runs). Sampling and the heads' weights stay uniform.
    """

    salt = 0x41474752  # "AGGR"

    def __init__(
        self, aggregator: str | None = None, build: Callable[[int], Aggregator] | None = None
    ) -> None:
        if (aggregator is None) == (build is None):
            raise ValueError("give exactly one of: a registered aggregator name, or build")
        if aggregator is not None:
            if aggregator not in AGGREGATORS:
                raise ValueError(
                    f"unknown aggregator {aggregator!r}; use one of: {', '.join(AGGREGATORS)}"
                )
            spec = AGGREGATORS[aggregator]
            missing = spec.missing()
            if missing:
                raise ImportError(
                    f"controller {aggregator!r} ({spec.label}) needs {', '.join(missing)}; "
                    f"{INSTALL_HINT}"
                )
            build = spec.build
        self.name = aggregator or "aggregated"
        self.build = build
        self._hook: AggregatorHook | None = None

    @property
    def hook(self) -> StepHook | None:
        return self._hook

    def reset(self, context: RunContext) -> None:
        super().reset(context)
        counts = [int(k) for k in context.mask.sum(1).tolist()]
        generators = [run_generator(seed, self.salt) for seed in context.seeds]
        self._hook = AggregatorHook([self.build(k) for k in counts], generators)

    def decide(self, signals: Signals) -> Decision:
        return uniform_decision(signals.mask)
