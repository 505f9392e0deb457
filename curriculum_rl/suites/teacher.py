"""Teacher-aux: one small target task, many auxiliaries that help, distract or are noise.

A random teacher network ``h = tanh(W^T x)`` (``x`` Gaussian, ``in_dim`` 16, ``width`` 8
hidden units) defines the problem. Only the first task counts in the score; the others are
marked auxiliary (``TaskSpec.auxiliary``), so J, the reward and the trainer's objective
read the target alone:

================  ==============  ===  ======================================================
task              kind            out  what
================  ==============  ===  ======================================================
``main``          regression      1    a readout ``a . h`` of the teacher plus a little noise,
                                       from only ``n_main`` (48) training examples: the target
``helpful{i}``    regression or   1/3  *auxiliary*, related: other readouts of the same
                  classification       ``h`` (every third classifies: argmax of 3 readouts),
                                       from ``n_aux`` (2000) examples each, output scales
                                       spread over [1, 10]; they teach the trunk ``h``
``unrelated{i}``  regression      1    *auxiliary*, distracting: readouts of a second,
                                       independent teacher; they compete for the trunk
``noise{i}``      classification  5    *auxiliary*, pure noise: uniformly random labels
                  or regression   1    (even ``i``) or Gaussian values of std 3 (odd ``i``)
================  ==============  ===  ======================================================

K = 1 + ``num_helpful`` + ``num_unrelated`` + ``num_noise``, 12 by default (more than the 8
of the training distribution). A controller that feeds the trunk the helpful auxiliaries
and starves the noise gains on ``main``; uniform weighting spends most of the batch on
auxiliaries; training ``main`` alone overfits its 48 examples. Every seed draws both
teachers, the readouts and the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from curriculum_rl.suites.base import MLPBody, SuiteInstance, TaskData, TaskSpec

HELPFUL_CLASSES = 3
NOISE_CLASSES = 5
NOISE_STD = 3.0


@dataclass(frozen=True)
class TeacherAuxSuite:
    """A few-shot target task with helpful, unrelated and noise auxiliaries (module
    docstring).

    Attributes:
        num_helpful, num_unrelated, num_noise: auxiliaries of each sort.
        n_main: training examples of the target. n_aux: of each auxiliary.
        n_val, n_test: held-out examples of every task.
        in_dim: input width. width: hidden units of each teacher.
        main_noise: std of the target's noise, relative to its signal's.
        hidden: widths of the shared MLP trunk.
    """

    name: str = "teacher-aux"
    num_helpful: int = 6
    num_unrelated: int = 3
    num_noise: int = 2
    n_main: int = 48
    n_aux: int = 2000
    n_val: int = 200
    n_test: int = 1000
    in_dim: int = 16
    width: int = 8
    main_noise: float = 0.1
    hidden: tuple[int, ...] = (64, 64)

    def __post_init__(self) -> None:
        if min(self.num_helpful, self.num_unrelated, self.num_noise) < 0:
            raise ValueError(f"suite {self.name!r}: auxiliary counts must be >= 0")
        if min(self.n_main, self.n_aux, self.n_val, self.n_test, self.in_dim, self.width) < 1:
            raise ValueError(f"suite {self.name!r}: sizes and widths must be >= 1")
        if self.main_noise < 0:
            raise ValueError(f"suite {self.name!r}: main_noise must be >= 0")

    def describe(self) -> list[TaskSpec]:
        specs = [TaskSpec("main", "regression", 1, "mse")]
        for i in range(self.num_helpful):
            specs.append(_aux(f"helpful{i}", HELPFUL_CLASSES if _classifies(i) else 1))
        specs += [_aux(f"unrelated{i}", 1) for i in range(self.num_unrelated)]
        specs += [
            _aux(f"noise{i}", NOISE_CLASSES if i % 2 == 0 else 1) for i in range(self.num_noise)
        ]
        return specs

    def sample(self, seed: int) -> SuiteInstance:
        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        teacher, other = self._teacher(gen), self._teacher(gen)
        scales = np.exp(rng.uniform(0.0, math.log(10.0), size=self.num_helpful))
        data = [self._readout_task(teacher, self.n_main, 1.0, self.main_noise, gen)]
        for i in range(self.num_helpful):
            if _classifies(i):
                data.append(self._argmax_task(teacher, gen))
            else:
                data.append(self._readout_task(teacher, self.n_aux, float(scales[i]), 0.0, gen))
        data += [
            self._readout_task(other, self.n_aux, 1.0, 0.0, gen) for _ in range(self.num_unrelated)
        ]
        data += [self._noise_task(i, gen) for i in range(self.num_noise)]
        return SuiteInstance(
            name=self.name,
            tasks=self.describe(),
            data=data,
            body=MLPBody(self.in_dim, self.hidden),
            input_shape=(self.in_dim,),
            info={"seed": seed, "helpful_scales": [float(s) for s in scales]},
        )

    def _teacher(self, gen: torch.Generator) -> torch.Tensor:
        """A teacher's input weights ``W`` (in_dim, width); pre-activations have std 2."""
        return 2.0 * torch.randn(self.in_dim, self.width, generator=gen) / math.sqrt(self.in_dim)

    def _inputs(self, n_train: int, gen: torch.Generator) -> list[torch.Tensor]:
        return [
            torch.randn(n, self.in_dim, generator=gen) for n in (n_train, self.n_val, self.n_test)
        ]

    def _readouts(self, teacher: torch.Tensor, count: int, gen: torch.Generator):
        """``count`` random readouts of the teacher, each scaled to unit std on fresh data."""
        readout = torch.randn(self.width, count, generator=gen)
        probe = torch.tanh(torch.randn(4096, self.in_dim, generator=gen) @ teacher) @ readout
        readout = readout / probe.std(0).clamp_min(1e-6)
        return lambda x: torch.tanh(x @ teacher) @ readout

    def _readout_task(
        self, teacher: torch.Tensor, n_train: int, scale: float, noise: float, gen: torch.Generator
    ) -> TaskData:
        f = self._readouts(teacher, 1, gen)
        splits = []
        for x in self._inputs(n_train, gen):
            y = scale * (f(x) + noise * torch.randn(len(x), 1, generator=gen))
            splits += [x, y]
        return TaskData(*splits)

    def _argmax_task(self, teacher: torch.Tensor, gen: torch.Generator) -> TaskData:
        f = self._readouts(teacher, HELPFUL_CLASSES, gen)
        splits = []
        for x in self._inputs(self.n_aux, gen):
            splits += [x, f(x).argmax(1)]
        return TaskData(*splits)

    def _noise_task(self, i: int, gen: torch.Generator) -> TaskData:
        splits = []
        for x in self._inputs(self.n_aux, gen):
            if i % 2 == 0:
                y = torch.randint(NOISE_CLASSES, (len(x),), generator=gen)
            else:
                y = NOISE_STD * torch.randn(len(x), 1, generator=gen)
            splits += [x, y]
        return TaskData(*splits)


def _classifies(i: int) -> bool:
    """Whether helpful auxiliary ``i`` classifies (every third one)."""
    return i % 3 == 2


def _aux(name: str, out_dim: int) -> TaskSpec:
    if out_dim == 1:
        return TaskSpec(name, "regression", 1, "mse", auxiliary=True)
    return TaskSpec(name, "classification", out_dim, "accuracy", auxiliary=True)
