"""The decision process shared by the single-run env and the batched VecEnv.

N runs advance together in one :class:`~curriculum_rl.trainer.BatchedMultitaskTrainer`.
Each run owns a numpy random stream (seeded like a gymnasium env); at every episode start
it draws the suite-instance seed and the trainer seed from that stream, so a VecEnv slot
seeded ``s`` replays exactly what a single env reset with ``seed=s`` does.

One step = one decision: apply the action, train ``interval`` inner steps, measure.
Reward = J(before) - J(after), J = mean over objective tasks of log val loss, so an
episode's return telescopes to the log-improvement of the run; minus, if
``emphasis_cost`` > 0, that cost times the decision's divergence from uniform emphasis
(:func:`~curriculum_rl.controllers.actions.emphasis_divergence`). A run whose loss turns
non-finite ends with ``terminated=True``, ``info["diverged"] = True`` and reward
``-divergence_penalty``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from curriculum_rl.controllers.actions import actions_to_decision, emphasis_divergence
from curriculum_rl.controllers.base import DecisionState
from curriculum_rl.controllers.observation import NUM_FEATURES
from curriculum_rl.loop import DecisionLoop
from curriculum_rl.suites import Suite, resolve_suite
from curriculum_rl.trainer import BatchedMultitaskTrainer, TrainerConfig


@dataclass(frozen=True)
class EnvConfig:
    """What defines the decision process (kwargs of ``gymnasium.make``).

    Attributes:
        suite: suite SPEC or object the instances are sampled from.
        budget: inner optimisation steps per episode. interval: inner steps per decision.
        max_tasks: K_max, the padded task dimension of observations and actions.
        divergence_penalty: reward of the step at which a run diverges (negated).
        trainer: inner-training hyper-parameters.
        emphasis_cost: per-decision reward cost per unit of KL(uniform || effective task
            emphasis); 0 (default) is the plain log-improvement reward. A price on leaving
            uniform training, so a policy moves away from it only where that pays.
    """

    suite: str | Suite = "synthetic"
    budget: int = 1500
    interval: int = 25
    max_tasks: int = 8
    divergence_penalty: float = 1.0
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    emphasis_cost: float = 0.0

    def __post_init__(self) -> None:
        if self.budget < 1 or self.interval < 1:
            raise ValueError(
                f"budget and interval must be >= 1, got {self.budget}, {self.interval}"
            )
        if self.budget % self.interval:
            raise ValueError(
                f"budget ({self.budget}) must be a multiple of interval ({self.interval}) so that "
                "every decision trains the same number of steps; e.g. budget="
                f"{self.budget // self.interval * self.interval or self.interval}"
            )
        if self.max_tasks < 1:
            raise ValueError(f"max_tasks must be >= 1, got {self.max_tasks}")
        if self.divergence_penalty < 0:
            raise ValueError("divergence_penalty must be >= 0")
        if not self.emphasis_cost >= 0:
            raise ValueError(f"emphasis_cost must be >= 0, got {self.emphasis_cost}")

    @property
    def episode_length(self) -> int:
        return self.budget // self.interval

    @property
    def obs_shape(self) -> tuple[int, int]:
        return (self.max_tasks, NUM_FEATURES)

    @property
    def action_shape(self) -> tuple[int, int]:
        return (self.max_tasks, 2)


class CurriculumCore:
    """N runs of the decision process, stepped together."""

    def __init__(self, config: EnvConfig, num_runs: int) -> None:
        self.config = config
        self.suite = resolve_suite(config.suite)
        self.num_runs = num_runs
        self.rngs = [np.random.default_rng() for _ in range(num_runs)]
        self.trainer: BatchedMultitaskTrainer | None = None
        self.loop: DecisionLoop | None = None
        self.decisions = np.zeros(num_runs, dtype=int)

    def seed(self, run: int, seed: int | None) -> None:
        self.rngs[run] = np.random.default_rng(seed)

    def _draw(self, run: int):
        instance_seed, run_seed = (int(s) for s in self.rngs[run].integers(0, 2**31, size=2))
        return self.suite.sample(instance_seed), run_seed

    def reset_all(self) -> np.ndarray:
        """Start a fresh episode in every run; return observations (N, K_max, F)."""
        drawn = [self._draw(run) for run in range(self.num_runs)]
        instances, seeds = [d[0] for d in drawn], [d[1] for d in drawn]
        self.trainer = BatchedMultitaskTrainer(
            instances,
            seeds,
            self.config.trainer,
            max_tasks=self.config.max_tasks,
            # runs restart one by one on fresh instances: size heads for the widest task
            out_max=max(spec.out_dim for spec in self.suite.describe()),
        )
        self.loop = DecisionLoop(self.trainer.mask, self.trainer.sizes, self.config.budget)
        self.decisions[:] = 0
        self.loop.observe(self.trainer.measure())
        return self.observation()

    def reset_runs(self, runs: list[int]) -> np.ndarray:
        """Start a fresh episode in ``runs`` only; return all observations."""
        for run in runs:
            instance, seed = self._draw(run)
            self.trainer.reset_run(run, instance, seed)
        self.loop.restart(runs, self.trainer.mask, self.trainer.sizes)
        self.decisions[runs] = 0
        self.loop.observe(self.trainer.measure(), runs=runs)
        return self.observation()

    def observation(self) -> np.ndarray:
        return self.loop.state.observation(self.config.max_tasks).cpu().numpy()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        """Apply actions (N, K_max, 2); return obs, rewards, terminated, infos (before
        any reset: the caller decides whether and how to restart finished runs)."""
        actions = np.asarray(actions, dtype=np.float32).reshape(
            self.num_runs, *self.config.action_shape
        )
        decision = self.loop.commit(
            actions_to_decision(
                torch.from_numpy(actions).to(self.trainer.device), self.trainer.mask
            )
        )
        self.trainer.set_schedule(decision.weights, decision.sampling)
        self.trainer.train(self.config.interval)
        j_before = self.loop.state.j
        state = self.loop.observe(self.trainer.measure())
        self.decisions += 1
        diverged = state.diverged.cpu().numpy()
        rewards = (j_before - state.j).cpu().numpy().astype(np.float64)
        if self.config.emphasis_cost:
            divergence = emphasis_divergence(decision, self.trainer.mask).cpu().numpy()
            rewards = rewards - self.config.emphasis_cost * divergence
        rewards = np.where(diverged, -self.config.divergence_penalty, rewards)
        rewards = np.nan_to_num(rewards, nan=-self.config.divergence_penalty)
        terminated = diverged | (self.decisions >= self.config.episode_length)
        return self.observation(), rewards, terminated, self._infos(state, diverged)

    def _infos(self, state: DecisionState, diverged: np.ndarray) -> list[dict]:
        # One device-to-host copy per field, then numpy slices: per-run tensor
        # conversions would cost more than the rest of a batched step's bookkeeping.
        k = self.trainer.mask.sum(1).tolist()
        host = {
            "weights": state.previous.weights.cpu().numpy(),
            "sampling": state.previous.sampling.cpu().numpy(),
            "val_loss": state.val_loss.cpu().numpy(),
        }
        j = state.j.tolist()
        steps = state.steps.tolist()
        return [
            {
                "diverged": bool(diverged[run]),
                "j": float(j[run]),
                "steps": int(steps[run]),
                "num_tasks": int(k[run]),
                **{name: values[run, : k[run]] for name, values in host.items()},
                "setting": self.trainer.instances[run].info.get("setting"),
            }
            for run in range(self.num_runs)
        ]
