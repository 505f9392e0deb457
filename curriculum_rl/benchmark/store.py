"""The run folder: where each run's JSON lives and what counts as done.

A run is done when ``runs/<suite>/<controller>/seed<k>.json`` exists, parses and was
produced with the same settings (budget, interval, trainer, padding; not the number of
seeds nor the first seed: a seed's numbers do not depend on the others,
:mod:`curriculum_rl.benchmark.run`) by the same controller: a label such as ``default``
or ``policy`` can name another policy later, so each run records its controller's
identity (a policy's weights hash) and a run of another identity is an error, not a
result. (Runs stored before identities were recorded have none and are taken as stored.)
Files are written atomically (:mod:`curriculum_rl.atomic`), so an interrupted benchmark
never leaves a half-written JSON that a restart would mistake for a finished run.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

from curriculum_rl.atomic import write_json_atomic
from curriculum_rl.typed_config import differing_settings

SETTINGS_KEY = "benchmark"
IDENTITY_KEY = "controller_identity"


def run_path(out: Path, suite: str, controller: str, seed: int) -> Path:
    return out / "runs" / suite / controller / f"seed{seed}.json"


def tb_dir(out: Path, suite: str, controller: str, seed: int) -> Path:
    return out / "tb" / suite / controller / f"seed{seed}"


def write_run(
    out: Path, suite: str, controller: str, seed: int, record: dict, tensorboard: bool
) -> None:
    """Store one finished run: its TensorBoard events (optional), then its JSON, last,
    because the JSON is what marks the run as done (:func:`load_done_run`)."""
    if tensorboard:  # imported here: tensorboard is slow to import, and optional
        from curriculum_rl.benchmark.tensorboard import write_run_events

        write_run_events(tb_dir(out, suite, controller, seed), record)
    write_json_atomic(run_path(out, suite, controller, seed), record)


def stored_gains(
    out: Path, required: Sequence[str] = ()
) -> dict[tuple[str, str], dict[int, float]]:
    """``{(controller, suite): {seed: G_m}}`` (final checkpoint) from ``out/results.csv``,
    for the scripts that compare a finished benchmark's runs pair by pair.

    Raises:
        ValueError: a controller of ``required`` has no runs there (naming those it has).
    """
    gains: dict[tuple[str, str], dict[int, float]] = {}
    with open(out / "results.csv", newline="") as file:
        for row in csv.DictReader(file):
            key = (row["controller"], row["suite"])
            gains.setdefault(key, {})[int(row["seed"])] = float(row["gain_final"])
    controllers = sorted({c for c, _ in gains})
    for name in required:
        if name not in controllers:
            raise ValueError(f"{out}: no runs of {name!r}; its controllers are {controllers}")
    return gains


def load_done_run(path: Path, settings: dict, identity: str | None = None) -> dict | None:
    """The stored run at ``path``, or ``None`` when it is missing or unreadable (redo it).

    Raises:
        ValueError: the run was made with other settings, or by a controller of another
            ``identity`` under the same label; mixing them in one folder would compare
            runs of different budgets or policies, so ask for a fresh ``--out``.
    """
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict):
        return None
    stored = record.get(SETTINGS_KEY)
    if stored != settings:
        raise ValueError(
            f"{path} was made with other settings ({_differences(stored, settings)}); resume "
            "with the same --budget, --interval and trainer, or give another --out"
        )
    made_by = record.get(IDENTITY_KEY)
    if identity is not None and made_by is not None and not _same_maker(made_by, identity):
        raise ValueError(
            f"{path} was made by {made_by}, but its label now names {identity}: the runs "
            "stored under that label are another controller's. Give another --out, or copy "
            "the policy under a new file name (its label is the file name)"
        )
    return record


def _same_maker(stored: str, current: str) -> bool:
    """Whether a run stored as made by ``stored`` is ``current``'s. Identities written
    before they named a policy's action transform (``policy sha256:<hex>`` alone) match
    any transform with those weights: like runs stored before identities, taken as stored."""
    return stored == current or current.startswith(f"{stored} action ")


def _differences(stored: object, current: dict) -> str:
    """``budget 1500 there, 300 here; trainer.lr ...``: only the settings that differ."""
    if not isinstance(stored, dict):
        return "no settings recorded there: not a run of this benchmark"
    parts = [
        f"{key} {there} there, {here} here"
        for key, there, here in differing_settings(stored, current)
    ]
    if "seeds" in stored:  # folders of curriculum-rl <= 0.1.0 batched seeds by their number
        parts.append("the folder predates batch-independent seeds: recompute it in a new --out")
    return "; ".join(parts)
