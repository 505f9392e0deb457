"""The one decision loop: the env, the runner and a user's session read the same state.

Regenerate the shipped policy's recorded decisions after shipping a new policy with
``python tests/test_loop.py --regenerate`` (and say so in the commit).
"""

from __future__ import annotations

import sys
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_test_controller

import curriculum_rl
from curriculum_rl.controllers.base import Controller, DecisionState, Uniform
from curriculum_rl.controllers.decision import Decision
from curriculum_rl.controllers.learned import LearnedController, NetworkConfig, TaskSetActor
from curriculum_rl.controllers.learned.network import init_weights
from curriculum_rl.controllers.load import controller_identity
from curriculum_rl.env import CurriculumEnv
from curriculum_rl.loop import DecisionLoop
from curriculum_rl.runner import run_controller
from curriculum_rl.suites import resolve_suite
from curriculum_rl.trainer import BatchedMultitaskTrainer, TrainerConfig
from curriculum_rl.trainer.signals import Signals

GOLDEN = Path(__file__).parent / "data" / "shipped_policy_states.pt"
CPU = TrainerConfig(device="cpu")


def _actor(seed: int = 0) -> TaskSetActor:
    torch.manual_seed(seed)
    actor = TaskSetActor(NetworkConfig(hidden=16, action_init_gain=1.0))
    init_weights(actor)
    return actor.eval()


@pytest.mark.parametrize("policy", ["random", "normalising"])
def test_env_and_runner_make_identical_decisions_and_j_curves(policy):
    """The parity the decision loop exists for: the env stepped with the actor's actions
    and run_controller with the same actor as a LearnedController, on the same seed (also
    for a policy whose decisions normalise the losses, which both must pass on)."""
    random = policy == "random"
    controller = (
        LearnedController(_actor(), 8) if random else make_test_controller("gm-fallback-half")
    )
    actor, max_tasks = controller.actor, controller.max_tasks
    budget, interval = 100, 25
    env = CurriculumEnv(
        suite="synthetic",
        budget=budget,
        interval=interval,
        max_tasks=max_tasks,
        trainer=CPU,
        action=controller.transform.name,
    )
    obs, _ = env.reset(seed=11)
    env_weights, env_j = [], [float(env._core.loop.state.j[0])]
    done = False
    while not done:
        with torch.no_grad():
            action = actor(torch.from_numpy(obs)[None])[0].numpy()
        obs, _, done, _, info = env.step(action)
        env_weights.append(info["weights"])
        env_j.append(info["j"])

    suite = resolve_suite("synthetic")
    instance_seed, run_seed = (int(s) for s in np.random.default_rng(11).integers(0, 2**31, 2))
    (record,) = run_controller(
        [suite.sample(instance_seed)],
        [run_seed],
        controller,
        budget,
        interval,
        CPU,
        max_tasks=max_tasks,
        out_max=max(t.out_dim for t in suite.describe()),
    )
    assert len(env_weights) == budget // interval
    for step, weights in enumerate(env_weights):
        assert np.array_equal(np.asarray(record.weights[step], dtype=np.float32), weights)
    assert record.j_curve == pytest.approx(env_j, abs=0, rel=0)


def test_shipped_policy_decisions_are_unchanged():
    """Open loop: the shipped policy, given the decision states it met in recorded runs,
    decides as it did then. (Replaying whole runs is not portable: a float difference
    between CPUs flips one validation prediction, the error signal moves by 1/n, and the
    runs part ways; given the same states, the policy is exact to float precision.)"""
    golden = torch.load(GOLDEN, weights_only=True)
    # the weights and the action transform: the same weights under another transform
    # decide otherwise (v10 is v9's weights under a mix)
    if controller_identity() != golden["policy"]:
        pytest.fail(
            "the shipped policy changed; record its decisions anew with "
            "`python tests/test_loop.py --regenerate`"
        )
    controller = curriculum_rl.load_controller()
    assert len(golden["states"]) == len(golden["decisions"]) >= 20
    for state, recorded in zip(golden["states"], golden["decisions"], strict=True):
        decision = controller.decide(_state_from_dict(state))
        # Files recorded before decisions had a loss normalisation or a scale hold none:
        # they were 0 and 1.
        unrecorded = {"normalisation": torch.zeros(decision.normalisation.shape)}
        unrecorded["scale"] = torch.ones(decision.scale.shape)
        recorded = {**unrecorded, **recorded}
        for key in ("weights", "sampling", "normalisation", "scale"):
            torch.testing.assert_close(getattr(decision, key), recorded[key], rtol=1e-4, atol=1e-6)


class _Recorder(Controller):
    """Passes decisions through from ``inner`` and keeps each state and decision."""

    def __init__(self, inner: Controller) -> None:
        self.inner, self.states, self.decisions = inner, [], []

    def reset(self, context) -> None:
        super().reset(context)
        self.inner.reset(context)

    def decide(self, signals: DecisionState) -> Decision:
        decision = self.inner.decide(signals)
        self.states.append(_state_to_dict(signals))
        keys = ("weights", "sampling", "normalisation", "scale")
        self.decisions.append({key: getattr(decision, key) for key in keys})
        return decision


def _state_to_dict(state: DecisionState) -> dict[str, torch.Tensor]:
    data = {f.name: getattr(state, f.name).clone() for f in fields(Signals)}
    for key in ("weights", "sampling", "normalisation", "scale"):
        data[f"previous_{key}"] = getattr(state.previous, key).clone()
    return data


def _state_from_dict(data: dict[str, torch.Tensor]) -> DecisionState:
    """The state ``_state_to_dict`` stored; a previous decision stored without its loss
    normalisation or scale had none (the defaults), as before v9's latch read it."""
    signals = {f.name: data[f.name] for f in fields(Signals)}
    previous = Decision(
        data["previous_weights"],
        data["previous_sampling"],
        data.get("previous_normalisation"),
        data.get("previous_scale"),
    )
    return DecisionState(**signals, previous=previous)


def _trainer(seeds=(0, 1, 2)) -> BatchedMultitaskTrainer:
    suite = resolve_suite("synthetic-scales")
    return BatchedMultitaskTrainer([suite.sample(s) for s in seeds], list(seeds), CPU, max_tasks=8)


def test_state_carries_the_decision_in_force_and_the_observation():
    trainer = _trainer()
    loop = DecisionLoop(trainer.mask, trainer.sizes, budget=100)
    state = loop.observe(trainer.measure())
    assert isinstance(state, DecisionState)
    torch.testing.assert_close(state.previous.weights, trainer.mask.float())
    decision = loop.decide(Uniform())
    weights = decision.weights * torch.linspace(0.5, 1.5, 8)
    loop.commit(Decision(weights, decision.sampling))
    trainer.train(5)
    state = loop.observe(trainer.measure())
    torch.testing.assert_close(state.previous.weights, weights)
    obs = state.observation(12)
    assert obs.shape == (3, 12, len(curriculum_rl.controllers.FEATURES))
    assert state.observation(12) is obs  # computed once per width
    with pytest.raises(ValueError, match="shape"):
        loop.commit(Decision(weights[:, :4], decision.sampling))
    with pytest.raises(ValueError, match="normalisation must have shape"):
        loop.commit(Decision(weights, decision.sampling, torch.zeros(2)))


def test_partial_restart_advances_only_the_restarted_runs():
    trainer = _trainer()
    loop = DecisionLoop(trainer.mask, trainer.sizes, budget=100)
    loop.observe(trainer.measure())
    for _ in range(2):
        trainer.train(5)
        before = loop.observe(trainer.measure())
    normalised, scale = torch.tensor([0.25, 0.5, 0.75]), torch.tensor([2.0, 3.0, 4.0])
    weights, sampling = trainer.mask.float() * 2 / 2, trainer.mask.float() / 8
    loop.commit(Decision(weights, sampling, normalised, scale))
    trainer.reset_run(1, resolve_suite("synthetic-scales").sample(7), 7)
    loop.restart([1], trainer.mask, trainer.sizes)
    assert loop.previous.normalisation.tolist() == [0.25, 0.0, 0.75]  # a new run starts at 0
    assert loop.previous.scale.tolist() == [2.0, 1.0, 4.0]  # and at scale 1
    after = loop.observe(trainer.measure(), runs=[1])
    assert after.decisions.tolist() == [before.decisions[0], 1, before.decisions[2]]
    for run in (0, 2):  # untouched runs keep their state exactly
        assert torch.equal(after.val_loss[run], before.val_loss[run])
        assert torch.equal(after.lp_slope[run], before.lp_slope[run])
    assert after.steps[1] == 0 and after.log_val_ratio[1].abs().max() == 0


def test_a_learned_controller_refuses_bare_signals():
    controller = LearnedController(_actor(), 8)
    trainer = _trainer((0,))
    loop = DecisionLoop(trainer.mask, trainer.sizes, budget=100)
    state = loop.observe(trainer.measure())
    signals = loop.tracker.update(trainer.measure(), 100, trainer.sizes)
    with pytest.raises(TypeError, match="DecisionState"):
        controller.decide(signals)
    assert controller.decide(state).weights.shape == (1, 8)


def _regenerate() -> None:
    """Record the decision states the shipped policy meets on ``synthetic`` (seeds 0-2),
    ``digits`` (seed 0), ``sequence-aux`` (seed 0: with auxiliary tasks) and
    ``tokens-family-raw-class-aux`` (seed 0: where v9's switch to ``sqrt-loss`` is on),
    300 inner steps, a decision every 25, and its decisions."""
    states, decisions = [], []
    for suite_name, seeds in (
        ("synthetic", [0, 1, 2]),
        ("digits", [0]),
        ("envs/heldout-aux.toml#sequence-aux", [0]),
        ("envs/train-tokens.toml#tokens-family-raw-class-aux", [0]),
    ):
        suite = resolve_suite(suite_name)
        recorder = _Recorder(curriculum_rl.load_controller())
        run_controller([suite.sample(s) for s in seeds], seeds, recorder, 300, 25)
        states += recorder.states
        decisions += recorder.decisions
    policy = controller_identity()
    _print_change(torch.load(GOLDEN, weights_only=True), policy, decisions)
    torch.save({"policy": policy, "states": states, "decisions": decisions}, GOLDEN)


def _print_change(old: dict, policy: str, decisions: list[dict]) -> None:
    """What a regeneration changes, for its commit message: the policy and, decision by
    decision, the largest change of each recorded column (the states may differ too)."""
    print(f"{old['policy']} -> {policy}; {len(decisions)} decisions")
    for key in ("weights", "sampling", "normalisation"):
        # a new recording may hold more or fewer decisions
        both = zip(old["decisions"], decisions, strict=False)
        pairs = [(o[key], n[key]) for o, n in both if key in o]
        if pairs:
            largest = max((o - n).abs().max().item() for o, n in pairs)
            print(f"  {key}: largest change {largest:.3g} over {len(pairs)} decisions")


if __name__ == "__main__" and "--regenerate" in sys.argv:
    torch.set_num_threads(1)
    _regenerate()


def test_a_decision_carries_its_scale_through_runs_and_cat():
    """``Decision.scale``: 1 per run by default; :meth:`runs`, :meth:`where` and
    :meth:`cat` keep each run's; the loop refuses one of the wrong shape."""
    weights, sampling = torch.ones(3, 2), torch.full((3, 2), 0.5)
    plain = Decision(weights, sampling)
    assert plain.scale.tolist() == [1.0, 1.0, 1.0]
    scaled = Decision(weights, sampling, torch.zeros(3), torch.tensor([1.0, 2.0, 3.0]))
    assert scaled.runs(slice(1, 3)).scale.tolist() == [2.0, 3.0]
    assert plain.runs([0]).cat(scaled.runs([2])).scale.tolist() == [1.0, 3.0]
    picked = scaled.where(torch.tensor([False, True, False]), replace(plain, weights=weights * 2))
    assert picked.scale.tolist() == [1.0, 2.0, 1.0]
    assert picked.weights[:, 0].tolist() == [2.0, 1.0, 2.0]
    loop = DecisionLoop(torch.ones(3, 2, dtype=torch.bool), torch.ones(3, 2), budget=10)
    with pytest.raises(ValueError, match="scale must have shape"):
        loop.commit(Decision(weights, sampling, torch.zeros(3), torch.ones(2)))
