"""The run folder: where each run's JSON lives, atomic writes, and what counts as done.

A run is done when ``runs/<suite>/<controller>/seed<k>.json`` exists, parses and was
produced with the same settings (seeds, budget, interval, trainer). Files are written to a
temporary name and renamed, so an interrupted benchmark never leaves a half-written JSON
that a restart would mistake for a finished run.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

SETTINGS_KEY = "benchmark"


def run_path(out: Path, suite: str, controller: str, seed: int) -> Path:
    return out / "runs" / suite / controller / f"seed{seed}.json"


def tb_dir(out: Path, suite: str, controller: str, seed: int) -> Path:
    return out / "tb" / suite / controller / f"seed{seed}"


def write_json_atomic(path: Path, obj: dict) -> None:
    """Write ``obj`` as JSON to ``path`` via a temporary file in the same folder + rename
    (rename is atomic on one file system, so readers see the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_done_run(path: Path, settings: dict) -> dict | None:
    """The stored run at ``path``, or ``None`` when it is missing or unreadable (redo it).

    Raises:
        ValueError: the run was made with other settings; mixing them in one folder
            would compare runs of different budgets, so ask for a fresh ``--out``.
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
            f"{path} was produced with settings {stored}, but this benchmark uses {settings}; "
            "use another --out folder (or delete that one)"
        )
    return record
