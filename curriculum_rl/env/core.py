"""The decision process shared by the single-run env and the batched VecEnv.

N runs advance together in one :class:`~curriculum_rl.trainer.BatchedMultitaskTrainer`.
Each run owns a numpy random stream (seeded like a gymnasium env); at every episode start
it draws the suite-instance seed and the trainer seed (and, with ``budgets``, the
episode's budget) from that stream, so a VecEnv slot seeded ``s`` replays exactly what a
single env reset with ``seed=s`` does.

One step = one decision: map the action to a decision (``action``, see
:mod:`curriculum_rl.controllers.actions`), train ``interval`` inner steps, measure.
Reward = Φ(before) - Φ(after), so an episode's return telescopes to the run's
log-improvement of the potential Φ, the mean over target tasks of

* ``reward = "error"`` (default): log validation *error* (MSE for regression, the smoothed
  soft error for classification: :func:`curriculum_rl.trainer.trainer.soft_error`), the
  validation twin of the headline score G_m: a solved task's error is floored, so a
  policy cannot earn reward by driving its cross-entropy toward zero;
* ``reward = "loss"``: log validation loss (J).

With ``shadow = True`` every run has a paired *shadow*: a uniform-weighting run on the
same instance from the same initialisation, trained in the same batch, and the reward is
the agent's improvement minus the shadow's, so the return is the run's gain over uniform
weighting and most of the instance-to-instance variance of returns cancels. Minus, if
``emphasis_cost`` > 0, that cost times the decision's divergence from the emphasis of the
action transform's centre rule (its zero action: uniform, or scale-normalised)
(:func:`~curriculum_rl.controllers.actions.emphasis_divergence`), or, with
``emphasis_anchor``, from the emphasis a fixed policy (the one being fine-tuned) gives at
the same signals: fine-tuning then pays for every change of behaviour, so it keeps what
the anchor does well wherever the reward does not pay for leaving it. A run that fails (the
trainer's one definition: non-finite, or J far above its start) ends with
``terminated=True``, ``info["diverged"] = True`` and reward ``-divergence_penalty``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from curriculum_rl.controllers.actions import (
    DEFAULT_TRANSFORM,
    action_transform,
    emphasis_divergence,
)
from curriculum_rl.controllers.base import DecisionState
from curriculum_rl.controllers.decision import Decision, uniform_decision
from curriculum_rl.controllers.learned import LearnedController
from curriculum_rl.controllers.observation import NUM_FEATURES
from curriculum_rl.loop import DecisionLoop, put_in_force
from curriculum_rl.suites import Suite, SuiteInstance, resolve_suite
from curriculum_rl.trainer import (
    CRITERIA,
    BatchedMultitaskTrainer,
    TrainerConfig,
    validation_potential,
    validation_values,
)
from curriculum_rl.trainer.objective import EPS

REWARDS = CRITERIA


@dataclass(frozen=True)
class EnvConfig:
    """What defines the decision process (kwargs of ``gymnasium.make``).

    Attributes:
        suite: suite SPEC or object the instances are sampled from.
        budget: inner optimisation steps per episode. interval: inner steps per decision.
        budgets: if not empty, each episode draws its budget from these instead (each a
            multiple of ``interval``): the observation carries the fraction of the budget
            used and its size, so one policy can learn runs of several lengths.
        max_tasks: K_max, the padded task dimension of observations and actions.
        divergence_penalty: reward of the step at which a run diverges (negated).
        trainer: inner-training hyper-parameters.
        action: the action transform (``error_power``, ``loss_power`` or ``logits``).
        reward: the potential whose decrease is the reward, ``error`` or ``loss``.
        shadow: pair every run with a uniform-weighting shadow run and reward the
            difference (twice the inner-training compute per decision).
        emphasis_cost: per-decision reward cost per unit of KL(centre || effective task
            emphasis), the centre being the action transform's zero action (uniform for
            ``logits`` and ``loss_power``, the scale-normalised rule for ``error_power``);
            0 (default) is the plain log-improvement reward.
        emphasis_anchor: a policy file (``NAME.json``); if set, ``emphasis_cost`` prices
            leaving that policy's emphasis instead of the centre rule's (fine-tuning
            without forgetting what the anchor does).
        worst_task_cost: price per unit of the worst target task's excess log validation
            error (or loss) over the uniform shadow's, ``max(0, max_k log(E_k / E^u_k))``,
            charged on its change at every decision so that an episode pays it once, at
            its end value (needs ``shadow``); 0 (default) is no price.
    """

    suite: str | Suite = "synthetic"
    budget: int = 1500
    interval: int = 25
    budgets: tuple[int, ...] = ()
    max_tasks: int = 8
    divergence_penalty: float = 1.0
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    action: str = DEFAULT_TRANSFORM
    reward: str = "error"
    shadow: bool = False
    emphasis_cost: float = 0.0
    emphasis_anchor: str = ""
    worst_task_cost: float = 0.0

    def __post_init__(self) -> None:
        if self.interval < 1:
            raise ValueError(f"interval must be >= 1, got {self.interval}")
        for budget in (self.budget, *self.budgets):
            if budget < self.interval or budget % self.interval:
                raise ValueError(
                    f"budget {budget} must be a positive multiple of interval ({self.interval}) "
                    "so that every decision trains the same number of steps; e.g. "
                    f"{max(budget // self.interval, 1) * self.interval}"
                )
        if self.max_tasks < 1:
            raise ValueError(f"max_tasks must be >= 1, got {self.max_tasks}")
        if self.divergence_penalty < 0:
            raise ValueError("divergence_penalty must be >= 0")
        if not self.emphasis_cost >= 0:
            raise ValueError(f"emphasis_cost must be >= 0, got {self.emphasis_cost}")
        if self.reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {self.reward!r}")
        if self.emphasis_anchor and not self.emphasis_cost:
            raise ValueError(
                f"emphasis_anchor = {self.emphasis_anchor!r} has no effect without a price: "
                "set emphasis_cost > 0 (e.g. 0.02), or drop emphasis_anchor"
            )
        if not self.worst_task_cost >= 0:
            raise ValueError(f"worst_task_cost must be >= 0, got {self.worst_task_cost}")
        if self.worst_task_cost and not self.shadow:
            raise ValueError(
                f"worst_task_cost = {self.worst_task_cost} needs the uniform shadow it is "
                "measured against: set shadow = true, or drop worst_task_cost"
            )
        action_transform(self.action)  # raises for an unknown name

    @property
    def episode_length(self) -> int:
        """Decisions per episode (the longest, with ``budgets``)."""
        return max(self.budget, *self.budgets) // self.interval

    @property
    def obs_shape(self) -> tuple[int, int]:
        return (self.max_tasks, NUM_FEATURES)

    @property
    def action_shape(self) -> tuple[int, int]:
        return (self.max_tasks, action_transform(self.action).dim)


def potential(state: DecisionState, reward: str) -> torch.Tensor:
    """(N,) Φ of the reward: mean over target tasks of log val error (or loss)."""
    return validation_potential(state, reward)


def worst_task_excess(state: DecisionState, reward: str, num_runs: int) -> torch.Tensor:
    """(num_runs,) how far the worst target task's log validation error (or loss) lies
    above that of its run's uniform shadow (slots ``num_runs..2·num_runs-1``); 0 when every
    target task is at least as good as under uniform weighting, or the values are not
    finite (a failed run is priced by ``divergence_penalty`` instead)."""
    n = num_runs
    logs = validation_values(state, reward).clamp_min(EPS).log()
    excess = torch.where(state.objective[:n], logs[:n] - logs[n : 2 * n], -torch.inf)
    return excess.amax(1).clamp_min(0).nan_to_num(0.0, 0.0, 0.0)


class CurriculumCore:
    """N runs of the decision process (plus N shadows with ``shadow``), stepped together.

    The trainer and the decision loop hold the agent's runs in slots ``0..N-1`` and their
    shadows, when any, in ``N..2N-1``.
    """

    def __init__(self, config: EnvConfig, num_runs: int) -> None:
        self.config = config
        self.suite = resolve_suite(config.suite)
        self.num_runs = num_runs
        self.transform = action_transform(config.action)
        self.anchor = (
            LearnedController.load(config.emphasis_anchor) if config.emphasis_anchor else None
        )
        self.rngs = [np.random.default_rng() for _ in range(num_runs)]
        self.trainer: BatchedMultitaskTrainer | None = None
        self.loop: DecisionLoop | None = None
        self.decisions = np.zeros(num_runs, dtype=int)
        self.lengths = np.full(num_runs, config.budget // config.interval)

    @property
    def slots(self) -> int:
        """Runs in the trainer: the agent's, and as many shadows with ``shadow``."""
        return 2 * self.num_runs if self.config.shadow else self.num_runs

    def seed(self, run: int, seed: int | None) -> None:
        self.rngs[run] = np.random.default_rng(seed)

    def _draw(self, run: int) -> tuple[SuiteInstance, int, int]:
        instance_seed, run_seed = (int(s) for s in self.rngs[run].integers(0, 2**31, size=2))
        budget = self.config.budget
        if self.config.budgets:  # drawn only then, so fixed-budget streams stay as they were
            budget = int(self.config.budgets[self.rngs[run].integers(len(self.config.budgets))])
        self.lengths[run] = budget // self.config.interval
        return self.suite.sample(instance_seed), run_seed, budget

    def _mirror(self, runs: list) -> list:
        """Per-run values for every trainer slot (the shadows copy their agent's)."""
        return runs + runs if self.config.shadow else runs

    def reset_all(self) -> np.ndarray:
        """Start a fresh episode in every run; return observations (N, K_max, F)."""
        drawn = [self._draw(run) for run in range(self.num_runs)]
        instances, seeds, budgets = (self._mirror([d[i] for d in drawn]) for i in range(3))
        self.trainer = BatchedMultitaskTrainer(
            instances,
            seeds,
            self.config.trainer,
            max_tasks=self.config.max_tasks,
            # runs restart one by one on fresh instances: size heads for the widest task
            out_max=max(spec.out_dim for spec in self.suite.describe()),
        )
        budget = torch.tensor(budgets, dtype=torch.float32, device=self.trainer.device)
        self.loop = DecisionLoop(self.trainer.mask, self.trainer.sizes, budget)
        self.decisions[:] = 0
        self.loop.observe(self.trainer.measure())
        return self.observation()

    def reset_runs(self, runs: list[int]) -> np.ndarray:
        """Start a fresh episode in ``runs`` only; return all observations."""
        slots, budgets = [], torch.zeros(self.slots, device=self.trainer.device)
        for run in runs:
            instance, seed, budget = self._draw(run)
            for slot in self._slots_of(run):
                self.trainer.reset_run(slot, instance, seed)
                budgets[slot] = budget
                slots.append(slot)
        selected = torch.zeros(self.slots, dtype=torch.bool, device=self.trainer.device)
        selected[slots] = True
        budget = torch.where(selected, budgets, self.loop.budget)
        self.loop.restart(slots, self.trainer.mask, self.trainer.sizes, budget)
        self.decisions[runs] = 0
        self.loop.observe(self.trainer.measure(), runs=slots)
        return self.observation()

    def _slots_of(self, run: int) -> list[int]:
        return [run, run + self.num_runs] if self.config.shadow else [run]

    def observation(self) -> np.ndarray:
        obs = self.loop.state.observation(self.config.max_tasks)[: self.num_runs]
        return obs.cpu().numpy()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        """Apply actions (N, K_max, dim); return obs, rewards, terminated, infos (before
        any reset: the caller decides whether and how to restart finished runs)."""
        actions = np.asarray(actions, dtype=np.float32).reshape(
            self.num_runs, *self.config.action_shape
        )
        decision, reference = self._decide(torch.from_numpy(actions).to(self.trainer.device))
        put_in_force(self.trainer, decision)
        self.trainer.train(self.config.interval)
        before = self._potentials(self.loop.state)
        state = self.loop.observe(self.trainer.measure())
        self.decisions += 1
        after = self._potentials(state)
        rewards = self._rewards(before, after, decision, reference, state)
        diverged = state.diverged[: self.num_runs].cpu().numpy()
        terminated = diverged | (self.decisions >= self.lengths)
        return self.observation(), rewards, terminated, self._infos(state, diverged)

    def _decide(self, actions: torch.Tensor) -> tuple[Decision, Decision | None]:
        """The agent's decision for its runs (shadows keep uniform weighting), and the
        decision the emphasis price is measured from: the anchor policy's, else the
        transform's centre rule at the same signals, or ``None`` for uniform (a uniform
        centre, or no price)."""
        state = self.loop.state
        n = self.num_runs
        rows = _rows(state, slice(0, n))
        agent = self.transform.decision(actions, rows)
        reference = None
        if self.config.emphasis_cost:
            if self.anchor is not None:
                reference = self.anchor.decide(rows)
            elif not self.transform.uniform_centre:
                # The price is paid for leaving the transform's centre rule, not uniform.
                reference = self.transform.decision(torch.zeros_like(actions), rows)
        if self.config.shadow:
            agent = agent.cat(uniform_decision(state.mask[n:]))
        return self.loop.commit(agent), reference

    def _potentials(self, state: DecisionState) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Φ of every run, and the worst-task excess of the agent's runs when it is priced."""
        phi = potential(state, self.config.reward)
        if not self.config.worst_task_cost:
            return phi, None
        return phi, worst_task_excess(state, self.config.reward, self.num_runs)

    def _rewards(
        self,
        before: tuple[torch.Tensor, torch.Tensor | None],
        after: tuple[torch.Tensor, torch.Tensor | None],
        decision: Decision,
        reference: Decision | None,
        state,
    ) -> np.ndarray:
        n = self.num_runs
        (phi_before, excess_before), (phi_after, excess_after) = before, after
        gain = phi_before - phi_after
        rewards = gain[:n]
        if self.config.shadow:
            # A shadow that failed (rare: it is uniform) contributes nothing.
            shadow_gain = torch.where(state.diverged[n:], 0.0, gain[n:])
            rewards = rewards - shadow_gain.nan_to_num(0.0, 0.0, 0.0)
        if self.config.worst_task_cost:
            # A potential-based price: the episode's sum is the excess at its end.
            rewards = rewards - self.config.worst_task_cost * (excess_after - excess_before)
        rewards = rewards.cpu().numpy().astype(np.float64)
        if self.config.emphasis_cost:
            mask = self.trainer.mask[:n]
            divergence = emphasis_divergence(_first(decision, n), mask, reference)
            divergence = divergence.cpu().numpy()
            rewards = rewards - self.config.emphasis_cost * divergence
        diverged = state.diverged[:n].cpu().numpy()
        rewards = np.where(diverged, -self.config.divergence_penalty, rewards)
        return np.nan_to_num(rewards, nan=-self.config.divergence_penalty)

    def _infos(self, state: DecisionState, diverged: np.ndarray) -> list[dict]:
        # One device-to-host copy per field, then numpy slices: per-run tensor
        # conversions would cost more than the rest of a batched step's bookkeeping.
        n = self.num_runs
        k = self.trainer.mask[:n].sum(1).tolist()
        host = {
            "weights": state.previous.weights[:n].cpu().numpy(),
            "sampling": state.previous.sampling[:n].cpu().numpy(),
            "val_loss": state.val_loss[:n].cpu().numpy(),
        }
        j = state.j[:n].tolist()
        steps = state.steps[:n].tolist()
        return [
            {
                "diverged": bool(diverged[run]),
                "j": float(j[run]),
                "steps": int(steps[run]),
                "num_tasks": int(k[run]),
                **{name: values[run, : k[run]] for name, values in host.items()},
                "setting": self.trainer.instances[run].info.get("setting"),
            }
            for run in range(n)
        ]


def _first(decision: Decision, n: int) -> Decision:
    return decision.runs(slice(0, n))


def _rows(state: DecisionState, rows: slice) -> DecisionState:
    """The state of some runs only (every per-run tensor sliced on its first dim)."""
    fields = {
        name: getattr(state, name)[rows]
        for name in DecisionState.__dataclass_fields__
        if name not in ("previous", "_observations")
    }
    return DecisionState(**fields, previous=_first(state.previous, rows.stop))
