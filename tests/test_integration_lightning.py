"""CurriculumCallback with a tiny LightningModule on CPU: decisions every interval with the
logged validation losses, the sampler steered, weights logged, diagnostics written, and a
run resumed from a Lightning checkpoint equal to the run never interrupted."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pl = pytest.importorskip("lightning.pytorch", reason="install the [lightning] extra")

from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from curriculum_rl.controllers import make_controller  # noqa: E402
from curriculum_rl.integrations import TaskBatchSampler  # noqa: E402
from curriculum_rl.integrations.lightning import CurriculumCallback  # noqa: E402

pytestmark = pytest.mark.slow  # Lightning's import and loops: ~10 s per fit on 2 cores
K, BATCH, BATCHES, INTERVAL = 3, 12, 10, 5
TASKS = ["a", "b", "c"]


def data(seed: int, n: int = 60) -> TensorDataset:
    gen = torch.Generator().manual_seed(seed)
    x, task = torch.randn(n, 4, generator=gen), torch.arange(n) % K
    y = x[:, 0] * torch.tensor([1.0, 5.0, 25.0])[task]
    return TensorDataset(x, y, task)


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.trunk = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh())
        self.heads = nn.Linear(8, K)

    def forward(self, x, task):
        return self.heads(self.trunk(x)).gather(1, task[:, None])[:, 0]

    def training_step(self, batch, batch_idx):
        x, y, task = batch
        return self.curriculum.loss((self(x, task) - y) ** 2, task)

    def validation_step(self, batch, batch_idx):
        x, y, task = batch
        losses = (self(x, task) - y) ** 2
        for k, name in enumerate(TASKS):
            self.log(f"val_loss/{name}", losses[task == k].mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-3)


def fit(root: Path, epochs: int, controller: str = "uw", ckpt: str | None = None):
    sampler = TaskBatchSampler((torch.arange(60) % K).tolist(), BATCH, num_batches=BATCHES)
    callback = CurriculumCallback(
        make_controller(controller),
        K,
        interval=INTERVAL,
        budget=40,  # the whole run's batches, also when it is fitted in parts
        sampler=sampler,
        probe_layer="trunk.2",
        task_names=TASKS,
        task_kinds=["regression"] * K,
    )
    trainer = pl.Trainer(
        max_epochs=epochs,
        callbacks=[callback, pl.callbacks.ModelCheckpoint(dirpath=root / "ckpt", save_last=True)],
        default_root_dir=root,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        log_every_n_steps=1,
    )
    module = Tiny()
    train = DataLoader(data(0), batch_sampler=sampler)
    trainer.fit(module, train, DataLoader(data(1), batch_size=60), ckpt_path=ckpt)
    return trainer, module, sampler


def test_the_callback_paces_a_lightning_module(tmp_path: Path):
    trainer, module, sampler = fit(tmp_path, epochs=2)
    session = module.curriculum
    assert session.calls == 3 and session.steps == 20  # decisions before batches 6, 11, 16
    assert session.task_kinds == ["regression"] * K
    torch.testing.assert_close(sampler.probabilities.float(), session.loop.previous.sampling[0])
    assert session.state.grad_cos[0].abs().sum() > K  # the probe measured alignment
    # the decision before batch 11 read epoch 1's validation, not the training losses
    val_at_10 = session.journal.decisions.values()[1, K : 2 * K]
    assert not torch.equal(val_at_10, session.journal.decisions.values()[1, :K])
    logged = trainer.logged_metrics
    assert {f"curriculum/weight/{t}" for t in TASKS} <= set(logged)
    events = Path(trainer.log_dir) / "curriculum"
    assert list(events.glob("events.out.tfevents.*"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars = EventAccumulator(str(events)).Reload().Tags()["scalars"]
    assert {"curriculum/weight/a", "curriculum/normalisation", "curriculum/scale"} <= set(
        scalars
    ), scalars


def test_a_resumed_fit_equals_the_uninterrupted_one(tmp_path: Path):
    _, whole, _ = fit(tmp_path / "whole", epochs=4)
    fit(tmp_path / "parts", epochs=2)
    _, resumed, _ = fit(tmp_path / "parts", epochs=4, ckpt=str(tmp_path / "parts/ckpt/last.ckpt"))
    a, b = whole.curriculum.state_dict(), resumed.curriculum.state_dict()
    assert a.keys() == b.keys() and whole.curriculum.calls == 7
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_task_kinds_are_checked_when_the_callback_is_made():
    with pytest.raises(ValueError, match="2 kinds for 3 tasks"):
        CurriculumCallback(make_controller("uniform"), K, task_kinds=["regression"] * 2)
