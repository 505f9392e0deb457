"""Pace your own PyTorch multitask loop with a curriculum controller.

A plain loop: three regression tasks on a shared input, one shared trunk, one linear head
per task. The tasks differ in output scale (x1, x10, x100) and one has few examples, the
situation where weighting matters. Every ``interval`` steps the loop hands the per-task
losses (and per-task gradients on the last shared layer) to a ``CurriculumSession``, which
returns the loss weights and the sampling probabilities for the next steps.

Run:  python examples/own_loop.py [CONTROLLER]   (default: the shipped learned policy;
      or a heuristic name such as ``uniform``, or a policy file from ``curriculum-rl train``)
"""

from __future__ import annotations

import sys

import torch
from torch import nn

import curriculum_rl
from curriculum_rl.session import CurriculumSession

STEPS, INTERVAL, BATCH = 1000, 25, 64
torch.manual_seed(0)

# --- data: y_k = scale_k * f_k(x) + noise; task 2 has only 64 training examples
scales, sizes = [1.0, 10.0, 100.0], [1024, 1024, 64]
readouts = [torch.randn(8) for _ in scales]
projection = torch.randn(16, 8) / 4


def make_task(k: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 16)
    y = scales[k] * torch.tanh(x @ projection) @ readouts[k] / 3
    return x, (y + 0.1 * scales[k] * torch.randn(n))[:, None]


train = [make_task(k, n) for k, n in enumerate(sizes)]
val = [make_task(k, 256) for k in range(len(scales))]

# --- model: shared trunk + one head per task
trunk = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
heads = nn.ModuleList(nn.Linear(64, 1) for _ in scales)
optimizer = torch.optim.Adam([*trunk.parameters(), *heads.parameters()], lr=1e-3)
last_shared = trunk[2].weight  # where per-task gradient alignment is measured


def task_losses(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    return torch.stack(
        [nn.functional.mse_loss(heads[k](trunk(x)), y) for k, (x, y) in enumerate(batches)]
    )


controller = curriculum_rl.load_controller(sys.argv[1] if len(sys.argv) > 1 else None)
session = CurriculumSession(
    controller, num_tasks=len(scales), budget=STEPS, interval=INTERVAL, train_sizes=sizes
)
weights, sampling = torch.ones(len(scales)), torch.full((len(scales),), 1 / len(scales))
running = torch.zeros(len(scales))

for step in range(STEPS + 1):
    if step % INTERVAL == 0:
        with torch.no_grad():
            val_losses = task_losses(val)
        # per-task gradients on the last shared layer (optional: alignment features)
        probe = task_losses([(x[:BATCH], y[:BATCH]) for x, y in train])
        grads = torch.stack(
            [
                torch.autograd.grad(probe[k], last_shared, retain_graph=True)[0].flatten()
                for k in range(len(scales))
            ]
        )
        train_losses = running / INTERVAL if step else val_losses
        weights, sampling = session.update(train_losses, val_losses, task_grads=grads, step=step)
        running.zero_()
        if step % 250 == 0:
            print(
                f"step {step:4d}  val loss {[f'{v:.3g}' for v in val_losses.tolist()]}  "
                f"weights {[round(w, 3) for w in weights.tolist()]}  "
                f"sampling {[round(p, 3) for p in sampling.tolist()]}"
            )
    if step == STEPS:
        break
    # sampling decides how many examples of each task enter the batch (at least one each)
    counts = (sampling * BATCH).round().long().clamp_min(1)
    batches = []
    for k, (x, y) in enumerate(train):
        rows = torch.randint(len(x), (int(counts[k]),))
        batches.append((x[rows], y[rows]))
    losses = task_losses(batches)
    optimizer.zero_grad()
    (weights * losses).sum().backward()
    optimizer.step()
    running += losses.detach()

j = val_losses.log().mean().item()
print(
    f"controller {controller.name}: final weights {[round(w, 3) for w in weights.tolist()]}, "
    f"J (mean log val loss) {j:.3f}"
)
