"""Your own suite: your data, your tasks, your model, in one file.

Run it with the command line::

    curriculum-rl run --suite examples/my_suite.py:factory --budget 500

or in Python: ``resolve_suite("examples/my_suite.py:factory").sample(seed)``.

The suite here is a toy "sensor" problem: each input is a noisy 1D wave of 32 samples;
the tasks are the wave's shape (classification), its frequency (regression) and its
amplitude (regression, on a very different scale, which is where pacing matters). The
trunk is a small 1D convolutional network of our own, handed over as a ``ModuleBody``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from curriculum_rl.suites import ModuleBody, SuiteInstance, TaskData, TaskSpec

LENGTH = 32


class WaveNet(nn.Module):
    """(B, 32) signal -> (B, 64) features. The trainer stacks one copy per run and calls
    it under ``torch.func.vmap``, so: no in-place ops on the input, no Python branching
    on data values. The class itself serves as the body's factory (``WaveNet()``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(1, 16, kernel_size=5, padding=2)
        self.conv2 = nn.Conv1d(16, 16, kernel_size=5, padding=2, stride=2)
        self.fc = nn.Linear(16 * LENGTH // 2, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv1(x.unsqueeze(1)))
        h = torch.relu(self.conv2(h))
        return torch.relu(self.fc(h.flatten(1)))


def make_waves(n: int, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``n`` noisy waves and the three targets of each."""
    t = torch.linspace(0, 1, LENGTH)
    shape = torch.randint(0, 3, (n,), generator=gen)  # 0 sine, 1 square, 2 sawtooth
    freq = 1 + 4 * torch.rand(n, generator=gen)
    amp = 10 ** torch.rand(n, generator=gen)  # 1 .. 10
    phase = freq[:, None] * t[None, :] + torch.rand(n, 1, generator=gen)
    waves = torch.stack(
        [
            torch.sin(2 * torch.pi * phase),
            torch.sign(torch.sin(2 * torch.pi * phase)),
            2 * (phase % 1) - 1,
        ]
    )[shape, torch.arange(n)]
    x = waves + 0.2 * torch.randn(n, LENGTH, generator=gen)
    # The network sees the unit-amplitude wave plus a log-amplitude channel folded in as
    # an offset, so amplitude is learnable while the inputs stay O(1).
    x = x + torch.log10(amp)[:, None]
    targets = {"shape": shape, "frequency": freq[:, None], "amplitude": amp[:, None]}
    return x, targets


TASKS = (
    TaskSpec("shape", "classification", 3, "accuracy"),
    TaskSpec("frequency", "regression", 1, "mse"),
    TaskSpec("amplitude", "regression", 1, "mse"),
)


@dataclass(frozen=True)
class WaveSuite:
    """The Suite protocol: ``name``, ``sample(seed)`` and ``describe()``."""

    name: str = "waves"
    n_train: int = 2000
    n_val: int = 300
    n_test: int = 1000

    def describe(self) -> list[TaskSpec]:
        return list(TASKS)

    def sample(self, seed: int) -> SuiteInstance:
        gen = torch.Generator().manual_seed(seed)
        splits = [make_waves(n, gen) for n in (self.n_train, self.n_val, self.n_test)]
        data = [TaskData(*(t for x, ys in splits for t in (x, ys[spec.name]))) for spec in TASKS]
        return SuiteInstance(
            name=self.name,
            tasks=list(TASKS),
            data=data,
            body=ModuleBody(factory=WaveNet, out_dim=64),
            input_shape=(LENGTH,),
            info={"seed": seed},
        )


def factory() -> WaveSuite:
    """What ``examples/my_suite.py:factory`` calls: a fresh suite with default sizes."""
    return WaveSuite()


def fixed_instance() -> SuiteInstance:
    """A factory may also return one fixed instance (wrapped as a one-instance suite)."""
    return WaveSuite(n_train=500, n_val=100, n_test=200).sample(0)
