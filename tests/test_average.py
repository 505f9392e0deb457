"""Weight averaging of checkpoints (curriculum_rl.agents.average): the result is the
element-wise mean, a safe artifact that drives a run, and mismatched policies are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from curriculum_rl.agents.average import average_policies, main
from curriculum_rl.controllers.actions import TRANSFORMS
from curriculum_rl.controllers.learned.artifact import ArtifactError, load_artifact, save_artifact
from curriculum_rl.controllers.learned.network import NetworkConfig, TaskSetActor, init_weights
from curriculum_rl.controllers.load import load_controller
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


def test_the_average_drives_a_run(tmp_path: Path):
    paths = [_policy(tmp_path, f"p{i}", seed=i) for i in range(2)]
    controller = load_controller(str(average_policies(paths, tmp_path / "avg")))
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
def test_policies_of_different_kinds_are_refused(tmp_path: Path, other, message):
    a = _policy(tmp_path, "a", seed=0)
    b = _policy(tmp_path, "b", seed=1, **other)
    with pytest.raises(ArtifactError, match=message):
        average_policies([a, b], tmp_path / "avg")
    assert not (tmp_path / "avg.json").exists()


def test_the_command_line_needs_two_policies(tmp_path: Path, capsys):
    path = _policy(tmp_path, "p", seed=0)
    with pytest.raises(SystemExit) as exit_:
        main([str(path), "--out", str(tmp_path / "avg")])
    assert exit_.value.code == 2 and "at least two policies" in capsys.readouterr().err
    assert main([str(path), str(path), "--out", str(tmp_path / "avg")]) == 0
    assert (tmp_path / "avg.pt").is_file()
