"""The training config (``agents/*.toml``): one typed dataclass per TOML table.

* ``[env]``: the decision process the policy is trained on, an
  :class:`~curriculum_rl.env.EnvConfig` (the same class, the same defaults, as
  ``gymnasium.make("curriculum_rl/Multitask-v0", ...)``); ``[env.trainer]``: the inner
  trainer (:class:`~curriculum_rl.trainer.TrainerConfig`).
* ``[ppo]``: stable-baselines3 PPO hyper-parameters.
* ``[policy]``: the network (:class:`~curriculum_rl.controllers.learned.NetworkConfig`),
  with ``ignore_features`` for ablations.
* ``[train]``: ``n_envs`` batched inner runs, ``total_timesteps``, ``seed``, checkpoint
  cadence, device and threads, and the Ray rollout ``workers`` and cluster ``address``.
* ``[eval]``: periodic evaluation on held-out instances.

Files are read by the project's one typed loader (:mod:`curriculum_rl.typed_config`): an
unknown key or a wrong type is an error naming the file, the table and the key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from curriculum_rl.controllers.actions import action_transform
from curriculum_rl.controllers.learned.network import NetworkConfig
from curriculum_rl.env import EnvConfig
from curriculum_rl.resources import default_training_config_path
from curriculum_rl.typed_config import build_dataclass, read_toml


@dataclass(frozen=True)
class PPOSettings:
    """``[ppo]``: stable-baselines3 PPO hyper-parameters (same names and meaning).

    ``n_steps`` is per env: with ``n_steps = budget / interval`` one rollout holds one
    whole episode of every env, so advantages rarely need bootstrapping from the critic.
    ``lr_schedule`` is ``"constant"`` or ``"linear"`` (``learning_rate`` decayed linearly
    to 0 over ``total_timesteps``, as in the PPO paper's Atari setting, Schulman et al.
    2017): late updates shrink instead of undoing what was learned.

    ``anchor_kl`` (not an SB3 setting): the coefficient of KL(initial policy ‖ policy) per
    decision in PPO's loss, which keeps a fine-tune of ``[train] init_policy`` near it
    (:meth:`~curriculum_rl.agents.policy.TaskSetPolicy.set_anchor`; the anchor's
    exploration noise is ``[policy] log_std_init``, where the fine-tune starts). 0 (the
    default) is plain PPO; needs ``init_policy`` and ``ent_coef`` > 0.
    ``anchor_kl_columns`` sets the coefficient of single action columns instead, e.g.
    ``{sampling = 1.0}`` (the names are ``[env] action``'s columns): the rest keep
    ``anchor_kl``. A fine-tune can then learn new weightings while its sampling stays
    the start's (benchmarks/RESULTS.md §26).
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
    anchor_kl: float = 0.0
    anchor_kl_columns: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.learning_rate <= 0 or self.n_steps < 1 or self.batch_size < 2 or self.n_epochs < 1:
            raise ValueError("learning_rate, n_steps, batch_size, n_epochs must be positive")
        if not (0 < self.gamma <= 1 and 0 <= self.gae_lambda <= 1):
            raise ValueError("gamma must lie in (0, 1] and gae_lambda in [0, 1]")
        if self.lr_schedule not in ("constant", "linear"):
            raise ValueError(
                f"lr_schedule must be 'constant' or 'linear', got {self.lr_schedule!r}"
            )
        if self.anchor_kl < 0 or any(c < 0 for c in self.anchor_kl_columns.values()):
            raise ValueError(
                f"anchor_kl and anchor_kl_columns must be >= 0, got {self.anchor_kl} and "
                f"{self.anchor_kl_columns}"
            )
        if self.anchored and self.ent_coef <= 0:
            raise ValueError(
                "[ppo] anchor_kl enters PPO's loss through the entropy term: it needs "
                f"ent_coef > 0 (got {self.ent_coef}), e.g. ent_coef = 0.001"
            )

    @property
    def anchored(self) -> bool:
        """Whether any action column is priced for leaving the initial policy."""
        return self.anchor_kl > 0 or any(c > 0 for c in self.anchor_kl_columns.values())

    def anchor_prices(self, columns: tuple[str, ...]) -> list[float]:
        """The KL coefficient of each of ``columns`` (an action transform's, in order).

        Raises:
            ValueError: a name in ``anchor_kl_columns`` is not one of ``columns``.
        """
        unknown = sorted(set(self.anchor_kl_columns) - set(columns))
        if unknown:
            raise ValueError(
                f"[ppo] anchor_kl_columns names {unknown}, not columns of the action "
                f"transform; its columns are {list(columns)}"
            )
        return [self.anchor_kl_columns.get(c, self.anchor_kl) for c in columns]

    def sb3_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``stable_baselines3.PPO`` (the schedule as SB3 wants it)."""
        kwargs = asdict(self)
        for ours in ("anchor_kl", "anchor_kl_columns"):  # applied by set_anchor
            kwargs.pop(ours)
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
class MixedSuite:
    """One ``[[train.mix]]`` entry: a further training suite and its runs per rollout."""

    suite: str
    n_envs: int = 4

    def __post_init__(self) -> None:
        if self.n_envs < 1:
            raise ValueError(f"[[train.mix]] {self.suite!r}: n_envs must be >= 1")


@dataclass(frozen=True)
class RunSettings:
    """``[train]``: size, length and bookkeeping of the run.

    ``n_envs`` inner runs are trained side by side in one batched VecEnv: the runs per
    trainer (raise it on a GPU: 64, 256, ...). ``torch_threads`` defaults to 1: the
    networks and inner runs are tiny, and several threads per process on a shared 2-core
    machine spin against each other.

    ``workers`` > 1 or an ``address`` collects the rollouts in Ray actors, each hosting
    the in-process env (``n_envs`` runs, plus the mix's;
    :mod:`curriculum_rl.agents.ray_vec_env`), on a local Ray of ``workers`` CPUs or on the
    cluster at ``address`` (``auto``, ``HOST:PORT``): a rollout then holds ``workers``
    times those runs. ``workers = 1`` gives the in-process numbers wherever it runs; a
    resumed run may change both settings.

    ``mix``: further training suites (``[[train.mix]]`` tables of ``suite`` and
    ``n_envs``), each trained in its own batch of runs beside the ``n_envs`` runs on
    ``[env] suite``: a trainer batches only runs with equal trunks, so this is how one
    policy trains on MLP, sequence and other trunks at once. Every other ``[env]`` setting
    is shared; a rollout then holds ``n_envs`` plus the mix's runs (per Ray worker).

    ``init_policy``: a policy file (``NAME.json``) whose actor starts the run instead of a
    fresh one, e.g. the behaviour-cloned warm start of :mod:`curriculum_rl.agents.imitation`
    (its observation layout, action transform and network sizes must match; the critic
    starts fresh).
    """

    n_envs: int = 16
    total_timesteps: int = 44_800
    seed: int = 0
    checkpoint_every: int = 6_400
    device: str = "cpu"
    torch_threads: int = 1
    workers: int = 1
    address: str = ""
    init_policy: str = ""
    mix: list[MixedSuite] = field(default_factory=list)

    @property
    def uses_ray(self) -> bool:
        """Whether the rollouts are collected in Ray actors."""
        return self.workers > 1 or bool(self.address)

    def __post_init__(self) -> None:
        if self.n_envs < 1:
            raise ValueError(f"n_envs must be >= 1, got {self.n_envs}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.total_timesteps < 1 or self.checkpoint_every < 1:
            raise ValueError("total_timesteps and checkpoint_every must be >= 1")
        if self.torch_threads < 0:
            raise ValueError("torch_threads must be >= 0 (0 = torch's default)")


@dataclass(frozen=True)
class EvalSettings:
    """``[eval]``: held-out evaluation during training (``every = 0`` turns it off).

    The current policy drives :func:`~curriculum_rl.runner.run_controller` on ``seeds``
    instances of each suite in ``suites`` (instance seeds from ``first_seed``, which
    training never draws on purpose; a file declaring several suites gives each, scored
    on its own); the score is the paired gain over uniform
    weighting on the same instances (:mod:`curriculum_rl.scores`). ``budget`` /
    ``interval`` of 0 mean "as in ``[env]``".
    """

    suites: list[str] = field(default_factory=lambda: ["synthetic"])
    seeds: int = 8
    first_seed: int = 1_000_000
    every: int = 6_400
    budget: int = 0
    interval: int = 0

    def __post_init__(self) -> None:
        if self.seeds < 1 or self.every < 0:
            raise ValueError("seeds must be >= 1 and every >= 0")


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run: one dataclass per TOML table."""

    env: EnvConfig = field(default_factory=EnvConfig)
    ppo: PPOSettings = field(default_factory=PPOSettings)
    policy: NetworkConfig = field(default_factory=NetworkConfig)
    train: RunSettings = field(default_factory=RunSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)

    def __post_init__(self) -> None:
        if self.ppo.anchored and not self.train.init_policy:
            raise ValueError(
                "[ppo] anchor_kl keeps a fine-tune near the policy it starts from: set "
                "[train] init_policy, or anchor_kl = 0 (and no anchor_kl_columns)"
            )
        self.ppo.anchor_prices(action_transform(self.env.action).columns)  # checks the names

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in _SET_BY_THE_ENV:
            data["policy"].pop(key)
        return data


# Network sizes that follow from the env (observation layout, action transform).
_SET_BY_THE_ENV = ("num_features", "action_dim")


def config_from_dict(data: dict[str, Any], source: str = "config") -> TrainConfig:
    """Parse a nested dict (a TOML document) into a :class:`TrainConfig`."""
    policy = data.get("policy")
    for key in _SET_BY_THE_ENV:
        if isinstance(policy, dict) and key in policy:
            raise ValueError(
                f"{source}: [policy] {key} follows from the env (observation layout, [env] "
                "action), not from a config; remove it"
            )
    return build_dataclass(TrainConfig, data, source)


def load_config(path: str | Path | None = None) -> TrainConfig:
    """Read a training config; ``None`` reads the shipped ``agents/default.toml``."""
    path = Path(path) if path is not None else default_training_config_path()
    if not path.is_file():
        raise FileNotFoundError(f"training config {path} not found (see agents/default.toml)")
    return config_from_dict(read_toml(path), str(path))
