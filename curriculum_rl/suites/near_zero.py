"""Near-zero: tasks a trunk fits to almost zero loss beside hard and noisy ones.

On a shared Gaussian input ``x`` (``in_dim`` 16), each task reads its own random unit
directions ``u`` (drawn per seed):

================  ==============  ===  ======================================================
task              kind            out  target
================  ==============  ===  ======================================================
``linear``        regression      1    ``u.x``, noiseless: a ReLU trunk fits it to ~0 loss
``hinge``         regression      1    ``relu(u.x)``, noiseless: one trunk unit, ~0 loss
``separable``     classification  2    ``u.x > 0`` with no example within ``margin`` of the
                                       boundary: 100% accuracy, cross-entropy can fall
                                       toward 0 for ever
``wave``          regression      1    ``sin(3 u.x)`` plus Gaussian noise of std
                                       ``noise``: the loss floor is ``noise^2``
``xor``           classification  4    the signs of two projections, a quarter of the labels
                                       redrawn uniformly: accuracy at most ~81%
``product``       regression      1    ``(u1.x) (u2.x)``, noiseless but curved: slow to fit
================  ==============  ===  ======================================================

Here J, the mean log loss, is gameable: driving the solved tasks' losses from 1e-3 to 1e-5
lowers J as much as halving a hard task's loss, while no task metric moves. A controller
judged on task metrics must leave the solved tasks alone and spend the budget on the hard
ones. Every seed draws the directions and the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from curriculum_rl.suites.base import MLPBody, SuiteInstance, TaskData, TaskSpec
from curriculum_rl.suites.selection import mark_auxiliary, select_tasks

NEAR_ZERO_TASKS: tuple[TaskSpec, ...] = (
    TaskSpec("linear", "regression", 1, "mse"),
    TaskSpec("hinge", "regression", 1, "mse"),
    TaskSpec("separable", "classification", 2, "accuracy"),
    TaskSpec("wave", "regression", 1, "mse"),
    TaskSpec("xor", "classification", 4, "accuracy"),
    TaskSpec("product", "regression", 1, "mse"),
)
"""Every task the suite offers, in its default order."""

XOR_FLIP = 0.25
"""Share of the ``xor`` labels redrawn uniformly (a redraw keeps the label 1 time in 4)."""


@dataclass(frozen=True)
class NearZeroSuite:
    """Solved-to-zero tasks beside hard and noisy ones (module docstring).

    Attributes:
        tasks: task names to include (any subset of :data:`NEAR_ZERO_TASKS`, in the given
            order); ``None`` for all.
        auxiliary: task names that only help (not scored); ``None``: none.
        in_dim: input width. margin: gap around the ``separable`` boundary, in units of
            ``u.x`` (whose std is 1). noise: std of the ``wave`` task's noise.
        n_train, n_val, n_test: examples per task and split.
        hidden: widths of the shared MLP trunk.
    """

    name: str = "near-zero"
    tasks: tuple[str, ...] | None = None
    auxiliary: tuple[str, ...] | None = None
    in_dim: int = 16
    margin: float = 0.3
    noise: float = 0.5
    n_train: int = 1000
    n_val: int = 200
    n_test: int = 1000
    hidden: tuple[int, ...] = (64, 64)

    def __post_init__(self) -> None:
        if self.in_dim < 2:
            raise ValueError(f"suite {self.name!r}: in_dim must be >= 2")
        if not (0 <= self.margin < 2 and self.noise >= 0):
            raise ValueError(f"suite {self.name!r}: need 0 <= margin < 2 and noise >= 0")
        if min(self.n_train, self.n_val, self.n_test) < 1:
            raise ValueError(f"suite {self.name!r}: n_train, n_val, n_test must be >= 1")
        self.describe()  # fail early on a bad task name or auxiliary choice

    def describe(self) -> list[TaskSpec]:
        specs = select_tasks(self.name, NEAR_ZERO_TASKS, self.tasks)
        return mark_auxiliary(self.name, specs, self.auxiliary)

    def sample(self, seed: int) -> SuiteInstance:
        gen = torch.Generator().manual_seed(seed)
        # Every task draws its directions and data whether chosen or not, so a task
        # subset keeps the same data for the tasks it keeps.
        made = {spec.name: self._task_data(spec.name, gen) for spec in NEAR_ZERO_TASKS}
        specs = self.describe()
        return SuiteInstance(
            name=self.name,
            tasks=specs,
            data=[made[spec.name] for spec in specs],
            body=MLPBody(self.in_dim, self.hidden),
            input_shape=(self.in_dim,),
            info={"seed": seed, "margin": self.margin, "noise": self.noise},
        )

    def _task_data(self, task: str, gen: torch.Generator) -> TaskData:
        directions = torch.randn(self.in_dim, 2, generator=gen)
        directions = directions / directions.norm(dim=0, keepdim=True)
        splits = []
        for n in (self.n_train, self.n_val, self.n_test):
            x = self._inputs(task, n, directions[:, 0], gen)
            splits += [x, _target(task, x @ directions, self.noise, gen)]
        return TaskData(*splits)

    def _inputs(
        self, task: str, n: int, direction: torch.Tensor, gen: torch.Generator
    ) -> torch.Tensor:
        """``n`` Gaussian inputs; for ``separable``, none within ``margin`` of the boundary
        (rejection sampling, in whole batches so the stream does not depend on timing)."""
        x = torch.randn(n, self.in_dim, generator=gen)
        if task != "separable":
            return x
        keep = x[(x @ direction).abs() >= self.margin]
        while len(keep) < n:
            more = torch.randn(n, self.in_dim, generator=gen)
            keep = torch.cat([keep, more[(more @ direction).abs() >= self.margin]])
        return keep[:n]


def _target(task: str, z: torch.Tensor, noise: float, gen: torch.Generator) -> torch.Tensor:
    """The target of ``task`` from its two projections ``z`` (n, 2) (module docstring)."""
    a, b = z[:, 0], z[:, 1]
    if task == "linear":
        return a[:, None]
    if task == "hinge":
        return torch.relu(a)[:, None]
    if task == "separable":
        return (a > 0).long()
    if task == "wave":
        return (torch.sin(3 * a) + noise * torch.randn(len(a), generator=gen))[:, None]
    if task == "xor":
        clean = 2 * (a > 0).long() + (b > 0).long()
        redraw = torch.rand(len(a), generator=gen) < XOR_FLIP
        return torch.where(redraw, torch.randint(4, (len(a),), generator=gen), clean)
    if task == "product":
        return (a * b)[:, None]
    raise ValueError(f"unknown near-zero task {task!r}")
