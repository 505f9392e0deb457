"""The PPO meta-controller as a stable-baselines3 ``ActorCriticPolicy``.

:class:`TaskSetPolicy` plugs the permutation-equivariant networks of
:mod:`curriculum_rl.controllers.learned.network` into SB3:

* :class:`TaskSetExtractor` (the ``BaseFeaturesExtractor`` seam) hands the observation on
  as ``(B, K_max, F)`` task rows instead of flattening it, which would tie every weight to a
  slot position.
* the actor maps each task row to its two action means, the critic pools the rows into an
  order-invariant value;
* :class:`MaskedDiagGaussianDistribution` keeps padded task slots out of the log-probability
  and the entropy: their actions do nothing, so counting them would only add noise to
  PPO's importance ratios and let the entropy bonus inflate the shared ``log_std``;
* :meth:`TaskSetPolicy.set_anchor` adds ``c · KL(anchor ‖ policy)`` to PPO's loss:
  fine-tuning that stays close to a given policy (KL-regularised fine-tuning, as in the
  KL penalty to a reference policy of Ziegler et al. 2019, "Fine-Tuning Language Models
  from Human Preferences"), priced on the policy's distribution, not on sampled actions.

Use it as ``PPO(TaskSetPolicy, BatchedCurriculumVecEnv(...), policy_kwargs={"net": {...}})``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch.distributions import Normal, kl_divergence

from curriculum_rl.controllers.learned.network import (
    NetworkConfig,
    TaskSetActor,
    TaskSetCritic,
    init_weights,
    task_mask,
)


class TaskSetExtractor(BaseFeaturesExtractor):
    """Passes observations on as task rows ``(B, K_max, F)`` (no parameters).

    ``features_dim`` is ``K_max * F`` only to satisfy SB3's bookkeeping; the networks read
    the rows.
    """

    def __init__(self, observation_space: spaces.Box) -> None:
        if len(observation_space.shape) != 2:
            raise ValueError(
                "TaskSetPolicy needs observations shaped (max_tasks, features), got "
                f"{observation_space.shape}; use the curriculum_rl environments"
            )
        k, f = observation_space.shape
        super().__init__(observation_space, features_dim=k * f)
        self.rows = (k, f)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return observations.reshape(-1, *self.rows)


class MaskedDiagGaussianDistribution(DiagGaussianDistribution):
    """A diagonal Gaussian over ``(K_max, D)`` actions whose log-probability and entropy
    sum only over the valid tasks (``mask`` given with the parameters)."""

    def __init__(self, max_tasks: int, per_task: int) -> None:
        super().__init__(action_dim=per_task * max_tasks)
        self.max_tasks, self.per_task = max_tasks, per_task
        self.dim_mask: torch.Tensor | None = None

    def proba_distribution(  # type: ignore[override]
        self, mean_actions: torch.Tensor, log_std: torch.Tensor, mask: torch.Tensor
    ) -> MaskedDiagGaussianDistribution:
        """``mean_actions`` (B, K_max * D), ``log_std`` (D,), ``mask`` (B, K_max)."""
        super().proba_distribution(mean_actions, log_std.repeat(self.max_tasks))
        self.dim_mask = mask.repeat_interleave(self.per_task, dim=1).to(mean_actions.dtype)
        return self

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        actions = actions.reshape(self.dim_mask.shape)
        return (self.distribution.log_prob(actions) * self.dim_mask).sum(-1)

    def entropy(self) -> torch.Tensor:
        return (self.distribution.entropy() * self.dim_mask).sum(-1)


class TaskSetPolicy(ActorCriticPolicy):
    """Actor-critic over task sets: equivariant actions, invariant value.

    Args:
        observation_space: Box ``(K_max, F)``; action_space: Box ``(K_max, D)``, D the
            action transform's numbers per task.
        lr_schedule: SB3's learning-rate schedule.
        net: :class:`NetworkConfig` fields (``hidden``, ``activation``, ``log_std_init``,
            ``action_init_gain``); ``num_features`` is taken from the observation space.
        Any other keyword goes to ``ActorCriticPolicy`` (optimizer settings); gSDE and
        custom ``net_arch`` are refused: the architecture is fixed by ``net``.
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net: dict[str, Any] | NetworkConfig | None = None,
        **kwargs: Any,
    ) -> None:
        for unsupported in ("use_sde", "net_arch", "features_extractor_class", "squash_output"):
            if kwargs.get(unsupported):
                raise ValueError(f"TaskSetPolicy does not support {unsupported}")
            kwargs.pop(unsupported, None)
        if len(action_space.shape) != 2 or action_space.shape[0] != observation_space.shape[0]:
            raise ValueError(
                f"action space {action_space.shape} does not match observations "
                f"{observation_space.shape}: expected (max_tasks, numbers per task)"
            )
        net = net if isinstance(net, NetworkConfig) else NetworkConfig(**(net or {}))
        shapes = {
            "num_features": observation_space.shape[1],
            "action_dim": action_space.shape[1],
        }
        self.net_config = NetworkConfig(**{**net.to_dict(), **shapes})
        self._anchor: tuple[TaskSetActor, torch.Tensor] | None = None  # not a submodule
        self.anchor_kl: float | None = None
        """Mean KL(anchor ‖ policy) per decision of the last minibatch (None: no anchor)."""
        kwargs.setdefault("log_std_init", self.net_config.log_std_init)
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=[],
            features_extractor_class=TaskSetExtractor,
            share_features_extractor=True,
            **kwargs,
        )

    def _build(self, lr_schedule: Schedule) -> None:
        # Replaces SB3's MLP extractor / action_net / value_net with the task-set networks.
        self.actor = TaskSetActor(self.net_config)
        self.critic = TaskSetCritic(self.net_config)
        if self.ortho_init:
            init_weights(self.actor, self.critic)
        self.action_dist = MaskedDiagGaussianDistribution(*self.action_space.shape)
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    @property
    def log_std(self) -> torch.nn.Parameter:
        """The shared (2,) log std (SB3's PPO logs ``exp(policy.log_std)`` as ``train/std``)."""
        return self.actor.log_std

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        for key in (
            "net_arch",
            "features_extractor_class",
            "features_extractor_kwargs",
            "use_sde",
            "squash_output",
            "full_std",
            "use_expln",
        ):
            data.pop(key, None)
        data["net"] = self.net_config.to_dict()
        return data

    def _distribution(self, obs: torch.Tensor) -> MaskedDiagGaussianDistribution:
        mean = self.actor(obs)
        return self.action_dist.proba_distribution(
            mean.flatten(1), self.actor.log_std, task_mask(obs)
        )

    def forward(
        self, obs: torch.Tensor, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.extract_features(obs)
        distribution = self._distribution(features)
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob = distribution.log_prob(actions)
        values = self.critic(features)
        return actions.reshape((-1, *self.action_space.shape)), values, log_prob

    def evaluate_actions(
        self, obs: PyTorchObs, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.extract_features(obs)
        distribution = self._distribution(features)
        # This order of evaluation (value, log-probability, entropy) sets the order in
        # which backward sums the gradients, hence the last bits of every training run.
        values, log_prob, entropy = (
            self.critic(features),
            distribution.log_prob(actions),
            distribution.entropy(),
        )
        if self._anchor is not None:
            kl = self._kl_per_dimension(features, distribution)
            self.anchor_kl = kl.sum(-1).mean().item()
            _, entropy_per_kl = self._anchor
            priced = (kl * entropy_per_kl.repeat(features.shape[1])).sum(-1)
            # Zero in value (SB3 logs the true entropy); in gradient, PPO's loss term
            # -ent_coef * mean(entropy) gains +mean(sum_d kl_coef_d * KL_d): see set_anchor.
            entropy = entropy - (priced - priced.detach())
        return values, log_prob, entropy

    def set_anchor(
        self, anchor: TaskSetActor, kl_coef: float | Sequence[float], ent_coef: float
    ) -> None:
        """Add ``kl_coef · KL(anchor ‖ policy)`` (per decision, summed over the valid
        tasks' action dimensions) to the loss PPO minimises; the anchor is frozen.
        ``kl_coef`` is one number, or one per action column (the transform's ``columns``
        order): a column priced 0 moves freely, a dear one stays near the anchor.

        SB3's PPO has no seam for another loss term, but it adds ``-ent_coef ·
        mean(entropy)`` of :meth:`evaluate_actions`' entropy to its loss. So the entropy
        returned carries ``-(kl_coef / ent_coef) · (KL - KL.detach())``: its value is the
        entropy (logs stay true), its gradient adds exactly ``kl_coef · ∇ mean(KL)``
        (``tests/test_policy.py`` checks that gradient, and that a strong anchor holds
        ``PPO.train`` near the start).

        Raises:
            ValueError: a ``kl_coef`` < 0 or not one per column, ``ent_coef`` ≤ 0 (the
                term rides on the entropy term), or an anchor of another network shape.
        """
        dim = self.actor.config.action_dim
        per_column = [kl_coef] * dim if isinstance(kl_coef, int | float) else list(kl_coef)
        prices = torch.tensor(per_column, dtype=torch.float32)
        if prices.numel() != dim or (prices < 0).any():
            raise ValueError(
                f"the anchor's KL coefficient must be one number >= 0 or {dim} (one per "
                f"action column), got {kl_coef}"
            )
        if ent_coef <= 0:
            raise ValueError(
                "a KL anchor needs ent_coef > 0 (it enters PPO's loss through the entropy "
                f"term), got ent_coef = {ent_coef}: set [ppo] ent_coef, e.g. 0.001"
            )
        if anchor.config.action_dim != dim:
            raise ValueError(
                f"the anchor emits {anchor.config.action_dim} numbers per task, this policy "
                f"{dim}: they must share the action transform"
            )
        frozen = copy.deepcopy(anchor).to(self.device).requires_grad_(False).eval()
        self._anchor = (frozen, (prices / ent_coef).to(self.device))

    def kl_to_anchor(
        self, features: torch.Tensor, distribution: MaskedDiagGaussianDistribution
    ) -> torch.Tensor:
        """(B,) KL(anchor ‖ ``distribution``) over the valid tasks' action dimensions."""
        return self._kl_per_dimension(features, distribution).sum(-1)

    def _kl_per_dimension(
        self, features: torch.Tensor, distribution: MaskedDiagGaussianDistribution
    ) -> torch.Tensor:
        """(B, K_max * D) KL(anchor ‖ ``distribution``) per action number; 0 where padded."""
        anchor, _ = self._anchor
        with torch.no_grad():
            anchor_mean = anchor(features).flatten(1)
        anchor_std = anchor.log_std.exp().repeat(features.shape[1])  # (K_max * D,)
        kl = kl_divergence(Normal(anchor_mean, anchor_std), distribution.distribution)
        return kl * distribution.dim_mask

    def get_distribution(self, obs: PyTorchObs) -> MaskedDiagGaussianDistribution:
        return self._distribution(self.extract_features(obs))

    def predict_values(self, obs: PyTorchObs) -> torch.Tensor:
        return self.critic(self.extract_features(obs))
