"""Pace a Lightning multitask module with a curriculum controller.

``pip install 'curriculum-rl[lightning]'``. The same three regression tasks as
``own_loop.py`` (output scales x1, x10, x100; task 2 has few examples) in a
LightningModule. ``CurriculumCallback`` attaches a ``CurriculumSession`` to the module
(``self.curriculum``), whose loss ``training_step`` returns; it decides every ``interval``
batches with the per-task validation losses the module logs, steers the
``TaskBatchSampler``, logs weights and sampling, writes the diagnostics to TensorBoard and
saves its state in Lightning's checkpoints (``fit(ckpt_path=...)`` resumes the schedule).

Run:  python examples/lightning_loop.py [CONTROLLER] [--steps N] [--out DIR]
"""

from __future__ import annotations

import argparse

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, TensorDataset

import curriculum_rl
from curriculum_rl.integrations import TaskBatchSampler
from curriculum_rl.integrations.lightning import CurriculumCallback

INTERVAL, BATCH = 25, 64
SCALES, SIZES = [1.0, 10.0, 100.0], [1024, 1024, 64]
TASKS = ["x1", "x10", "x100-small"]


def make_task(k: int, n: int, gen: torch.Generator) -> TensorDataset:
    readout = torch.randn(8, generator=torch.Generator().manual_seed(k))
    projection = torch.randn(16, 8, generator=torch.Generator().manual_seed(99)) / 4
    x = torch.randn(n, 16, generator=gen)
    y = SCALES[k] * torch.tanh(x @ projection) @ readout / 3
    noise = 0.1 * SCALES[k] * torch.randn(n, generator=gen)
    return TensorDataset(x, y + noise, torch.full((n,), k))


class MultitaskRegression(pl.LightningModule):
    """A shared trunk and one head per task; the loss goes through ``self.curriculum``."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        self.heads = nn.Linear(64, len(SCALES))

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return self.heads(self.trunk(x)).gather(1, task[:, None])[:, 0]

    def training_step(self, batch, batch_idx):
        x, y, task = batch
        return self.curriculum.loss((self(x, task) - y) ** 2, task)  # per-example losses

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        x, y, task = batch  # one loader per task
        loss = ((self(x, task) - y) ** 2).mean()
        self.log(f"val_loss/{TASKS[dataloader_idx]}", loss, add_dataloader_idx=False)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("controller", nargs="?", default=None)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--out", default="runs/lightning_example")
    args = parser.parse_args()

    gen = torch.Generator().manual_seed(0)
    train = ConcatDataset([make_task(k, n, gen) for k, n in enumerate(SIZES)])
    val = [DataLoader(make_task(k, 256, gen), batch_size=256) for k in range(len(SCALES))]
    sampler = TaskBatchSampler.from_sizes(SIZES, BATCH, num_batches=args.steps)
    callback = CurriculumCallback(
        curriculum_rl.load_controller(args.controller),
        num_tasks=len(SCALES),
        interval=INTERVAL,
        sampler=sampler,
        probe_layer="trunk.2",
        task_names=TASKS,
        train_sizes=SIZES,
    )
    trainer = pl.Trainer(
        max_steps=args.steps,
        val_check_interval=INTERVAL,  # fresh per-task validation losses at every decision
        callbacks=[callback],
        default_root_dir=args.out,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,  # the task sampler draws per rank itself
        log_every_n_steps=INTERVAL,
    )
    model = MultitaskRegression()
    trainer.fit(model, DataLoader(train, batch_sampler=sampler), val)
    session = model.curriculum
    losses = session.state.val_loss[0].tolist()
    print(
        f"controller {session.controller.name}: {session.calls} decisions; final weights "
        f"{[round(w, 3) for w in session.loop.previous.weights[0].tolist()]}, val losses "
        f"{[f'{v:.3g}' for v in losses]}; logs in {trainer.log_dir}"
    )


if __name__ == "__main__":
    main()
