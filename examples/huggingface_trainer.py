"""Pace a Hugging Face ``Trainer`` on three text tasks with a curriculum controller.

``pip install 'curriculum-rl[huggingface]'``. A small BERT, randomly initialised from a
config (nothing is downloaded), shares its encoder between three generated text tasks with
their own heads: sentiment (2 classes), topic (4 classes) and negation (2 classes, few
examples). The model takes each batch's ``task_ids`` and returns one loss per example;
``CurriculumTrainer`` weights them with the controller in ``compute_loss``, draws the
batches from a ``TaskBatchSampler`` it steers, decides with the per-task losses of each
evaluation, logs weights and sampling through ``Trainer.log`` and writes the diagnostics
to TensorBoard under ``OUT/curriculum``.

Run:  python examples/huggingface_trainer.py [CONTROLLER] [--steps N] [--out DIR]
"""

from __future__ import annotations

import argparse
import random

import torch
from torch import nn
from transformers import BertConfig, BertModel, TrainingArguments, default_data_collator

import curriculum_rl
from curriculum_rl.integrations import TaskBatchSampler
from curriculum_rl.integrations.huggingface import CurriculumTrainer

LENGTH, INTERVAL = 12, 20
TASKS = {"sentiment": 2, "topic": 4, "negation": 2}
SIZES = {"sentiment": 600, "topic": 600, "negation": 60}
POSITIVE = ["good", "great", "fine", "lovely", "superb", "happy"]
NEGATIVE = ["bad", "awful", "poor", "dreadful", "sad", "grim"]
TOPICS = [
    ["goal", "match", "team", "score"],
    ["vote", "party", "law", "senate"],
    ["cpu", "code", "disk", "cloud"],
    ["bread", "soup", "salt", "cake"],
]
FILLER = ["the", "a", "this", "that", "it", "was", "is", "very", "quite", "so"]
WORDS = ["[PAD]", "[CLS]", "not", *POSITIVE, *NEGATIVE, *(w for t in TOPICS for w in t), *FILLER]
VOCAB = {w: i for i, w in enumerate(WORDS)}


def sentence(rng: random.Random, task: str) -> tuple[list[str], int]:
    """A generated sentence and its label for ``task``."""
    words = rng.choices(FILLER, k=rng.randint(3, 6))
    if task == "sentiment":
        label = rng.randrange(2)
        words += rng.choices(POSITIVE if label else NEGATIVE, k=2)
    elif task == "topic":
        label = rng.randrange(4)
        words += rng.choices(TOPICS[label], k=2)
    else:
        label = rng.randrange(2)
        words += rng.choices(POSITIVE + NEGATIVE, k=2) + (["not"] if label else [])
    rng.shuffle(words)
    return words, label


def encode(words: list[str]) -> tuple[list[int], list[int]]:
    ids = [VOCAB["[CLS]"], *(VOCAB[w] for w in words[: LENGTH - 1])]
    pad = LENGTH - len(ids)
    return ids + [0] * pad, [1] * len(ids) + [0] * pad


def make_split(seed: int, sizes: dict[str, int]) -> list[dict[str, torch.Tensor]]:
    """Examples of every task in task order (what ``TaskBatchSampler.from_sizes`` reads)."""
    rng = random.Random(seed)
    rows = []
    for task_id, task in enumerate(TASKS):
        for _ in range(sizes[task]):
            words, label = sentence(rng, task)
            ids, mask = encode(words)
            rows.append(
                {
                    "input_ids": torch.tensor(ids),
                    "attention_mask": torch.tensor(mask),
                    "labels": torch.tensor(label),
                    "task_ids": torch.tensor(task_id),
                }
            )
    return rows


class MultitaskBert(nn.Module):
    """A BERT encoder shared by the tasks, one classification head per task."""

    def __init__(self) -> None:
        super().__init__()
        config = BertConfig(
            vocab_size=len(WORDS),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=LENGTH,
        )
        self.encoder = BertModel(config)
        self.heads = nn.ModuleList(nn.Linear(32, n) for n in TASKS.values())
        self.widest = max(TASKS.values())

    def forward(self, input_ids, attention_mask, labels, task_ids):
        pooled = self.encoder(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        logits = pooled.new_full((len(task_ids), self.widest), float("-inf"))
        for k, head in enumerate(self.heads):
            rows = task_ids == k
            logits[rows, : head.out_features] = head(pooled[rows])
        losses = nn.functional.cross_entropy(logits, labels, reduction="none")
        return {"loss": losses, "logits": logits}  # one loss per example


def accuracy(trainer: CurriculumTrainer, data: list[dict]) -> dict[str, float]:
    logits = torch.as_tensor(trainer.predict(data).predictions)
    batch = default_data_collator(data)
    hits = (logits.argmax(-1) == batch["labels"]).float()
    return {t: round(hits[batch["task_ids"] == k].mean().item(), 3) for k, t in enumerate(TASKS)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("controller", nargs="?", default=None)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", default="runs/huggingface_example")
    args = parser.parse_args()

    torch.manual_seed(0)
    train = make_split(0, SIZES)
    val = make_split(1, dict.fromkeys(TASKS, 64))
    sampler = TaskBatchSampler([int(row["task_ids"]) for row in train], batch_size=32)
    trainer = CurriculumTrainer(
        model=MultitaskBert(),
        args=TrainingArguments(
            output_dir=args.out,
            max_steps=args.steps,
            per_device_train_batch_size=32,  # what the sampler draws (for the reports)
            learning_rate=1e-3,
            eval_strategy="steps",
            eval_steps=INTERVAL,  # fresh per-task validation losses at every decision
            save_strategy="no",
            logging_steps=INTERVAL,
            report_to="none",
            use_cpu=True,
            disable_tqdm=True,
        ),
        train_dataset=train,
        eval_dataset=val,
        data_collator=default_data_collator,
        controller=curriculum_rl.load_controller(args.controller),
        num_tasks=len(TASKS),
        task_sampler=sampler,
        interval=INTERVAL,
        probe_layer="encoder.pooler.dense",
        task_names=list(TASKS),
        task_kinds=["classification"] * len(TASKS),  # their errors, as the policy learned
        train_sizes=list(SIZES.values()),
    )
    trainer.train()
    weights = trainer.curriculum.loop.previous.weights[0].tolist()
    print(
        f"controller {trainer.curriculum.controller.name}: {trainer.curriculum.calls} "
        f"decisions; final weights {[round(w, 3) for w in weights]}; validation accuracy "
        f"{accuracy(trainer, val)}"
    )


if __name__ == "__main__":
    main()
