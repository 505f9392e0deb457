"""The callbacks of a training run (stable-baselines3's ``BaseCallback`` seam): inner-run
statistics, held-out evaluation, checkpoints, a progress bar, and stopping on Ctrl-C."""

from __future__ import annotations

import copy
import csv
import math
import signal
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from tqdm.auto import tqdm

from curriculum_rl.agents.checkpoints import export_policy, save_checkpoint
from curriculum_rl.agents.config import TrainConfig
from curriculum_rl.controllers.base import Uniform
from curriculum_rl.controllers.learned.controller import LearnedController
from curriculum_rl.runner import run_controller
from curriculum_rl.scores import score_run
from curriculum_rl.stats import iqm
from curriculum_rl.suites import Suite, resolve_suites


def _normalised_entropy(p: np.ndarray) -> float:
    """Entropy of a distribution over K tasks divided by log K (1 = uniform)."""
    k = len(p)
    if k < 2:
        return 1.0
    p = np.clip(p / max(p.sum(), 1e-12), 1e-12, 1.0)
    return float(-(p * np.log(p)).sum() / math.log(k))


def _append_csv(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


class InnerRunStatsCallback(BaseCallback):
    """Statistics of the inner multitask runs, logged under ``inner/`` at each rollout end:
    mean normalised entropy of the weights (1 = uniform; lower = the policy concentrates
    weight) and of the sampling, final J, episode return (overall and per synthetic
    setting) and the number of diverged runs. One row per finished run goes to
    ``episodes.csv`` (appended, so a resumed run continues the same curve)."""

    def __init__(self, out: Path) -> None:
        super().__init__()
        self.path = Path(out) / "episodes.csv"
        self.recent: deque[float] = deque(maxlen=100)
        self.window: dict[str, list[float]] = defaultdict(list)

    def _on_training_start(self) -> None:
        n = self.training_env.num_envs
        self.returns, self.entropy_sum, self.steps = np.zeros(n), np.zeros(n), np.zeros(n)

    def _on_step(self) -> bool:
        rewards, dones = self.locals["rewards"], self.locals["dones"]
        for run, info in enumerate(self.locals["infos"]):
            w_ent = _normalised_entropy(np.asarray(info["weights"]))
            self.window["weight_entropy"].append(w_ent)
            self.window["sampling_entropy"].append(
                _normalised_entropy(np.asarray(info["sampling"]))
            )
            self.returns[run] += rewards[run]
            self.entropy_sum[run] += w_ent
            self.steps[run] += 1
            if dones[run]:
                self._finish(run, info)
        return True

    def _finish(self, run: int, info: dict) -> None:
        ret = float(self.returns[run])
        setting = info.get("setting") or "none"
        self.window["episode_return"].append(ret)
        self.window["final_j"].append(float(info["j"]))
        self.window["diverged"].append(float(info["diverged"]))
        self.window[f"return/{setting}"].append(ret)
        self.recent.append(ret)
        _append_csv(
            self.path,
            {
                "timesteps": self.num_timesteps,
                "return": ret,
                "final_j": info["j"],
                "diverged": int(info["diverged"]),
                "num_tasks": info["num_tasks"],
                "setting": setting,
                "weight_entropy": self.entropy_sum[run] / max(self.steps[run], 1),
            },
        )
        self.returns[run] = self.entropy_sum[run] = self.steps[run] = 0

    def _on_rollout_end(self) -> None:
        for key, values in self.window.items():
            if key == "diverged":
                self.logger.record("inner/diverged_count", float(np.sum(values)))
            else:
                self.logger.record(f"inner/{key}", float(np.mean(values)))
        self.window = defaultdict(list)
        anchor_kl = getattr(self.model.policy, "anchor_kl", None)
        if anchor_kl is not None:  # of the previous update ([ppo] anchor_kl)
            self.logger.record("train/anchor_kl", anchor_kl)


def eval_suites(specs: list[str]) -> list[tuple[str, Suite]]:
    """Each suite ``[eval] suites`` names, with the label of its ``eval.csv`` columns: a
    file declaring several suites gives each of them, labelled ``FILE#NAME``, so model
    selection sees every validation suite on its own."""
    found = []
    for spec in specs:
        suites = resolve_suites(spec)
        if len(suites) == 1:
            found.append((spec, suites[0]))
        else:
            found += [(f"{spec}#{suite.name}", suite) for suite in suites]
    return found


class HeldOutEvalCallback(BaseCallback):
    """Every ``[eval] every`` timesteps (and at the end), runs the current policy as a
    controller on the held-out instances and logs, per suite and overall, the IQM of the
    paired gain over uniform weighting on the same instances and seeds (G_m, on task
    metrics, :mod:`curriculum_rl.scores`; a failed run scores -inf) and the number of
    failed runs; keeps the policy with the best overall score as ``best.{json,pt}``."""

    def __init__(
        self,
        config: TrainConfig,
        out: Path,
        log: Callable[[str], None] = print,
        stop: StopRequest | None = None,
    ) -> None:
        super().__init__()
        self.config, self.out, self.log = config, Path(out), log
        self.stop = stop or StopRequest()
        self.budget = config.eval.budget or config.env.budget
        self.interval = config.eval.interval or config.env.interval
        self.sets: list[tuple[str, list, list[int]]] = []
        self.uniform: dict[str, list[dict]] = {}
        self.last_at = 0
        self.best = -math.inf
        self.history: list[dict[str, Any]] = []

    def _on_training_start(self) -> None:
        s = self.config.eval
        seeds = list(range(s.first_seed, s.first_seed + s.seeds))
        for label, suite in eval_suites(s.suites):
            instances = [suite.sample(seed) for seed in seeds]
            records = run_controller(
                instances, seeds, Uniform(), self.budget, self.interval, self.config.env.trainer
            )
            self.sets.append((label, instances, seeds))
            self.uniform[label] = [r.to_dict() for r in records]
        self.last_at = self.num_timesteps
        if (self.out / "eval.csv").exists():  # a resumed run keeps its best so far
            with (self.out / "eval.csv").open() as f:
                self.best = max((float(r["gain"]) for r in csv.DictReader(f)), default=-math.inf)

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.num_timesteps - self.last_at >= self.config.eval.every:
            self.evaluate()

    def _on_training_end(self) -> None:
        # Not after Ctrl-C: the user asked to stop now, and an evaluation takes minutes.
        if self.num_timesteps != self.last_at and not self.stop.requested:
            self.evaluate()

    def evaluate(self) -> dict[str, Any]:
        self.last_at = self.num_timesteps
        actor = copy.deepcopy(self.model.policy.actor).cpu()
        row: dict[str, Any] = {"timesteps": self.num_timesteps}
        gains = []
        for spec, instances, seeds in self.sets:
            controller = LearnedController(actor, self.config.env.max_tasks, self.config.env.action)
            records = run_controller(
                instances, seeds, controller, self.budget, self.interval, self.config.env.trainer
            )
            scores = [
                score_run(r.to_dict(), u) for r, u in zip(records, self.uniform[spec], strict=True)
            ]
            suite_gains = [s.gain for s in scores]
            gains += suite_gains
            row[f"{spec}/gain"] = float(iqm(suite_gains))
            row[f"{spec}/gain_j"] = float(iqm([s.gain_j for s in scores]))
            row[f"{spec}/failed"] = sum(s.failed for s in scores)
        row["gain"] = float(iqm(gains))
        for key, value in row.items():
            if key != "timesteps":
                self.logger.record(f"eval/{key}", float(value))
        _append_csv(self.out / "eval.csv", row)
        self.history.append(row)
        if row["gain"] > self.best:
            self.best = row["gain"]
            export_policy(self.model, self.config, self.out / "best", notes={"eval": row})
        self.log(
            f"[eval] {self.num_timesteps} timesteps: held-out gain over uniform (IQM of G_m) "
            f"{row['gain']:+.3f} (best {self.best:+.3f})"
        )
        return row


class CheckpointCallback(BaseCallback):
    """Every ``[train] checkpoint_every`` timesteps: SB3's zip (for ``--resume``) and a safe
    policy artifact (SB3 has a ``CheckpointCallback`` too; this one also exports), with the
    training wall time so far from ``clock``."""

    def __init__(self, config: TrainConfig, out: Path, clock: Callable[[], float]) -> None:
        super().__init__()
        self.config, self.out, self.clock = config, Path(out), clock
        self.last_at = 0

    def _on_training_start(self) -> None:
        self.last_at = self.num_timesteps

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.num_timesteps - self.last_at >= self.config.train.checkpoint_every:
            self.last_at = self.num_timesteps
            save_checkpoint(self.model, self.config, self.out, self.clock())


class TqdmProgressCallback(BaseCallback):
    """A tqdm bar over timesteps with the recent mean episode return. (SB3's own
    ``progress_bar=True`` needs ``rich``, which is not a dependency of this package.)"""

    def __init__(self, total: int, stats: InnerRunStatsCallback | None = None) -> None:
        super().__init__()
        self.total, self.stats = total, stats
        self.bar = None

    def _on_training_start(self) -> None:
        self.bar = tqdm(
            total=self.total,
            initial=self.num_timesteps,
            unit="step",
            desc="PPO",
            dynamic_ncols=True,
        )

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_rollout_end(self) -> None:
        if self.stats is not None and self.stats.recent:
            self.bar.set_postfix(ep_return=f"{np.mean(self.stats.recent):.3f}")

    def _on_training_end(self) -> None:
        self.bar.close()


@dataclass
class StopRequest:
    """Whether the user asked training to stop (the first Ctrl-C, :func:`stop_on_interrupt`)."""

    requested: bool = False


@contextmanager
def stop_on_interrupt(log: Callable[[str], None] = print) -> Iterator[StopRequest]:
    """While the block runs, the first Ctrl-C (SIGINT) only sets the returned request:
    :class:`StopOnRequestCallback` then ends training at the next decision, and ``train``
    saves a checkpoint and the policy, so no work is lost. A second Ctrl-C interrupts at
    once, as usual. Signal handlers can only be set in the main thread; elsewhere Ctrl-C
    keeps its usual effect."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: object) -> None:
        request.requested = True
        signal.signal(signal.SIGINT, previous)
        log(
            "Ctrl-C: stopping at the next decision to save a checkpoint and the policy "
            "(Ctrl-C again to stop at once, without saving)"
        )

    signal.signal(signal.SIGINT, handler)
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, previous)


class StopOnRequestCallback(BaseCallback):
    """Ends ``model.learn`` at the next step once ``request`` is set."""

    def __init__(self, request: StopRequest) -> None:
        super().__init__()
        self.request = request

    def _on_step(self) -> bool:
        return not self.request.requested


def make_callbacks(
    config: TrainConfig,
    out: Path,
    *,
    stop: StopRequest,
    clock: Callable[[], float],
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[BaseCallback]:
    """The callbacks of a training run: stopping on request, statistics, checkpoints (with
    the wall time from ``clock``), evaluation, progress bar."""
    stats = InnerRunStatsCallback(out)
    callbacks: list[BaseCallback] = [
        StopOnRequestCallback(stop),
        stats,
        CheckpointCallback(config, out, clock),
    ]
    if config.eval.every > 0:
        callbacks.append(HeldOutEvalCallback(config, out, log, stop))
    if progress:
        callbacks.append(TqdmProgressCallback(config.train.total_timesteps, stats))
    return callbacks
