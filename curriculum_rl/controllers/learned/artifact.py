"""The policy artifact: how a trained controller is stored, shared and loaded safely.

Format (version 2): two files side by side, ``NAME.json`` and ``NAME.pt``.

* ``NAME.pt`` holds only the actor's ``state_dict`` (a flat ``{name: tensor}`` dict) written
  by ``torch.save``.
* ``NAME.json`` (UTF-8, human-readable) holds ``format``, ``format_version``, the
  observation layout (``OBS_VERSION``, the ``FEATURES`` names, ``max_tasks``), the action
  transform (its name and constants, :mod:`curriculum_rl.controllers.actions`), the
  network sizes, the name, shape and dtype of every tensor, the training config and
  notes, and the size and SHA-256 of ``NAME.pt``.

Loading reads the JSON first and refuses, with a message naming the problem and the fix,
any layout or transform the running code does not share (a policy is only meaningful
with the exact observation and action mapping it was trained on). It then checks the
weights file's size (truncation) and SHA-256 (tampering, corruption) *before* handing a
byte of it to torch, and finally loads with ``torch.load(weights_only=True)``, whose
restricted unpickler accepts tensors and plain containers only, so even a file whose hash
was forged along with its payload cannot execute code. Nothing here ever unpickles
arbitrary objects; safetensors would do the same job but is not a dependency.

SB3's own ``.zip`` checkpoints (cloudpickle inside) are written by ``curriculum-rl train``
only to resume one's own run; never load a shared policy from one.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from curriculum_rl.atomic import write_bytes_atomic, write_text_atomic
from curriculum_rl.controllers.actions import TRANSFORMS, action_transform
from curriculum_rl.controllers.learned.network import NetworkConfig, TaskSetActor
from curriculum_rl.controllers.observation import FEATURES, OBS_VERSION
from curriculum_rl.typed_config import differing_settings

FORMAT = "curriculum-rl-policy"
FORMAT_VERSION = 2
MAX_METADATA_BYTES = 1 << 20  # the JSON is a few kB; refuse to parse anything huge


class ArtifactError(ValueError):
    """A policy artifact is missing, corrupt, tampered with or incompatible."""


@dataclass
class PolicyArtifact:
    """A loaded policy: the actor network (eval mode, CPU) and its metadata."""

    actor: TaskSetActor
    network: NetworkConfig
    max_tasks: int
    action: str
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def _action_description(name: str) -> dict[str, Any]:
    return {"transform": name, "constants": action_transform(name).constants()}


def artifact_paths(path: str | Path) -> tuple[Path, Path]:
    """``(json, weights)`` paths of an artifact named by its ``.json``, its ``.pt``, its
    stem, or a folder holding ``policy.json``."""
    path = Path(path)
    if path.is_dir():
        path = path / "policy.json"
    if path.suffix in (".json", ".pt"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".json"), path.with_name(path.name + ".pt")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_artifact(
    path: str | Path,
    actor: TaskSetActor,
    max_tasks: int,
    action: str,
    training: dict[str, Any] | None = None,
    notes: dict[str, Any] | None = None,
) -> Path:
    """Write ``actor`` as ``PATH.pt`` + ``PATH.json``; return the JSON path.

    Args:
        path: the artifact name (``.json`` / ``.pt`` suffix optional).
        max_tasks: K_max the policy was trained with (observations are padded to it).
        action: the action transform the policy was trained with (its name and constants
            are stored: a policy is only valid with them).
        training: the training config (JSON-serialisable), stored for provenance.
        notes: anything else worth keeping (timesteps, evaluation scores...).
    """
    dim = action_transform(action).dim
    if actor.config.action_dim != dim:
        raise ValueError(
            f"the network emits {actor.config.action_dim} numbers per task, the {action!r} "
            f"action transform reads {dim}: build it with NetworkConfig(action_dim={dim})"
        )
    json_path, weights_path = artifact_paths(path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    state = {name: t.detach().cpu().contiguous().clone() for name, t in actor.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "weights_file": weights_path.name,
        "weights_bytes": len(data),
        "weights_sha256": _sha256(data),
        "observation": {"version": OBS_VERSION, "features": list(FEATURES), "max_tasks": max_tasks},
        "action": _action_description(action),
        "network": actor.config.to_dict(),
        "tensors": {
            name: {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}
            for name, t in state.items()
        },
        "training": training or {},
        "notes": notes or {},
    }
    # Each file is replaced atomically (curriculum_rl.atomic): an interrupted save leaves
    # the previous pair intact. Weights first, metadata last: a crash between the two
    # renames leaves a hash mismatch (refused), never a JSON vouching for other weights.
    text = json.dumps(metadata, indent=1, sort_keys=True, default=_json_default)
    write_bytes_atomic(weights_path, data)
    write_text_atomic(json_path, text)
    return json_path


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Parse and validate an artifact's JSON (no weights are read)."""
    json_path, _ = artifact_paths(path)
    if not json_path.is_file():
        raise ArtifactError(
            f"policy metadata {json_path} not found; a policy is a pair NAME.json + NAME.pt "
            "written by `curriculum-rl train` (give the path of either file)"
        )
    if json_path.stat().st_size > MAX_METADATA_BYTES:
        raise ArtifactError(
            f"{json_path} is larger than {MAX_METADATA_BYTES} bytes: not a policy file"
        )
    try:
        metadata = json.loads(json_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtifactError(
            f"{json_path} is not valid JSON ({err}); the file is corrupt or truncated: "
            "re-copy it or re-export the policy"
        ) from err
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ArtifactError(
            f"{json_path} is not a curriculum-rl policy file (format != {FORMAT!r})"
        )
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"{json_path} uses artifact format version {version}, this curriculum-rl reads "
            f"version {FORMAT_VERSION}; use the curriculum-rl release that wrote it or re-export"
        )
    for key in (
        "weights_file",
        "weights_bytes",
        "weights_sha256",
        "observation",
        "action",
        "network",
        "tensors",
    ):
        if key not in metadata:
            raise ArtifactError(f"{json_path} lacks the field {key!r}; the file is damaged")
    _check_compatible(metadata, json_path)
    return metadata


def _check_compatible(metadata: dict[str, Any], json_path: Path) -> None:
    obs = metadata["observation"]
    if obs.get("version") != OBS_VERSION or list(obs.get("features", [])) != list(FEATURES):
        raise ArtifactError(
            f"{json_path} was trained on observation layout v{obs.get('version')} "
            f"({len(obs.get('features', []))} features), but this curriculum-rl builds layout "
            f"v{OBS_VERSION} ({len(FEATURES)} features); the policy would read garbage. "
            "Retrain it with `curriculum-rl train`, or use the curriculum-rl version it was "
            "trained with"
        )
    got = metadata["action"]
    name = got.get("transform") if isinstance(got, dict) else None
    if name not in TRANSFORMS or got != _action_description(name):
        raise ArtifactError(
            f"{json_path} was trained with action transform {_action_mismatch(got, name)}; "
            "the same actions would mean different schedules. Retrain the policy or use the "
            "curriculum-rl version it was trained with"
        )
    if not isinstance(obs.get("max_tasks"), int) or obs["max_tasks"] < 1:
        raise ArtifactError(f"{json_path}: observation.max_tasks must be a positive integer")


def _action_mismatch(got: Any, name: Any) -> str:
    """What differs between a policy's recorded action and this version's: an unknown
    name (with the known ones), or the constants that differ (recorded vs here); short,
    because the registry holds dozens of transforms."""
    if name not in TRANSFORMS:
        return f"{name!r}, which this curriculum-rl does not know (it knows {sorted(TRANSFORMS)})"
    recorded = got.get("constants") if isinstance(got.get("constants"), dict) else {}
    listed = "; ".join(
        f"{key}: policy {theirs}, this version {ours}"
        for key, theirs, ours in differing_settings(recorded, action_transform(name).constants())
    )
    return f"{name!r} with other constants ({listed or 'malformed action record'})"


def load_artifact(path: str | Path) -> PolicyArtifact:
    """Load a policy safely; raise :class:`ArtifactError` naming the problem and the fix."""
    metadata = read_metadata(path)
    json_path, sibling = artifact_paths(path)
    name = metadata["weights_file"]
    if not isinstance(name, str) or Path(name).name != name:
        raise ArtifactError(f"{json_path}: weights_file must be a bare file name, got {name!r}")
    weights_path, data = _read_weights(metadata, json_path, json_path.with_name(name), sibling)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, ... by case
        raise ArtifactError(
            f"{weights_path} could not be loaded as plain tensors ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); it is not a policy written by "
            "curriculum-rl and was refused without executing it"
        ) from err
    network = _network_config(metadata, json_path)
    actor = TaskSetActor(network)
    _check_state(state, metadata, actor, weights_path)
    actor.load_state_dict(state, strict=True)
    actor.eval()
    return PolicyArtifact(
        actor=actor,
        network=network,
        max_tasks=int(metadata["observation"]["max_tasks"]),
        action=metadata["action"]["transform"],
        metadata=metadata,
        path=json_path,
    )


def _read_weights(
    metadata: dict[str, Any], json_path: Path, named: Path, sibling: Path
) -> tuple[Path, bytes]:
    """The bytes of the weights the metadata describes: the file it names, else NAME.pt
    beside the JSON (a renamed pair; or one copied next to another policy's file of the
    named name). Size and SHA-256 decide, so the file chosen is always the right one."""
    candidates = [c for c in dict.fromkeys((named, sibling)) if c.is_file()]
    if not candidates:
        raise ArtifactError(
            f"policy weights not found: {json_path.name} names {named.name}, and there is no "
            f"{sibling.name} beside it; keep the .pt next to its .json"
        )
    problems = []
    for path in candidates:
        size = path.stat().st_size  # checked before reading: never slurp a huge file
        if size != metadata["weights_bytes"]:
            problems.append(
                f"{path} has {size} bytes, its metadata says {metadata['weights_bytes']}: "
                "the file is truncated or was replaced"
            )
            continue
        data = path.read_bytes()
        if _sha256(data) == metadata["weights_sha256"]:
            return path, data
        problems.append(
            f"{path} does not match the SHA-256 recorded in {json_path.name}: the weights "
            "were modified or corrupted, so they are not loaded"
        )
    raise ArtifactError("; ".join(problems) + "; re-copy both files of the policy from its source")


def _network_config(metadata: dict[str, Any], json_path: Path) -> NetworkConfig:
    try:
        network = NetworkConfig(**metadata["network"])
    except (TypeError, ValueError) as err:
        raise ArtifactError(f"{json_path}: invalid network description ({err})") from err
    if network.num_features != len(FEATURES):
        raise ArtifactError(
            f"{json_path}: network reads {network.num_features} features, observations have "
            f"{len(FEATURES)}; retrain the policy"
        )
    dim = action_transform(metadata["action"]["transform"]).dim
    if network.action_dim != dim:
        raise ArtifactError(
            f"{json_path}: network emits {network.action_dim} numbers per task, its action "
            f"transform reads {dim}; the file is damaged: re-export the policy"
        )
    return network


def _check_state(state: Any, metadata: dict, actor: TaskSetActor, weights_path: Path) -> None:
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ArtifactError(f"{weights_path} does not hold a flat name -> tensor dict")
    expected = actor.state_dict()
    if set(state) != set(expected):
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        raise ArtifactError(
            f"{weights_path} does not fit the network described in its metadata "
            f"(missing {missing}, unexpected {extra}); re-export the policy"
        )
    for key, tensor in state.items():
        described = metadata["tensors"].get(key, {})
        if list(tensor.shape) != list(expected[key].shape) or list(tensor.shape) != described.get(
            "shape"
        ):
            raise ArtifactError(
                f"{weights_path}: tensor {key} has shape {list(tensor.shape)}, expected "
                f"{list(expected[key].shape)}; re-export the policy"
            )
        if not tensor.is_floating_point() or not torch.isfinite(tensor).all():
            raise ArtifactError(f"{weights_path}: tensor {key} is not finite floating point")
