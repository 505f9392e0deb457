"""Pace your own PyTorch multitask loop with a curriculum controller.

A plain loop: three regression tasks on a shared input, one shared trunk, one linear head
per task. The tasks differ in output scale (x1, x10, x100) and one has few examples, the
situation where weighting matters. Batches mix the tasks in the proportions the controller
sets (``TaskBatchSampler``); every step's per-example losses go through the session
(``session.loss``), and every ``interval`` steps the session decides: it reads the
interval's losses, the validation losses and the tasks' gradient alignment on the last
shared layer (``GradientProbe``), and returns new loss weights and sampling probabilities.

Run:  python examples/own_loop.py [CONTROLLER] [--steps N]
      CONTROLLER: the shipped learned policy by default; or a heuristic name such as
      ``uniform`` or ``uw``, or a policy file from ``curriculum-rl train``.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, TensorDataset

import curriculum_rl
from curriculum_rl.integrations import TaskBatchSampler
from curriculum_rl.session import CurriculumSession, GradientProbe

INTERVAL, BATCH = 25, 64
SCALES, SIZES = [1.0, 10.0, 100.0], [1024, 1024, 64]  # task 2: few examples

torch.manual_seed(0)
readouts = [torch.randn(8) for _ in SCALES]
projection = torch.randn(16, 8) / 4


def make_task(k: int, n: int) -> TensorDataset:
    """y_k = scale_k * f_k(x) + noise; each example carries its task id."""
    x = torch.randn(n, 16)
    y = SCALES[k] * torch.tanh(x @ projection) @ readouts[k] / 3
    return TensorDataset(x, y + 0.1 * SCALES[k] * torch.randn(n), torch.full((n,), k))


class Model(nn.Module):
    """A shared trunk and one head per task; each example is read by its own task's head."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        self.heads = nn.Linear(64, len(SCALES))  # column k: task k's head

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return self.heads(self.trunk(x)).gather(1, task[:, None])[:, 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("controller", nargs="?", default=None)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()

    train = ConcatDataset([make_task(k, n) for k, n in enumerate(SIZES)])
    val = [make_task(k, 256).tensors for k in range(len(SCALES))]
    model = Model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def val_losses() -> torch.Tensor:
        with torch.no_grad():
            return torch.stack([((model(x, t) - y) ** 2).mean() for x, y, t in val])

    controller = curriculum_rl.load_controller(args.controller)
    session = CurriculumSession(
        controller,
        num_tasks=len(SCALES),
        budget=args.steps,
        interval=INTERVAL,
        train_sizes=SIZES,
        probe=GradientProbe(model.trunk[2]),  # alignment on the last shared layer
    )
    sampler = TaskBatchSampler.from_sizes(SIZES, BATCH, num_batches=args.steps)
    for x, y, task in DataLoader(train, batch_sampler=sampler):
        loss = session.loss((model(x, task) - y) ** 2, task)  # per-example losses in
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if session.decision_due:
            weights, sampling = session.update(val_losses=val_losses())
            sampler.set_probabilities(sampling)  # the next batches follow the decision
            if session.calls % 10 == 0:
                print(
                    f"step {session.steps:4d}  val loss "
                    f"{[f'{v:.3g}' for v in session.state.val_loss[0].tolist()]}  weights "
                    f"{[round(w, 3) for w in weights.tolist()]}  sampling "
                    f"{[round(p, 3) for p in sampling.tolist()]}"
                )
    final = val_losses()
    print(
        f"controller {controller.name}: final weights "
        f"{[round(w, 3) for w in session.loop.previous.weights[0].tolist()]}, "
        f"J (mean log val loss) {final.log().mean().item():.3f}"
    )


if __name__ == "__main__":
    main()
