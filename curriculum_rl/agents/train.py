"""PPO training of the meta-controller (``curriculum-rl train``).

A run is configured by a TOML file (``agents/default.toml`` is the shipped one) with five
tables, each parsed into a typed dataclass; an unknown key or a wrong type is an error that
names the table, the key and the valid choices:

* ``[env]``: the training distribution (suite SPEC) and the decision process (``n_envs``
  batched runs, ``budget`` inner steps per episode, ``interval`` per decision,
  ``max_tasks``); ``[env.trainer]``: the inner trainer
  (:class:`~curriculum_rl.trainer.TrainerConfig`).
* ``[ppo]``: stable-baselines3 PPO hyper-parameters.
* ``[policy]``: network sizes (:class:`~curriculum_rl.agents.network.NetworkConfig`) and
  ``ignore_features``, observation features the policy must not read (ablations).
* ``[train]``: ``total_timesteps``, ``seed``, checkpoint cadence, threads.
* ``[eval]``: periodic evaluation on held-out instances: the current policy drives
  :func:`~curriculum_rl.runner.run_controller` on ``seeds`` instances of each suite in
  ``suites`` (instance seeds from ``first_seed``, which training never draws on purpose)
  and the mean test-J gain over uniform weighting on the same instances is logged.

What a run writes under ``--out``::

    config.json            the resolved config (a resumed run reads it back)
    tb/                    TensorBoard: SB3's rollout/ and train/ scalars, inner/ statistics
                           of the inner runs, eval/ held-out gains
    progress-<T>.csv       the same scalars, one file per (re)start at timestep T
    episodes.csv           one row per finished inner run (learning curve)
    eval.csv               one row per held-out evaluation
    checkpoints/last.zip   SB3's own checkpoint (pickle inside): ONLY for ``--resume`` of
                           this run, never for sharing or loading policies
    checkpoints/policy-<T>.{json,pt}   safe policy artifacts along the way
    policy.{json,pt}       the final policy; best.{json,pt}: best held-out gain
    learning_curve.png     episode return and held-out gain over timesteps

Normalisation: observations are already scale-free and clipped by construction, and
SB3's ``VecNormalize`` would standardise each (task slot, feature) cell separately,
which breaks the task-permutation equivariance (slot 8 is mostly padding, slot 1 never
is) and would tie the policy to ``K_max``; so it is not used. Rewards are log-improvements
whose episode returns are O(1) (telescoping to J_start - J_end, typically 1-5), which is
the scale PPO's value loss and advantage normalisation handle well without a running
reward normaliser, and the artifact then needs no normalisation statistics.
"""

from __future__ import annotations

import copy
import csv
import difflib
import json
import math
import time
import types
import typing
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import CSVOutputFormat, Logger, TensorBoardOutputFormat
from stable_baselines3.common.vec_env import VecMonitor
from tqdm.auto import tqdm

from curriculum_rl.agents.artifact import save_artifact
from curriculum_rl.agents.controller import LearnedController
from curriculum_rl.agents.network import NetworkConfig
from curriculum_rl.agents.policy import TaskSetPolicy
from curriculum_rl.controllers.base import Uniform
from curriculum_rl.env import BatchedCurriculumVecEnv
from curriculum_rl.runner import run_controller
from curriculum_rl.suites import resolve_suite
from curriculum_rl.trainer import TrainerConfig

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    try:
        import tomli as tomllib  # type: ignore[no-redef]
    except ModuleNotFoundError:
        tomllib = None  # type: ignore[assignment]

PACKAGED_CONFIG_DIR = Path(__file__).resolve().parent.parent / "data" / "agents"


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class EnvSettings:
    """``[env]``: what the policy is trained on (see :class:`~curriculum_rl.env.EnvConfig`)."""

    suite: str = "synthetic"
    n_envs: int = 16
    budget: int = 1000
    interval: int = 25
    max_tasks: int = 8
    divergence_penalty: float = 1.0
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(device="cpu"))
    emphasis_cost: float = 0.0

    def __post_init__(self) -> None:
        if self.n_envs < 1:
            raise ValueError(f"[env] n_envs must be >= 1, got {self.n_envs}")
        if self.budget < 1 or self.interval < 1 or self.budget % self.interval:
            raise ValueError(
                f"[env] budget ({self.budget}) must be a positive multiple of interval "
                f"({self.interval})"
            )

    @property
    def episode_length(self) -> int:
        return self.budget // self.interval


@dataclass(frozen=True)
class PPOSettings:
    """``[ppo]``: stable-baselines3 PPO hyper-parameters (same names and meaning).

    ``n_steps`` is per env: with ``n_steps = budget / interval`` one rollout holds one
    whole episode of every env, so advantages rarely need bootstrapping from the critic.
    ``lr_schedule`` is ``"constant"`` or ``"linear"`` (``learning_rate`` decayed linearly
    to 0 over ``total_timesteps``, as in the PPO paper's Atari setting, Schulman et al.
    2017): late updates shrink instead of undoing what was learned.
    """

    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    n_steps: int = 40
    batch_size: int = 64
    n_epochs: int = 10
    gamma: float = 0.95
    gae_lambda: float = 0.8
    clip_range: float = 0.2
    ent_coef: float = 0.001
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    normalize_advantage: bool = True
    target_kl: float | None = None

    def __post_init__(self) -> None:
        if self.learning_rate <= 0 or self.n_steps < 1 or self.batch_size < 2 or self.n_epochs < 1:
            raise ValueError("[ppo] learning_rate, n_steps, batch_size, n_epochs must be positive")
        if not (0 < self.gamma <= 1 and 0 <= self.gae_lambda <= 1):
            raise ValueError("[ppo] gamma must lie in (0, 1] and gae_lambda in [0, 1]")
        if self.lr_schedule not in ("constant", "linear"):
            raise ValueError(
                f"[ppo] lr_schedule must be 'constant' or 'linear', got {self.lr_schedule!r}"
            )

    def sb3_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``stable_baselines3.PPO`` (the schedule as SB3 wants it)."""
        kwargs = asdict(self)
        rate = kwargs.pop("learning_rate")
        if kwargs.pop("lr_schedule") == "linear":
            kwargs["learning_rate"] = partial(_linear_schedule, rate)
        else:
            kwargs["learning_rate"] = rate
        return kwargs


def _linear_schedule(initial: float, progress_remaining: float) -> float:
    """SB3 schedule: ``progress_remaining`` goes from 1 (start) to 0 (end of training)."""
    return initial * progress_remaining


@dataclass(frozen=True)
class PolicySettings:
    """``[policy]``: the network (see :class:`~curriculum_rl.agents.network.NetworkConfig`)."""

    hidden: int = 64
    activation: str = "tanh"
    log_std_init: float = -1.0
    action_init_gain: float = 0.01
    ignore_features: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        NetworkConfig(**asdict(self))  # validates activation, sizes, init values, names


@dataclass(frozen=True)
class RunSettings:
    """``[train]``: length and bookkeeping of the run.

    ``torch_threads`` defaults to 1: the networks and inner runs are tiny, and several
    threads per process on a shared 2-core machine spin against each other.
    """

    total_timesteps: int = 44_800
    seed: int = 0
    checkpoint_every: int = 6_400
    device: str = "cpu"
    torch_threads: int = 1

    def __post_init__(self) -> None:
        if self.total_timesteps < 1 or self.checkpoint_every < 1:
            raise ValueError("[train] total_timesteps and checkpoint_every must be >= 1")
        if self.torch_threads < 0:
            raise ValueError("[train] torch_threads must be >= 0 (0 = torch's default)")


@dataclass(frozen=True)
class EvalSettings:
    """``[eval]``: held-out evaluation during training (``every = 0`` turns it off).

    ``budget`` / ``interval`` of 0 mean "as in ``[env]``".
    """

    suites: list[str] = field(default_factory=lambda: ["synthetic"])
    seeds: int = 8
    first_seed: int = 1_000_000
    every: int = 6_400
    budget: int = 0
    interval: int = 0

    def __post_init__(self) -> None:
        if self.seeds < 1 or self.every < 0:
            raise ValueError("[eval] seeds must be >= 1 and every >= 0")


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run: one dataclass per TOML table."""

    env: EnvSettings = field(default_factory=EnvSettings)
    ppo: PPOSettings = field(default_factory=PPOSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    train: RunSettings = field(default_factory=RunSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _type_ok(value: Any, hint: Any) -> tuple[bool, Any]:
    """Whether ``value`` fits the annotation ``hint``; returns it coerced (int -> float)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            ok, coerced = _type_ok(value, option)
            if ok:
                return True, coerced
        return False, value
    if hint is type(None):
        return value is None, value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if hint is str:
        return isinstance(value, str), value
    if origin is list:
        (inner,) = typing.get_args(hint)
        if not isinstance(value, list):
            return False, value
        checked = [_type_ok(v, inner) for v in value]
        return all(ok for ok, _ in checked), [v for _, v in checked]
    return isinstance(value, hint), value


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _from_dict(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a TOML table, refusing unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ValueError(f"[{where}] must be a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls) if f.init]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"unknown key {key!r} in [{where}]{hint} (valid keys: {', '.join(names)})"
            )
        hint = hints[key]
        if is_dataclass(hint):
            kwargs[key] = _from_dict(hint, value, f"{where}.{key}")
            continue
        ok, coerced = _type_ok(value, hint)
        if not ok:
            raise ValueError(
                f"[{where}] {key} must be {_type_name(hint)}, "
                f"got {value!r} ({type(value).__name__})"
            )
        kwargs[key] = coerced
    try:
        return cls(**kwargs)
    except ValueError as err:
        raise ValueError(f"[{where}] {err}") from err


def config_from_dict(data: dict[str, Any], source: str = "config") -> TrainConfig:
    """Parse a nested dict (a TOML document) into a :class:`TrainConfig`."""
    try:
        return _from_dict(TrainConfig, data, "config")
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from err


def load_config(path: str | Path | None = None) -> TrainConfig:
    """Read a training config; ``None`` reads the shipped ``default.toml``."""
    path = Path(path) if path is not None else PACKAGED_CONFIG_DIR / "default.toml"
    if not path.is_file():
        raise FileNotFoundError(f"training config {path} not found (see agents/default.toml)")
    if tomllib is None:
        raise RuntimeError("reading TOML on Python 3.10 needs `pip install tomli`")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path} is not valid TOML: {err}") from err
    return config_from_dict(data, str(path))


# --------------------------------------------------------------------------- building
def make_env(config: TrainConfig):
    """The batched training VecEnv (wrapped in ``VecMonitor`` for SB3's episode stats)."""
    env = config.env
    return VecMonitor(
        BatchedCurriculumVecEnv(
            env.n_envs,
            suite=env.suite,
            budget=env.budget,
            interval=env.interval,
            max_tasks=env.max_tasks,
            divergence_penalty=env.divergence_penalty,
            trainer=env.trainer,
            emphasis_cost=env.emphasis_cost,
        )
    )


def make_model(config: TrainConfig, env):
    """A fresh PPO model with :class:`~curriculum_rl.agents.policy.TaskSetPolicy`."""
    return PPO(
        TaskSetPolicy,
        env,
        policy_kwargs={"net": asdict(config.policy)},
        seed=config.train.seed,
        device=config.train.device,
        verbose=0,
        **config.ppo.sb3_kwargs(),
    )


def export_policy(model, config: TrainConfig, path: str | Path, notes: dict | None = None) -> Path:
    """Write the model's actor as a safe policy artifact (``PATH.json`` + ``PATH.pt``)."""
    return save_artifact(
        path,
        model.policy.actor,
        max_tasks=config.env.max_tasks,
        training=config.to_dict(),
        notes={"timesteps": int(model.num_timesteps), **(notes or {})},
    )


# --------------------------------------------------------------------------- callbacks
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


class HeldOutEvalCallback(BaseCallback):
    """Every ``[eval] every`` timesteps (and at the end), runs the current policy as a
    controller on the held-out instances and logs the mean test-J gain over uniform
    weighting on the same instances and seeds (``eval/gain_mean``, per suite too); keeps
    the policy with the best gain as ``best.{json,pt}``. A diverged run counts as a loss
    of 1 (log-loss units)."""

    def __init__(self, config: TrainConfig, out: Path, log: Callable[[str], None] = print) -> None:
        super().__init__()
        self.config, self.out, self.log = config, Path(out), log
        self.budget = config.eval.budget or config.env.budget
        self.interval = config.eval.interval or config.env.interval
        self.sets: list[tuple[str, list, list[int]]] = []
        self.uniform: dict[str, np.ndarray] = {}
        self.last_at = 0
        self.best = -math.inf
        self.history: list[dict[str, Any]] = []

    def _on_training_start(self) -> None:
        s = self.config.eval
        seeds = list(range(s.first_seed, s.first_seed + s.seeds))
        for spec in s.suites:
            suite = resolve_suite(spec)
            instances = [suite.sample(seed) for seed in seeds]
            records = run_controller(
                instances, seeds, Uniform(), self.budget, self.interval, self.config.env.trainer
            )
            self.sets.append((spec, instances, seeds))
            self.uniform[spec] = np.array([r.final_test_j for r in records])
        self.last_at = self.num_timesteps
        if (self.out / "eval.csv").exists():  # a resumed run keeps its best so far
            with (self.out / "eval.csv").open() as f:
                self.best = max(
                    (float(r["gain_mean"]) for r in csv.DictReader(f)), default=-math.inf
                )

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.num_timesteps - self.last_at >= self.config.eval.every:
            self.evaluate()

    def _on_training_end(self) -> None:
        if self.num_timesteps != self.last_at:
            self.evaluate()

    def evaluate(self) -> dict[str, Any]:
        self.last_at = self.num_timesteps
        actor = copy.deepcopy(self.model.policy.actor).cpu()
        row: dict[str, Any] = {"timesteps": self.num_timesteps}
        means = []
        for spec, instances, seeds in self.sets:
            controller = LearnedController(actor, self.config.env.max_tasks)
            records = run_controller(
                instances, seeds, controller, self.budget, self.interval, self.config.env.trainer
            )
            j = np.array([r.final_test_j for r in records])
            gain = np.nan_to_num(self.uniform[spec] - j, nan=-1.0, neginf=-1.0, posinf=-1.0)
            means.append(gain.mean())
            row[f"{spec}/gain_mean"] = float(gain.mean())
            row[f"{spec}/gain_min"] = float(gain.min())
            row[f"{spec}/diverged"] = sum(r.diverged for r in records)
        row["gain_mean"] = float(np.mean(means))
        for key, value in row.items():
            if key != "timesteps":
                self.logger.record(f"eval/{key}", float(value))
        _append_csv(self.out / "eval.csv", row)
        self.history.append(row)
        if row["gain_mean"] > self.best:
            self.best = row["gain_mean"]
            export_policy(self.model, self.config, self.out / "best", notes={"eval": row})
        self.log(
            f"[eval] {self.num_timesteps} timesteps: held-out test-J gain over uniform "
            f"{row['gain_mean']:+.3f} (best {self.best:+.3f})"
        )
        return row


class CheckpointCallback(BaseCallback):
    """Every ``[train] checkpoint_every`` timesteps: SB3's zip (for ``--resume``) and a safe
    policy artifact (SB3 has a ``CheckpointCallback`` too; this one also exports)."""

    def __init__(self, config: TrainConfig, out: Path) -> None:
        super().__init__()
        self.config, self.out = config, Path(out)
        self.last_at = 0

    def _on_training_start(self) -> None:
        self.last_at = self.num_timesteps

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.num_timesteps - self.last_at >= self.config.train.checkpoint_every:
            self.last_at = self.num_timesteps
            save_checkpoint(self.model, self.config, self.out)


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


def make_callbacks(
    config: TrainConfig, out: Path, progress: bool = True, log: Callable[[str], None] = print
) -> list[BaseCallback]:
    """The callbacks of a training run: statistics, checkpoints, evaluation, progress bar."""
    stats = InnerRunStatsCallback(out)
    callbacks: list[BaseCallback] = [stats, CheckpointCallback(config, out)]
    if config.eval.every > 0:
        callbacks.append(HeldOutEvalCallback(config, out, log))
    if progress:
        callbacks.append(TqdmProgressCallback(config.train.total_timesteps, stats))
    return callbacks


def save_checkpoint(model, config: TrainConfig, out: Path) -> None:
    """SB3's resumable zip (written then renamed, so a crash never leaves half a file) and
    a safe policy artifact of the same moment."""
    ckpt = out / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    tmp = ckpt / "last.tmp.zip"
    model.save(tmp)
    tmp.replace(ckpt / "last.zip")
    export_policy(model, config, ckpt / f"policy-{model.num_timesteps}")


# --------------------------------------------------------------------------- training
@dataclass
class TrainResult:
    """What a finished :func:`train` call produced."""

    out: Path
    timesteps: int
    wall_time_s: float
    policy: Path
    best: Path | None
    evaluations: list[dict[str, Any]]
    model: Any = field(default=None, repr=False)  # the PPO model (not serialised)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"}
        return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}


def _check_resume_config(config: TrainConfig, saved: dict[str, Any], out: Path) -> None:
    mine = config.to_dict()
    for section in mine:
        for key, value in mine[section].items():
            if section == "train" and key == "total_timesteps":
                continue
            if saved.get(section, {}).get(key) != value:
                raise ValueError(
                    f"--resume continues the run in {out} with its own config, but [{section}] "
                    f"{key} differs ({saved.get(section, {}).get(key)!r} there, {value!r} here); "
                    "only [train] total_timesteps may change; start a new --out to change more"
                )


def load_model(config: TrainConfig, out: Path, env):
    """The PPO model of the run in ``out`` from its last checkpoint (policy weights,
    optimizer state, timestep counter)."""
    path = out / "checkpoints" / "last.zip"
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume in {out} ({path} is missing)")
    return PPO.load(path, env=env, device=config.train.device)


def train(
    config: TrainConfig,
    out: str | Path,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train (or, with ``resume``, continue) a PPO meta-controller; see the module doc.

    Raises:
        ValueError / FileNotFoundError: a fresh run into a folder that already holds one,
            a resume without a checkpoint, or a resume with a different config.
    """
    out = Path(out)
    if config.train.torch_threads:
        torch.set_num_threads(config.train.torch_threads)
    config_path = out / "config.json"
    if resume:
        if not config_path.is_file():
            raise FileNotFoundError(f"nothing to resume in {out}: {config_path} is missing")
        _check_resume_config(config, json.loads(config_path.read_text()), out)
    elif (out / "checkpoints" / "last.zip").exists():
        raise ValueError(
            f"{out} already holds a training run; pass --resume to continue it, or choose "
            "another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(config.to_dict(), indent=1))

    env = make_env(config)
    model = load_model(config, out, env) if resume else make_model(config, env)
    start = int(model.num_timesteps)
    # Fresh instances after a resume: seed the envs from the timestep counter.
    env.seed(config.train.seed + start)
    model.set_logger(
        Logger(
            str(out),
            [
                CSVOutputFormat(str(out / f"progress-{start}.csv")),
                TensorBoardOutputFormat(str(out / "tb")),
            ],
        )
    )
    callbacks = make_callbacks(config, out, progress, log)
    remaining = max(0, config.train.total_timesteps - start)
    t0 = time.time()
    if remaining:
        model.learn(remaining, callback=CallbackList(callbacks), reset_num_timesteps=not resume)
    wall = time.time() - t0
    save_checkpoint(model, config, out)
    policy = export_policy(model, config, out / "policy", notes={"wall_time_s": wall})
    env.close()
    try:
        plot_learning_curve(out, out / "learning_curve.png")
    except (OSError, ValueError) as err:
        log(f"could not plot the learning curve: {err}")
    best = out / "best.json"
    evals = next((cb.history for cb in callbacks if isinstance(cb, HeldOutEvalCallback)), [])
    return TrainResult(
        out, int(model.num_timesteps), wall, policy, best if best.exists() else None, evals, model
    )


# --------------------------------------------------------------------------- plots
def plot_learning_curve(run_dir: str | Path, png: str | Path, window: int = 64) -> Path:
    """Episode return (moving average over ``window`` episodes) and the held-out gain over
    uniform, against timesteps, from a run's ``episodes.csv`` and ``eval.csv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir, png = Path(run_dir), Path(png)
    with (run_dir / "episodes.csv").open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{run_dir / 'episodes.csv'} has no episodes yet")
    steps = np.array([int(r["timesteps"]) for r in rows])
    returns = np.array([float(r["return"]) for r in rows])
    kernel = min(window, len(returns))
    smooth = np.convolve(returns, np.ones(kernel) / kernel, mode="valid")
    evals = []
    if (run_dir / "eval.csv").exists():
        with (run_dir / "eval.csv").open() as f:
            evals = [(int(r["timesteps"]), float(r["gain_mean"])) for r in csv.DictReader(f)]
    fig, axes = plt.subplots(1, 2 if evals else 1, figsize=(11 if evals else 6, 4), squeeze=False)
    ax = axes[0, 0]
    ax.plot(steps, returns, ".", alpha=0.15, ms=3, label="episode")
    ax.plot(steps[kernel - 1 :], smooth, lw=2, label=f"mean of {kernel}")
    ax.set(
        xlabel="timesteps (decisions)",
        ylabel="episode return (J_start - J_end - emphasis cost)",
        title="PPO training on synthetic",
    )
    ax.legend()
    if evals:
        ax = axes[0, 1]
        ax.plot(*zip(*evals, strict=True), "o-")
        ax.axhline(0, color="gray", lw=1)
        ax.set(
            xlabel="timesteps", ylabel="test-J gain over uniform", title="held-out instances (mean)"
        )
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png
