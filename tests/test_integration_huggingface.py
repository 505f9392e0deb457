"""CurriculumTrainer with a tiny randomly initialised BERT (built from a config, nothing
downloaded) on generated token tasks: weighted per-example losses, decisions with the
evaluation's per-task losses, the sampler steered, weights logged, curriculum.pt in each
checkpoint, and a resumed run equal to the run never interrupted."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers", reason="install the [huggingface] extra")

from torch import nn  # noqa: E402
from transformers import BertConfig, BertModel, TrainerCallback, TrainingArguments  # noqa: E402

from curriculum_rl.controllers import make_controller  # noqa: E402
from curriculum_rl.integrations import TaskBatchSampler  # noqa: E402
from curriculum_rl.integrations.huggingface import CHECKPOINT_FILE, CurriculumTrainer  # noqa: E402
from curriculum_rl.trainer.trainer import soft_error  # noqa: E402

pytestmark = pytest.mark.slow  # transformers' import and Trainer: ~10 s per run on 2 cores
K, LENGTH, VOCAB, INTERVAL = 3, 6, 20, 4


def examples(seed: int, per_task: int) -> list[dict[str, torch.Tensor]]:
    """Task k: is token k + 1 among the tokens? (classes 2, 2, 2; task 2 is rarer)."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for task in range(K):
        for _ in range(per_task if task < 2 else per_task // 4):
            ids = torch.randint(4, VOCAB, (LENGTH,), generator=gen)
            label = int(torch.rand((), generator=gen) < 0.5)
            if label:
                ids[torch.randint(LENGTH, (), generator=gen)] = task + 1
            rows.append(
                {
                    "input_ids": ids,
                    "attention_mask": torch.ones(LENGTH, dtype=torch.long),
                    "labels": torch.tensor(label),
                    "task_ids": torch.tensor(task),
                }
            )
    return rows


class TinyMultitaskBert(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        config = BertConfig(
            vocab_size=VOCAB,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=LENGTH,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
        self.encoder = BertModel(config)
        self.heads = nn.Linear(16, 2 * K)

    def forward(self, input_ids, attention_mask, labels, task_ids):
        pooled = self.encoder(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        logits = self.heads(pooled).view(-1, K, 2)[torch.arange(len(task_ids)), task_ids]
        return {
            "loss": nn.functional.cross_entropy(logits, labels, reduction="none"),
            "logits": logits,
        }


class StopAt(TrainerCallback):
    """Interrupts training after ``step`` (after its checkpoint is written)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def trainer(out: Path, controller: str = "uw", callbacks=()) -> CurriculumTrainer:
    train = examples(0, 32)
    sampler = TaskBatchSampler([int(r["task_ids"]) for r in train], batch_size=8)
    args = TrainingArguments(
        output_dir=str(out),
        max_steps=24,
        per_device_train_batch_size=8,
        learning_rate=5e-3,
        eval_strategy="steps",
        eval_steps=INTERVAL,
        save_strategy="steps",
        save_steps=12,
        logging_steps=INTERVAL,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    return CurriculumTrainer(
        model=TinyMultitaskBert(),
        args=args,
        train_dataset=train,
        eval_dataset=examples(1, 8),
        controller=make_controller(controller),
        num_tasks=K,
        task_sampler=sampler,
        interval=INTERVAL,
        probe_layer="encoder.pooler.dense",
        task_names=["one", "two", "three"],
        task_kinds=["classification"] * K,
        callbacks=list(callbacks),
    )


def test_the_trainer_paces_a_transformer(tmp_path: Path):
    run = trainer(tmp_path)
    run.train()
    session = run.curriculum
    assert session.calls == 5 and session.steps == 24  # before batches 5, 9, 13, 17, 21
    torch.testing.assert_close(
        run.task_sampler.probabilities.float(), session.loop.previous.sampling[0]
    )
    assert session.state.grad_cos[0].abs().sum() > K  # the pooler's alignment was measured
    journal = session.journal.decisions.values()
    assert not torch.equal(journal[:, :K], journal[:, K : 2 * K])  # evaluation's val losses
    # classification errors: of the evaluation's mean losses, over its 8, 8 and 2 examples
    assert session.state.classify.all()
    val, counts = session.state.val_loss[0], [8, 8, 2]
    pairs = zip(val, counts, strict=True)
    expected = [soft_error(v.expand(n), torch.tensor(True)) for v, n in pairs]
    torch.testing.assert_close(session.state.val_error[0], torch.stack(expected))
    logged = [entry for entry in run.state.log_history if "curriculum/weight/one" in entry]
    assert len(logged) == 5
    assert (tmp_path / f"checkpoint-12/{CHECKPOINT_FILE}").is_file()
    assert list((tmp_path / "curriculum").glob("events.out.tfevents.*"))


def test_a_resumed_run_equals_the_uninterrupted_one(tmp_path: Path):
    whole = trainer(tmp_path / "whole")
    whole.train()
    trainer(tmp_path / "parts", callbacks=[StopAt(12)]).train()
    resumed = trainer(tmp_path / "parts")
    resumed.train(resume_from_checkpoint=True)
    a, b = whole.driver.state_dict(), resumed.driver.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-6, atol=1e-7, msg=key)


def test_a_model_with_a_mean_loss_is_told_what_to_return(tmp_path: Path):
    class MeanLoss(TinyMultitaskBert):
        def forward(self, **inputs):
            out = super().forward(**inputs)
            return {**out, "loss": out["loss"].mean()}

    run = trainer(tmp_path)
    run.model = MeanLoss()
    with pytest.raises(ValueError, match="one loss per example"):
        run.compute_loss(run.model, transformers.default_data_collator(examples(0, 4)))
