"""The permutation-equivariant policy network, in plain torch (no stable-baselines3).

Observations are ``(B, K, F)``: one row per task slot, feature 0 the mask (1 for a real
task, 0 for padding). Every task row goes through the *same* encoder; a pooled context
(masked mean and max over the valid tasks, Deep Sets) is appended to each row; the same
head then maps each row to that task's action means. So permuting the task rows
permutes the output rows, and the weights do not depend on K: a policy trained with
``K_max = 8`` runs a 3-task run padded to 8, or a 12-task run (see :class:`TaskSetActor`).

This module is what a trained controller runs at inference
(:mod:`curriculum_rl.controllers.learned.controller`), so loading a policy never imports
stable-baselines3; :mod:`curriculum_rl.agents.policy` wraps the same modules as an SB3
``ActorCriticPolicy`` for training.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from curriculum_rl.controllers.actions import DEFAULT_TRANSFORM, TRANSFORMS
from curriculum_rl.controllers.observation import FEATURES, NUM_FEATURES

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}


@dataclass(frozen=True)
class NetworkConfig:
    """Sizes of the policy network (stored in every policy artifact).

    Attributes:
        num_features: F, features per task row (``len(FEATURES)`` of the observation).
        action_dim: numbers per task row of the action (the action transform's ``dim``).
        hidden: width of the per-task encoder, the context and the heads.
        activation: ``"tanh"``, ``"relu"`` or ``"gelu"``.
        log_std_init: initial log standard deviation of the exploration noise, one value
            shared by the two action dimensions. Actions live in [-1, 1] and the weight
            logit is scaled by 5, so the SB3 default of 0 (std 1) would make the initial
            schedules wildly random; -1 (std 0.37) explores without drowning the signal.
        action_init_gain: gain of the orthogonal init of the last action layer; small so
            the initial policy is close to the zero action (the action transform's
            centre rule: uniform for ``logits`` and ``loss_power``, ``scale-normalised``
            for ``error_power``).
        ignore_features: observation features (names from ``FEATURES``) the networks
            never read: they are zeroed before the per-task encoder. For ablations: the
            observation layout stays the same, and the list travels with the artifact, so
            a policy always reads what it was trained on. ``mask`` cannot be ignored.
        run_head: add a linear readout of the run's raw observation statistics
            (:func:`run_statistics`: over all tasks, the targets and the auxiliaries) to
            every task's action row. It starts at zero (the policy acts as without it); a
            switch fitted on those statistics lives there (benchmarks/RESULTS.md §28–29:
            they told when to fall back to a heuristic better than the task latents did).
        head_rows: the action rows in blocks, each computed by a matrix product of its own
            (in the head and the run head); empty: one block. A policy extended by new
            columns (``agents.average.twin_actor``) computes its base's rows in the base's
            own blocks, so with the new columns at zero it decides as the base bit for
            bit: one larger product rounds differently, and training amplifies round-off
            like a new seed (benchmarks/RESULTS.md §31).
    """

    num_features: int = NUM_FEATURES
    action_dim: int = TRANSFORMS[DEFAULT_TRANSFORM].dim
    hidden: int = 64
    activation: str = "tanh"
    log_std_init: float = -1.0
    action_init_gain: float = 0.01
    ignore_features: tuple[str, ...] = ()
    run_head: bool = False
    head_rows: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # JSON and TOML give lists; keep tuples so the config stays hashable.
        object.__setattr__(self, "ignore_features", tuple(self.ignore_features))
        object.__setattr__(self, "head_rows", tuple(self.head_rows))
        if self.head_rows and (min(self.head_rows) < 1 or sum(self.head_rows) != self.action_dim):
            raise ValueError(
                f"head_rows {list(self.head_rows)} must be positive block sizes summing to "
                f"action_dim {self.action_dim}"
            )
        unknown = [name for name in self.ignore_features if name not in FEATURES]
        if unknown:
            raise ValueError(
                f"ignore_features: unknown feature(s) {unknown}; valid names: {', '.join(FEATURES)}"
            )
        if "mask" in self.ignore_features:
            raise ValueError("ignore_features cannot hold 'mask': it marks the valid tasks")
        if min(self.num_features, self.hidden, self.action_dim) < 1:
            raise ValueError(
                "num_features, action_dim and hidden must be >= 1, got "
                f"{self.num_features}, {self.action_dim}, {self.hidden}"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.activation!r}; use one of {sorted(ACTIVATIONS)}"
            )
        if not math.isfinite(self.log_std_init):
            raise ValueError("log_std_init must be finite")
        if self.action_init_gain < 0:
            raise ValueError("action_init_gain must be >= 0")

    def to_dict(self) -> dict:
        config = asdict(self)
        if not self.head_rows:  # one block: artifacts read as before the field existed
            del config["head_rows"]
        return config

    def feature_keep(self) -> torch.Tensor:
        """(F,) float multiplier: 0 on ignored features, 1 elsewhere."""
        keep = torch.ones(self.num_features)
        for name in self.ignore_features:
            keep[FEATURES.index(name)] = 0.0
        return keep


def task_mask(obs: torch.Tensor) -> torch.Tensor:
    """The valid-task mask of an observation batch (feature 0 is the mask channel)."""
    return obs[..., 0] > 0.5


def target_mask(obs: torch.Tensor) -> torch.Tensor:
    """The target tasks of an observation batch (valid and ``is_objective``)."""
    return task_mask(obs) & (obs[..., FEATURES.index("is_objective")] > 0.5)


def masked_pool(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Concatenated masked mean and max over the task dimension: (B, K, H) -> (B, 2H).

    Padded rows never contribute; a batch row without any valid task (an all-zero
    observation, e.g. SB3's shape probes) pools to zeros instead of NaN / -inf.
    """
    m = mask.unsqueeze(-1)
    count = m.sum(1).clamp_min(1).to(x.dtype)
    mean = (x * m).sum(1) / count
    neg = torch.finfo(x.dtype).min
    peak = x.masked_fill(~m, neg).amax(1)
    peak = torch.where(m.any(1), peak, torch.zeros_like(peak))
    return torch.cat([mean, peak], dim=-1)


def run_statistics(obs: torch.Tensor, mask: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, 3 (4F + 1)) summary of a run's observation rows, over its valid tasks, then over
    its target tasks (``targets``, a subset of ``mask``), then over its auxiliaries: per
    group the mean, standard deviation, max and min of each feature, then 1 / K for its K
    tasks. Invariant to task order; a group without tasks gives zeros.

    The inverse, not K itself: a readout fitted on runs with few tasks stays bounded on a
    run with many. By group: a fallback switch read from these statistics captured twice
    what the same statistics pooled over all tasks did (benchmarks/RESULTS.md §29e)."""
    groups = (mask, targets & mask, mask & ~targets)
    return torch.cat([_pooled_statistics(obs, group) for group in groups], dim=-1)


def run_statistics_width(num_features: int) -> int:
    """Numbers per run of :func:`run_statistics` (what a run head reads)."""
    return 3 * (4 * num_features + 1)


RUN_GROUPS = ("all", "targets", "auxiliaries")
POOLED = ("mean", "std", "max", "min")


def run_statistic_names(features: tuple[str, ...] | list[str] = FEATURES) -> list[str]:
    """The name of each number :func:`run_statistics` returns, in its order:
    ``GROUP.STATISTIC.FEATURE`` (``targets.mean.log_weight``) and ``GROUP.inverse_count``."""
    return [
        name
        for group in RUN_GROUPS
        for name in (
            *(f"{group}.{pooled}.{feature}" for pooled in POOLED for feature in features),
            f"{group}.inverse_count",
        )
    ]


def _pooled_statistics(obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1)
    count = m.sum(1).to(obs.dtype)
    mean, peak = masked_pool(obs, mask).chunk(2, dim=-1)
    low = -masked_pool(-obs, mask).chunk(2, dim=-1)[1]
    std = ((obs - mean.unsqueeze(1)).pow(2) * m).sum(1).div(count.clamp_min(1)).sqrt()
    inverse_count = torch.where(count > 0, 1 / count.clamp_min(1), torch.zeros_like(count))
    return torch.cat([mean, std, peak, low, inverse_count], dim=-1)


class TaskSetEncoder(nn.Module):
    """Per-task MLP, then one Deep Sets equivariant layer: ``h_i = act(W [phi_i, pool(phi)])``.

    Returns per-task latents ``(B, K, hidden)``, zero on padded rows. Why the context: the
    right weight of a task depends on the others (the whole point of pacing), and the
    pooled summary is the permutation-invariant way to let each task see them.
    """

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        act, h = ACTIVATIONS[config.activation], config.hidden
        self.phi = nn.Sequential(nn.Linear(config.num_features, h), act(), nn.Linear(h, h), act())
        self.mix = nn.Sequential(nn.Linear(3 * h, h), act())
        # Not persistent: the state dict (and so every artifact's tensor list) is the same
        # with or without ignored features; the config rebuilds it.
        self.register_buffer("keep", config.feature_keep(), persistent=False)

    def forward(self, obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        phi = self.phi(obs * self.keep)
        context = masked_pool(phi, mask)
        joined = torch.cat([phi, context.unsqueeze(1).expand(-1, phi.shape[1], -1)], dim=-1)
        return self.mix(joined) * mask.unsqueeze(-1)


class TaskSetActor(nn.Module):
    """Observation ``(B, K, F)`` -> action means ``(B, K, action_dim)`` (zero on padded
    rows).

    ``log_std`` (action_dim,) is the exploration noise of each action number, shared by
    all tasks so that the stochastic policy is equivariant too. The actor works for any
    K, and no observation feature depends on the padded width, so a policy trained with
    ``K_max = 8`` runs a 12-task run as it is.
    """

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = TaskSetEncoder(config)
        self.head = nn.Linear(config.hidden, config.action_dim)
        self.log_std = nn.Parameter(torch.full((config.action_dim,), float(config.log_std_init)))
        if config.run_head:
            width = run_statistics_width(config.num_features)
            self.run_head = nn.Linear(width, config.action_dim)
            nn.init.zeros_(self.run_head.weight)
            nn.init.zeros_(self.run_head.bias)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        mask = task_mask(obs)
        action = self._blocks(self.head, self.encoder(obs, mask))
        if self.config.run_head:
            stats = run_statistics(obs * self.encoder.keep, mask, target_mask(obs))
            action = action + self._blocks(self.run_head, stats).unsqueeze(1)
        return action * mask.unsqueeze(-1)

    def _blocks(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        """``layer(x)``, its rows in ``config.head_rows`` blocks (one product each)."""
        if not self.config.head_rows:
            return layer(x)
        weights = layer.weight.split(self.config.head_rows)
        biases = layer.bias.split(self.config.head_rows)
        return torch.cat(
            [nn.functional.linear(x, w, b) for w, b in zip(weights, biases, strict=True)], -1
        )


class TaskSetCritic(nn.Module):
    """Observation ``(B, K, F)`` -> state value ``(B, 1)``, invariant to task order.

    It has its own encoder: sharing the actor's would let value-loss gradients reshape
    the features the actions are read from, which PPO on small nets handles worse.
    """

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        act, h = ACTIVATIONS[config.activation], config.hidden
        self.encoder = TaskSetEncoder(config)
        self.head = nn.Sequential(nn.Linear(2 * h, h), act(), nn.Linear(h, 1))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        mask = task_mask(obs)
        return self.head(masked_pool(self.encoder(obs, mask), mask))


def init_weights(actor: TaskSetActor, critic: TaskSetCritic | None = None) -> None:
    """PPO's usual orthogonal init (gain sqrt 2 in hidden layers, 1 on the value output),
    with a tiny action output so the untrained policy is ~ the zero action = uniform."""
    modules = [actor.encoder] + ([critic] if critic is not None else [])
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                nn.init.orthogonal_(layer.weight, gain=math.sqrt(2))
                nn.init.zeros_(layer.bias)
    nn.init.orthogonal_(actor.head.weight, gain=actor.config.action_init_gain)
    nn.init.zeros_(actor.head.bias)
    if critic is not None:
        nn.init.orthogonal_(critic.head[-1].weight, gain=1.0)
        nn.init.zeros_(critic.head[-1].bias)
