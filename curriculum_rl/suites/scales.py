"""Scales: the synthetic benchmark of GradNorm (Chen et al. 2018), many tasks, spread scales.

Task ``i`` regresses ``y_i = sigma_i * tanh((B + E_i) x)``: every task applies the *same*
shared map ``B`` plus a small task-specific perturbation ``E_i`` to a shared Gaussian input
``x``, and scales its outputs by ``sigma_i``. The scales spread log-evenly over
``[1, scale_spread]`` (1 to 100 by default) in a random task order, so the losses differ by
up to ``scale_spread**2`` (10^4) while the tasks are nearly the same problem: uniform
weighting lets the largest scales dominate the shared trunk, which is what GradNorm was
built to correct. ``num_tasks`` is 10 by default, more than the 8 of the training
distribution.

Differences from the paper, to keep a run to seconds on a CPU: ``in_dim`` 32 instead of
250, ``out_dim`` 4 outputs per task instead of 100, a 2-layer trunk of 64 units; ``B``'s
entries are ``N(0, gain^2 / in_dim)`` so pre-activations have std ``gain`` (1.5: mildly
saturating, where the paper's ``N(0, 10)`` saturates tanh into a sign); ``E_i``'s entries
have ``perturbation`` (0.6) times ``B``'s std, the paper's ratio of variances 3.5 / 10.
Targets are noiseless. Every seed draws ``B``, the ``E_i``, the order of the scales and the
data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from curriculum_rl.suites.base import MLPBody, SuiteInstance, TaskData, TaskSpec


@dataclass(frozen=True)
class ScalesSuite:
    """GradNorm-style regression tasks sharing one function at spread scales (module
    docstring).

    Attributes:
        num_tasks: K (tasks ``task0`` ... ``task{K-1}``, in random scale order).
        scale_spread: ratio of the largest to the smallest output scale (>= 1).
        in_dim, out_dim: input width; outputs per task.
        gain: std of the shared map's pre-activations. perturbation: std of a task's own
            perturbation relative to the shared map's.
        n_train, n_val, n_test: examples per split (the tasks share the inputs).
        hidden: widths of the shared MLP trunk.
    """

    name: str = "gradnorm-scales"
    num_tasks: int = 10
    scale_spread: float = 100.0
    in_dim: int = 32
    out_dim: int = 4
    gain: float = 1.5
    perturbation: float = 0.6
    n_train: int = 1000
    n_val: int = 200
    n_test: int = 1000
    hidden: tuple[int, ...] = (64, 64)

    def __post_init__(self) -> None:
        if self.num_tasks < 1 or self.in_dim < 1 or self.out_dim < 1:
            raise ValueError(f"suite {self.name!r}: num_tasks, in_dim, out_dim must be >= 1")
        if self.scale_spread < 1:
            raise ValueError(f"suite {self.name!r}: scale_spread must be >= 1")
        if not (self.gain > 0 and self.perturbation >= 0):
            raise ValueError(f"suite {self.name!r}: need gain > 0 and perturbation >= 0")
        if min(self.n_train, self.n_val, self.n_test) < 1:
            raise ValueError(f"suite {self.name!r}: n_train, n_val, n_test must be >= 1")

    def describe(self) -> list[TaskSpec]:
        return [
            TaskSpec(f"task{i}", "regression", self.out_dim, "mse") for i in range(self.num_tasks)
        ]

    def sample(self, seed: int) -> SuiteInstance:
        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        scales = self.scales(rng)
        std = self.gain / math.sqrt(self.in_dim)
        shared = std * torch.randn(self.in_dim, self.out_dim, generator=gen)
        maps = [
            shared + self.perturbation * std * torch.randn(self.in_dim, self.out_dim, generator=gen)
            for _ in range(self.num_tasks)
        ]
        sizes = (self.n_train, self.n_val, self.n_test)
        xs = [torch.randn(n, self.in_dim, generator=gen) for n in sizes]
        data = [
            TaskData(*(t for x in xs for t in (x, sigma * torch.tanh(x @ m))))
            for sigma, m in zip(scales, maps, strict=True)
        ]
        return SuiteInstance(
            name=self.name,
            tasks=self.describe(),
            data=data,
            body=MLPBody(self.in_dim, self.hidden),
            input_shape=(self.in_dim,),
            info={"seed": seed, "scales": scales},
        )

    def scales(self, rng: np.random.Generator) -> list[float]:
        """The K output scales, log-evenly spaced over [1, scale_spread], shuffled."""
        if self.num_tasks == 1:
            return [1.0]
        factors = np.exp(np.linspace(0.0, math.log(self.scale_spread), self.num_tasks))
        return [float(f) for f in rng.permutation(factors)]
