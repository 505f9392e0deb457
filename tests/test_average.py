"""Combining policies (curriculum_rl.agents.average): the weight average is the element-wise
mean, the ensemble's actions are exactly the mean of its members' actions, a scaled
policy's actions are the original's times the factor, all are safe artifacts that drive a
run, and mismatched policies are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from curriculum_rl.agents.average import (
    average_policies,
    ensemble_policies,
    gate_policy,
    main,
    scale_policy,
    twin_actor,
)
from curriculum_rl.controllers.actions import TRANSFORMS
from curriculum_rl.controllers.learned.artifact import ArtifactError, load_artifact, save_artifact
from curriculum_rl.controllers.learned.network import NetworkConfig, TaskSetActor, init_weights
from curriculum_rl.controllers.load import load_controller
from curriculum_rl.controllers.observation import NUM_FEATURES
from curriculum_rl.controllers.registry import make_controller
from curriculum_rl.runner import run_controller
from curriculum_rl.suites import resolve_suite


def _policy(folder: Path, name: str, seed: int, action: str = "error_power", **network) -> Path:
    torch.manual_seed(seed)
    dim = TRANSFORMS[action].dim
    actor = TaskSetActor(NetworkConfig(action_dim=dim, action_init_gain=1.0, **network))
    init_weights(actor)
    return save_artifact(folder / name, actor, max_tasks=8, action=action)


def test_the_average_is_the_elementwise_mean(tmp_path: Path):
    paths = [_policy(tmp_path, f"p{i}", seed=i) for i in range(3)]
    out = average_policies(paths, tmp_path / "avg")
    states = [load_artifact(p).actor.state_dict() for p in paths]
    averaged = load_artifact(out).actor.state_dict()
    for key, value in averaged.items():
        torch.testing.assert_close(value, (states[0][key] + states[1][key] + states[2][key]) / 3)
    assert not torch.equal(averaged["head.weight"], states[0]["head.weight"])
    notes = json.loads(out.read_text())["notes"]["averaged"]
    assert [n["path"] for n in notes] == [str(p) for p in paths]


def test_averaging_copies_of_one_policy_gives_that_policy(tmp_path: Path):
    path = _policy(tmp_path, "p", seed=0)
    out = average_policies([path, path], tmp_path / "avg")
    same, original = load_artifact(out).actor.state_dict(), load_artifact(path).actor.state_dict()
    assert all(torch.equal(same[k], original[k]) for k in original)


def _observations(k_max: int = 6, batch: int = 5) -> torch.Tensor:
    """Random observations with 1..k_max valid tasks per row (mask in feature 0)."""
    generator = torch.Generator().manual_seed(0)
    obs = torch.randn(batch, k_max, NUM_FEATURES, generator=generator)
    valid = torch.arange(k_max) < torch.randint(1, k_max + 1, (batch, 1), generator=generator)
    obs[..., 0] = valid.float()
    return obs * valid.unsqueeze(-1)


def test_the_ensemble_acts_as_the_mean_of_its_members(tmp_path: Path):
    paths = [_policy(tmp_path, f"p{i}", seed=i) for i in range(3)]
    out = ensemble_policies(paths, tmp_path / "ens")
    ensemble = load_artifact(out)
    assert ensemble.network.hidden == 3 * load_artifact(paths[0]).network.hidden
    obs = _observations()
    with torch.no_grad():
        members = torch.stack([load_artifact(p).actor(obs) for p in paths])
        torch.testing.assert_close(ensemble.actor(obs), members.mean(0), atol=1e-5, rtol=1e-4)
        assert (members[0] - members.mean(0)).abs().max() > 1e-2  # the members differ
    assert [n["path"] for n in json.loads(out.read_text())["notes"]["ensembled"]] == [
        str(p) for p in paths
    ]


@pytest.mark.parametrize("combine", [average_policies, ensemble_policies])
def test_the_combination_drives_a_run(tmp_path: Path, combine):
    paths = [_policy(tmp_path, f"p{i}", seed=i) for i in range(2)]
    controller = load_controller(str(combine(paths, tmp_path / "avg")))
    instance = resolve_suite("synthetic").sample(0)
    (record,) = run_controller([instance], [0], controller, budget=50, interval=25)
    weights = torch.tensor(record.weights[-1])
    assert weights.shape == (instance.num_tasks,) and abs(weights.mean().item() - 1) < 1e-4
    assert any(abs(w - 1) > 1e-3 for w in record.weights[-1])  # a policy, not uniform


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (dict(action="loss_power"), "action transform"),
        (dict(hidden=32), "network"),
    ],
)
@pytest.mark.parametrize("combine", [average_policies, ensemble_policies])
def test_policies_of_different_kinds_are_refused(tmp_path: Path, other, message, combine):
    a = _policy(tmp_path, "a", seed=0)
    b = _policy(tmp_path, "b", seed=1, **other)
    with pytest.raises(ArtifactError, match=message):
        combine([a, b], tmp_path / "avg")
    assert not (tmp_path / "avg.json").exists()


def test_the_command_line_needs_two_policies(tmp_path: Path, capsys):
    path = _policy(tmp_path, "p", seed=0)
    with pytest.raises(SystemExit) as exit_:
        main([str(path), "--out", str(tmp_path / "avg")])
    assert exit_.value.code == 2 and "at least two policies" in capsys.readouterr().err
    assert main([str(path), str(path), "--out", str(tmp_path / "avg")]) == 0
    assert (tmp_path / "avg.pt").is_file()
    assert main([str(path), str(path), "--ensemble", "--out", str(tmp_path / "ens")]) == 0
    assert load_artifact(tmp_path / "ens.json").network.hidden == 2 * 64


@pytest.mark.parametrize("factor", [0.0, 0.5, 1.5])
def test_scaling_multiplies_every_action_mean(tmp_path: Path, factor: float):
    path = _policy(tmp_path, "p", seed=0)
    scaled = load_artifact(scale_policy(path, factor, tmp_path / "scaled"))
    original = load_artifact(path)
    obs = _observations()
    with torch.no_grad():
        torch.testing.assert_close(scaled.actor(obs), factor * original.actor(obs))
    torch.testing.assert_close(scaled.actor.log_std, original.actor.log_std)
    assert json.loads((tmp_path / "scaled.json").read_text())["notes"]["factor"] == factor


def test_scaling_named_columns_leaves_the_others(tmp_path: Path):
    """--columns: only the named action numbers move; the others are the original's."""
    path = _policy(tmp_path, "p", seed=0)
    original = load_artifact(path)
    scaled = load_artifact(scale_policy(path, 0.0, tmp_path / "s", ["gamma", "weight"]))
    obs = _observations()
    with torch.no_grad():
        before, after = original.actor(obs), scaled.actor(obs)
    columns = TRANSFORMS["error_power"].columns
    for i, name in enumerate(columns):
        expected = (
            torch.zeros_like(before[..., i]) if name in ("gamma", "weight") else before[..., i]
        )
        torch.testing.assert_close(after[..., i], expected)
    assert before[..., 0].abs().sum() > 0  # the zeroed column was not zero to begin with
    notes = json.loads((tmp_path / "s.json").read_text())["notes"]
    assert notes["columns"] == ["weight", "gamma"] and notes["factor"] == 0.0


def test_scaling_an_unknown_column_is_refused(tmp_path: Path):
    path = _policy(tmp_path, "p", seed=0, action="logits")
    with pytest.raises(
        ArtifactError, match=r"columns are \['weight', 'sampling'\]; unknown: \['beta'\]"
    ):
        scale_policy(path, 0.0, tmp_path / "s", ["beta"])
    assert not (tmp_path / "s.json").exists()


def test_scale_zero_acts_as_the_centre_rule(tmp_path: Path):
    """error_power's zero action is `scale-normalised`: a policy scaled by 0 runs exactly
    as that heuristic does."""
    controller = load_controller(str(scale_policy(_policy(tmp_path, "p", 0), 0.0, tmp_path / "z")))
    instance = resolve_suite("synthetic").sample(0)
    (scaled,) = run_controller([instance], [0], controller, budget=100, interval=25)
    (rule,) = run_controller(
        [instance], [0], make_controller("scale-normalised"), budget=100, interval=25
    )
    torch.testing.assert_close(torch.tensor(scaled.weights), torch.tensor(rule.weights))
    assert scaled.final_test_metric == rule.final_test_metric


def test_the_command_line_scales_one_policy(tmp_path: Path, capsys):
    path = _policy(tmp_path, "p", seed=0)
    assert main([str(path), "--scale", "2", "--out", str(tmp_path / "x2")]) == 0
    assert json.loads((tmp_path / "x2.json").read_text())["notes"]["factor"] == 2.0
    with pytest.raises(SystemExit) as exit_:
        main([str(path), str(path), "--scale", "2", "--out", str(tmp_path / "bad")])
    assert exit_.value.code == 2 and "exactly one policy" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main([str(path), "--scale", "nan", "--out", str(tmp_path / "bad")])
    assert exit_.value.code == 2 and "finite" in capsys.readouterr().err
    assert main([str(path), "--scale", "0", "--columns", "beta", "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b.json").read_text())["notes"]["columns"] == ["beta"]
    with pytest.raises(SystemExit) as exit_:
        main([str(path), "--columns", "beta", "--out", str(tmp_path / "bad")])
    assert exit_.value.code == 2 and "--columns goes with --scale" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main([str(path), "--scale", "0", "--columns", "tau", "--out", str(tmp_path / "bad")])
    assert exit_.value.code == 2 and "unknown: ['tau']" in capsys.readouterr().err


def test_a_gated_policy_keeps_its_network_and_changes_only_runs_with_auxiliaries(tmp_path: Path):
    path = _policy(tmp_path, "p", seed=0)
    gated_path = gate_policy(path, tmp_path / "g")
    gated, original = load_artifact(gated_path), load_artifact(path)
    assert gated.action == "error_power_gated" and original.action == "error_power"
    state = original.actor.state_dict()
    assert all(torch.equal(gated.actor.state_dict()[k], v) for k, v in state.items())
    instance = resolve_suite("sequence").sample(0)  # every task a target
    (plain_run,) = run_controller([instance], [0], load_controller(str(path)), 50, 25)
    (gated_run,) = run_controller([instance], [0], load_controller(str(gated_path)), 50, 25)
    assert gated_run.weights == plain_run.weights
    assert gated_run.final_test_metric == plain_run.final_test_metric
    with_auxiliaries = resolve_suite("envs/heldout-aux.toml#sequence-aux").sample(0)
    (plain_run,) = run_controller([with_auxiliaries], [0], load_controller(str(path)), 50, 25)
    (gated_run,) = run_controller([with_auxiliaries], [0], load_controller(str(gated_path)), 50, 25)
    assert gated_run.weights[0] == plain_run.weights[0]  # no gradient measured yet
    assert gated_run.weights[1] != plain_run.weights[1]


def test_gating_is_refused_for_a_transform_without_a_gated_twin(tmp_path: Path, capsys):
    path = _policy(tmp_path, "p", seed=0, action="logits")
    with pytest.raises(ArtifactError, match="has no fixed gated twin"):
        gate_policy(path, tmp_path / "g")
    assert not (tmp_path / "g.json").exists()
    with pytest.raises(SystemExit) as exit_:
        main([str(path), "--gate-auxiliaries", "--scale", "2", "--out", str(tmp_path / "b")])
    assert exit_.value.code == 2 and "exactly one policy" in capsys.readouterr().err


def test_a_learned_gate_starts_at_zero_and_acts_as_the_original(tmp_path: Path, capsys):
    path = _policy(tmp_path, "p", seed=0)
    assert main([str(path), "--gate-auxiliaries", "learned", "--out", str(tmp_path / "g")]) == 0
    gated, original = load_artifact(tmp_path / "g.json"), load_artifact(path)
    assert gated.action == "error_power_gate" and gated.network.action_dim == 5
    head = gated.actor.state_dict()["head.weight"]
    assert torch.equal(head[:4], original.actor.state_dict()["head.weight"])
    assert (head[4] == 0).all() and gated.actor.state_dict()["head.bias"][4] == 0
    instance = resolve_suite("envs/heldout-aux.toml#sequence-aux").sample(0)
    (plain_run,) = run_controller([instance], [0], load_controller(str(path)), 50, 25)
    (gated_run,) = run_controller([instance], [0], load_controller(str(tmp_path / "g")), 50, 25)
    assert gated_run.weights == plain_run.weights
    assert gated_run.final_test_metric == plain_run.final_test_metric


def _beta_up_twin_acting_as(policy) -> TaskSetActor:
    """``policy``'s ``error_power_beta_up`` twin, after checking that it acts as the policy
    on the old columns and sets the new column to the zero action."""
    shifted = twin_actor(policy, "error_power_beta_up")
    obs = torch.randn(3, 8, NUM_FEATURES)
    obs[..., 0] = 1.0
    with torch.no_grad():
        actions, before = shifted(obs), policy.actor(obs)
    assert torch.equal(actions[..., :-1], before)  # bit for bit: its own product
    assert torch.all(actions[..., -1] == 0)  # the new column starts at the zero action
    return shifted


def test_a_twin_of_a_twin_decides_as_its_base_bit_for_bit_after_saving(tmp_path: Path):
    """v7's network twice extended (as v8 was, then v8's fallback twin), the first time
    with a run head: each extension keeps its base's rows in their own product
    (``NetworkConfig.head_rows``), through a save and load, so a switch at 0 is its base
    exactly. (v7 is a shape where one larger product rounds differently.)"""
    v7 = load_artifact("agents/v7.json")
    drop = v7.action + "_auxregdrop"
    first = twin_actor(v7, drop, run_head=True)
    with torch.no_grad():
        first.run_head.weight[-1].normal_(std=0.1)  # a fitted switch row
    loaded = load_artifact(save_artifact(tmp_path / "p", first, max_tasks=12, action=drop))
    assert loaded.network.head_rows == (7, 1)
    second = twin_actor(loaded, drop + "_iefallback")
    assert second.config.head_rows == (7, 1, 1)
    obs = torch.randn(4, 12, NUM_FEATURES, generator=torch.Generator().manual_seed(0))
    obs[..., 0] = 1.0
    obs[:, 9:, 0] = 0.0  # three padded rows
    with torch.no_grad():
        assert torch.equal(loaded.actor(obs)[..., :7], v7.actor(obs))
        assert torch.equal(second(obs)[..., :8], loaded.actor(obs))


@pytest.mark.parametrize("rows", [(4, 0, 1), (3, 1), (-1, 6)])
def test_head_rows_must_be_positive_blocks_of_the_action(rows):
    with pytest.raises(ValueError, match="head_rows"):
        NetworkConfig(action_dim=5, head_rows=rows)


def test_a_twin_of_a_policy_with_a_run_head_keeps_its_readout(tmp_path: Path):
    """A run head grows like the head: its trained rows kept, the new column's row 0."""
    torch.manual_seed(1)
    actor = TaskSetActor(NetworkConfig(action_init_gain=1.0, run_head=True))
    init_weights(actor)
    torch.nn.init.normal_(actor.run_head.weight, std=0.1)
    policy = load_artifact(save_artifact(tmp_path / "p", actor, max_tasks=8, action="error_power"))
    shifted = _beta_up_twin_acting_as(policy)
    assert shifted.config.run_head and (shifted.run_head.weight[:4] != 0).any()


def test_a_twin_adds_zero_rows_and_refuses_a_transform_that_does_not_extend(tmp_path: Path):
    policy = load_artifact(_policy(tmp_path, "p", seed=0))
    _beta_up_twin_acting_as(policy)
    with pytest.raises(ArtifactError, match="'logits' does not extend"):
        twin_actor(policy, "logits")
