"""The safe policy artifact, the learned controller and load_controller."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pytest
import torch

import curriculum_rl
from curriculum_rl.controllers.actions import TRANSFORMS
from curriculum_rl.controllers.base import Uniform
from curriculum_rl.controllers.learned.artifact import ArtifactError, load_artifact, save_artifact
from curriculum_rl.controllers.learned.controller import LearnedController
from curriculum_rl.controllers.learned.network import NetworkConfig, TaskSetActor, init_weights
from curriculum_rl.controllers.load import load_controller
from curriculum_rl.controllers.observation import NUM_FEATURES
from curriculum_rl.runner import run_controller
from curriculum_rl.suites import SyntheticSetting, SyntheticSuite


@pytest.fixture()
def policy_file(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    actor = TaskSetActor(NetworkConfig(hidden=16, action_init_gain=1.0))
    init_weights(actor)
    return save_artifact(
        tmp_path / "policy", actor, max_tasks=8, action="error_power", training={"note": "test"}
    )


def test_roundtrip_gives_the_same_network(policy_file: Path):
    artifact = load_artifact(policy_file)
    again = load_artifact(policy_file.with_suffix(".pt"))  # either file names the pair
    obs = torch.randn(2, 8, NUM_FEATURES)
    obs[..., 0] = 1.0
    with torch.no_grad():
        torch.testing.assert_close(artifact.actor(obs), again.actor(obs))
    meta = artifact.metadata
    assert meta["observation"]["max_tasks"] == 8 and meta["network"]["hidden"] == 16
    assert meta["action"]["transform"] == "error_power"
    assert {"gamma_scale", "residual_scale", "sampling_floor"} <= set(meta["action"]["constants"])


def _marker_payload(marker: Path):
    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    return Payload()


def test_truncated_weights_are_refused(policy_file: Path):
    weights = policy_file.with_suffix(".pt")
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="truncated"):
        load_artifact(policy_file)


def test_tampered_weights_are_refused_before_loading(policy_file: Path, tmp_path: Path):
    marker = tmp_path / "pwned"
    weights = policy_file.with_suffix(".pt")
    size = weights.stat().st_size
    payload = pickle.dumps(_marker_payload(marker))
    weights.write_bytes(payload + b"\0" * (size - len(payload)))  # same size, other bytes
    with pytest.raises(ArtifactError, match="SHA-256"):
        load_artifact(policy_file)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("as_torch_file", [False, True])
def test_forged_hash_still_executes_nothing(policy_file: Path, tmp_path: Path, as_torch_file):
    """An attacker who rewrites the metadata too still meets the weights-only unpickler."""
    marker = tmp_path / "pwned"
    weights = policy_file.with_suffix(".pt")
    if as_torch_file:
        torch.save({"head.weight": _marker_payload(marker)}, weights)
    else:
        weights.write_bytes(pickle.dumps(_marker_payload(marker)))
    data = weights.read_bytes()
    meta = json.loads(policy_file.read_text())
    meta["weights_bytes"], meta["weights_sha256"] = len(data), hashlib.sha256(data).hexdigest()
    policy_file.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="refused without executing"):
        load_artifact(policy_file)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("observation", "version", 999, "observation layout"),
        ("observation", "features", ["mask"], "observation layout"),
        ("action", "transform", "logits", "action transform"),
        ("action", "constants", {"gamma_scale": 3.0}, "action transform"),
    ],
)
def test_mismatched_layouts_are_refused(policy_file: Path, section, key, value, message):
    meta = json.loads(policy_file.read_text())
    meta[section][key] = value
    policy_file.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=message):
        load_artifact(policy_file)


def test_an_action_mismatch_names_what_differs_and_stays_short(policy_file: Path):
    meta = json.loads(policy_file.read_text())
    meta["action"]["constants"]["gamma_scale"] = 3.0
    policy_file.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError) as error:
        load_artifact(policy_file)
    assert "gamma_scale: policy 3.0, this version 1.5" in str(error.value)
    assert "sampling_floor" not in str(error.value)  # an equal constant is not listed
    meta["action"]["transform"] = "no_such_transform"
    policy_file.write_text(json.dumps(meta))
    with pytest.raises(
        ArtifactError, match="'no_such_transform', which this curriculum-rl"
    ) as error:
        load_artifact(policy_file)
    # the registry's names, not every transform's constants (once over 20,000 characters)
    assert all(name in str(error.value) for name in TRANSFORMS)
    assert "gamma_centre" not in str(error.value)


def test_missing_and_corrupt_files_give_clear_errors(policy_file: Path, tmp_path: Path):
    with pytest.raises(ArtifactError, match="not found"):
        load_artifact(tmp_path / "nothing.json")
    policy_file.write_text(policy_file.read_text()[:50])
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_artifact(policy_file)


def test_a_renamed_pair_loads_and_a_lone_json_names_both_candidates(policy_file: Path):
    renamed = policy_file.with_name("renamed.json")
    policy_file.rename(renamed)
    policy_file.with_suffix(".pt").rename(renamed.with_suffix(".pt"))
    assert load_artifact(renamed).metadata["weights_file"] == "policy.pt"
    renamed.with_suffix(".pt").unlink()
    with pytest.raises(ArtifactError, match=r"names policy\.pt, and there is no renamed\.pt"):
        load_artifact(renamed)


def test_a_renamed_pair_beside_another_policys_file_of_the_named_name_loads(
    policy_file: Path, tmp_path: Path
):
    """Copying runs/a/policy.json to cands/a.json where cands/policy.pt belongs to another
    policy: the hashes pick cands/a.pt."""
    folder = tmp_path / "cands"
    folder.mkdir()
    (folder / "a.json").write_text(policy_file.read_text())
    (folder / "a.pt").write_bytes(policy_file.with_suffix(".pt").read_bytes())
    other = TaskSetActor(NetworkConfig(hidden=8))
    save_artifact(folder / "policy", other, max_tasks=8, action="error_power")
    loaded = load_artifact(folder / "a.json")
    torch.testing.assert_close(
        loaded.actor.state_dict(), load_artifact(policy_file).actor.state_dict()
    )
    (folder / "a.pt").write_bytes(b"x" * len((folder / "a.pt").read_bytes()))
    with pytest.raises(ArtifactError, match=r"policy\.pt has .* bytes.*a\.pt does not match"):
        load_artifact(folder / "a.json")


def _instances(k: int, count: int = 2):
    suite = SyntheticSuite(
        name=f"k{k}",
        settings=(SyntheticSetting(f"k{k}", num_tasks=(k, k), scale_spread=(1, 30)),),
        n_train=128,
        n_val=64,
        n_test=128,
    )
    return [suite.sample(seed) for seed in range(count)]


@pytest.mark.parametrize("k", [3, 7])
def test_loaded_policy_drives_run_controller(policy_file: Path, k: int):
    controller = load_controller(policy_file)
    assert isinstance(controller, LearnedController)
    records = run_controller(_instances(k), [0, 1], controller, budget=100, interval=25)
    for rec in records:
        assert len(rec.tasks) == k
        assert torch.isfinite(torch.tensor(rec.final_test_j))
        weights = torch.tensor(rec.weights[-1])
        assert weights.shape == (k,) and abs(weights.mean().item() - 1) < 1e-4
        assert abs(sum(rec.sampling[-1]) - 1) < 1e-4
    # a trained-looking (non-zero) policy actually moves away from uniform
    assert any(abs(w - 1) > 1e-3 for rec in records for w in rec.weights[-1])


@pytest.mark.parametrize("action", sorted(TRANSFORMS))
def test_a_policy_of_every_action_transform_round_trips_and_drives_a_run(
    tmp_path: Path, action: str
):
    """Each transform's policy file records its action, loads with it, and a run under
    it moves the weights (and, only for transforms with a sampling column, the sampling)
    off uniform, the same way on a second load."""
    torch.manual_seed(0)
    actor = TaskSetActor(
        NetworkConfig(hidden=16, action_init_gain=1.0, action_dim=TRANSFORMS[action].dim)
    )
    init_weights(actor)
    path = save_artifact(tmp_path / action, actor, max_tasks=8, action=action)
    runs = [
        run_controller(_instances(3, 1), [0], load_controller(path), budget=75, interval=25)[0]
        for _ in range(2)
    ]
    assert load_artifact(path).action == action
    assert runs[0].weights == runs[1].weights and runs[0].sampling == runs[1].sampling
    weights, sampling = torch.tensor(runs[0].weights[-1]), torch.tensor(runs[0].sampling[-1])
    assert (weights - 1).abs().max() > 1e-3
    samples = "sampling" in TRANSFORMS[action].columns
    assert ((sampling - 1 / 3).abs().max() > 1e-3) == samples


def test_a_policy_runs_more_tasks_than_it_was_trained_with(policy_file: Path):
    """No observation feature depends on K_max, so a K_max = 8 policy runs K = 12."""
    controller = load_controller(policy_file)
    assert controller.max_tasks == 8
    (record,) = run_controller(_instances(12, 1), [0], controller, budget=50, interval=25)
    assert len(record.weights[-1]) == 12 and abs(sum(record.weights[-1]) / 12 - 1) < 1e-4
    assert torch.isfinite(torch.tensor(record.final_test_j))


def test_load_controller_names():
    assert isinstance(curriculum_rl.load_controller("uniform"), Uniform)
    with pytest.raises(ValueError, match="unknown controller"):
        load_controller("no-such-controller")


def test_the_shipped_default_policy_loads():
    controller = curriculum_rl.load_controller()
    assert isinstance(controller, LearnedController) and controller.name == "default"
    records = run_controller(_instances(3, 1), [0], controller, budget=50, interval=25)
    assert torch.isfinite(torch.tensor(records[0].final_test_j))


def test_ignored_features_do_not_move_the_policy_and_travel_with_the_artifact(tmp_path: Path):
    torch.manual_seed(0)
    ignored = ("log_train_centred", "log_val_centred")
    actor = TaskSetActor(NetworkConfig(hidden=16, action_init_gain=1.0, ignore_features=ignored))
    init_weights(actor)
    loaded = load_artifact(
        save_artifact(tmp_path / "p", actor, max_tasks=8, action="error_power")
    ).actor
    assert loaded.config.ignore_features == ignored
    obs = torch.randn(2, 8, NUM_FEATURES)
    obs[..., 0] = 1.0
    changed = obs.clone()
    changed[..., 1:3] += 5.0  # the two ignored columns
    other = obs.clone()
    other[..., 3] += 5.0  # log_val_ratio, read
    with torch.no_grad():
        base = loaded(obs)
        torch.testing.assert_close(loaded(changed), base)
        assert not torch.allclose(loaded(other), base)
        torch.testing.assert_close(base, actor(obs))


@pytest.mark.parametrize(
    ("ignored", "message"),
    [(("log_val",), "unknown feature"), (("mask",), "cannot hold 'mask'")],
)
def test_bad_ignored_features_are_refused(ignored, message):
    with pytest.raises(ValueError, match=message):
        NetworkConfig(ignore_features=ignored)
