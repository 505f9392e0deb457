"""Cost of the controller inside a user's training loop (CurriculumSession), per decision
and as a share of the step time of a realistic model.

A small transformer encoder (plain PyTorch: token embedding, ``--layers`` encoder layers of
width ``--width``, mean pooling, one linear head per task) trains on K generated token
classification tasks, batches mixing the tasks. Two loops run the same model, data and
optimiser, interleaved repetition by repetition (the machine is shared, so only figures
from one run are comparable):

* ``plain``: ``loss = per_example_losses.mean()``, the loop without a controller;
* ``session``: ``loss = session.loss(per_example_losses, task_ids)`` every step, a
  decision (``session.update``) every ``--interval`` steps, with a ``GradientProbe`` on the
  pooled features' shared projection (the extra backward through the heads at decision
  steps only).

Reported: milliseconds per step of each loop (median over repetitions), their ratio
(median of the per-repetition ratios, a check whose noise on a shared machine is a few
per cent), and the session's own cost timed directly: per decision (the decision plus the
probe's extra backward at the step before it), per ``session.loss`` call on the other
steps, and both per step as a share of the plain step (target: under 1% at a decision every
25 steps).

    python benchmarks/session_overhead.py [--controller default] [--interval 25]
        [--steps 50] [--reps 6] [--threads 1] [--device cpu] [--autocast none|bf16|fp16]
        [--json]

One thread by default: on a shared 2-core machine a second thread waits on the other
jobs' cores (measured 14x slower steps with 2 threads beside two training jobs).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

import curriculum_rl
from curriculum_rl.session import CurriculumSession, GradientProbe


class Encoder(nn.Module):
    """Token embedding, a transformer encoder, mean pooling, a shared projection, K heads."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__()
        self.embed = nn.Embedding(args.vocab, args.width)
        layer = nn.TransformerEncoderLayer(
            args.width, args.heads, 4 * args.width, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, args.layers)
        self.shared = nn.Linear(args.width, args.width)  # the probe's layer
        self.heads = nn.Linear(args.width, args.tasks * args.classes)
        self.tasks, self.classes = args.tasks, args.classes

    def forward(self, tokens: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        pooled = torch.tanh(self.shared(self.encoder(self.embed(tokens)).mean(1)))
        logits = self.heads(pooled).view(-1, self.tasks, self.classes)
        return logits[torch.arange(len(task), device=task.device), task]


def batches(args: argparse.Namespace, device: torch.device, count: int) -> list[tuple]:
    """``count`` batches of tokens, labels (a token-count rule per task) and task ids."""
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(count):
        tokens = torch.randint(args.vocab, (args.batch, args.length), generator=gen)
        task = torch.arange(args.batch) % args.tasks
        label = (tokens < (task[:, None] + 1) * 8).sum(1) % args.classes
        out.append((tokens.to(device), label.to(device), task.to(device)))
    return out


class Timer:
    """Wall-clock seconds, with the device's queue drained at both ends."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __call__(self, work: Callable[[], object]) -> float:
        self._sync()
        start = time.perf_counter()
        work()
        self._sync()
        return time.perf_counter() - start

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def run_loop(args, model, optimizer, data, session: CurriculumSession | None, timer: Timer):
    """One repetition: seconds per step, the session's own seconds per decision and per
    ``loss()`` call on the other steps."""
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.autocast)
    decision_s: list[float] = []
    loss_s: list[float] = []  # session.loss() on the other steps

    def step(tokens, label, task) -> None:
        with torch.autocast(
            model_device(model).type, dtype=amp or torch.float32, enabled=bool(amp)
        ):
            losses = nn.functional.cross_entropy(
                model(tokens, task).float(), label, reduction="none"
            )
            if session is None:
                loss = losses.mean()
            elif session.probe.armed:  # the probe's extra backward happens in this call
                start = time.perf_counter()
                loss = session.loss(losses, task)
                decision_s.append(time.perf_counter() - start)
            else:
                start = time.perf_counter()
                loss = session.loss(losses, task)
                loss_s.append(time.perf_counter() - start)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if session is not None and session.decision_due:
            decision_s[-1] += timer(session.update)

    seconds = timer(lambda: [step(*batch) for batch in data])
    return seconds / len(data), decision_s, loss_s


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--controller", default="default", help="name or policy file")
    parser.add_argument("--interval", type=int, default=25, help="steps per decision")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per repetition")
    parser.add_argument("--reps", type=int, default=6, help="interleaved repetitions")
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=32, help="tokens per example")
    parser.add_argument("--vocab", type=int, default=512)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--autocast", default="none", choices=["none", "bf16", "fp16"])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: default)")
    parser.add_argument("--json", action="store_true", help="print a JSON object as last line")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    timer = Timer(device)
    data = batches(args, device, args.steps)
    torch.manual_seed(0)
    model = Encoder(args).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    controller = curriculum_rl.load_controller(args.controller)
    run_loop(args, model, optimizer, data[:3], None, timer)  # warm-up
    plain, paced, ratios, decisions, loss_calls = [], [], [], [], []
    for rep in range(args.reps):
        session = CurriculumSession(
            controller,
            args.tasks,
            budget=args.reps * args.steps,
            interval=args.interval,
            probe=GradientProbe(model.shared),
        )
        order = [None, session] if rep % 2 == 0 else [session, None]
        times = {}
        for which in order:
            seconds, per_decision, per_loss = run_loop(args, model, optimizer, data, which, timer)
            times[which is None] = seconds
            decisions += per_decision
            loss_calls += per_loss
        plain.append(times[True])
        paced.append(times[False])
        ratios.append(times[False] / times[True])
    step_ms = 1000 * statistics.median(plain)
    decision_ms = 1000 * statistics.median(decisions)
    loss_ms = 1000 * statistics.median(loss_calls)
    per_step_ms = decision_ms / args.interval + loss_ms
    result = {
        "controller": controller.name,
        "device": torch.cuda.get_device_name()
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "autocast": args.autocast,
        "model": f"{args.layers}-layer transformer, width {args.width}, {args.batch} x "
        f"{args.length} tokens, {args.tasks} tasks",
        "plain_step_ms": round(step_ms, 2),
        "session_step_ms": round(1000 * statistics.median(paced), 2),
        "session_over_plain": round(statistics.median(ratios), 4),
        "decision_ms": round(decision_ms, 3),
        "decisions_timed": len(decisions),
        "loss_call_ms": round(loss_ms, 4),
        "controller_ms_per_step": round(per_step_ms, 4),
        "controller_share_of_step": round(per_step_ms / step_ms, 5),
        "interval": args.interval,
    }
    for key, value in result.items():
        print(f"{key:>26}: {value}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
