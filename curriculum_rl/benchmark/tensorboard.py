"""TensorBoard logs of one run: J and the diagnostics of :mod:`curriculum_rl.diagnostics`
per decision (x axis: inner steps), plus the final test J at both checkpoints."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from curriculum_rl.diagnostics import write_record


def write_run_events(log_dir: Path, record: dict) -> None:
    """Log ``record`` (a ``RunRecord.to_dict()``) under ``log_dir``, replacing old logs.

    Old events are removed first: a run interrupted after logging but before its JSON was
    written is redone, and its curves must not appear twice.
    """
    shutil.rmtree(log_dir, ignore_errors=True)
    writer = SummaryWriter(log_dir=str(log_dir))
    try:
        for i, step in enumerate(record["steps"]):
            _scalar(writer, "J/val", record["j_curve"][i], step)
        write_record(writer, record)  # per task: weights, sampling, losses, flags, cosines
        last = record["steps"][-1] if record["steps"] else 0
        _scalar(writer, "J/test_final", record["final_test_j"], last)
        _scalar(writer, "J/test_best_val_checkpoint", record["best_test_j"], last)
    finally:
        writer.close()


def _scalar(writer: SummaryWriter, tag: str, value: float | None, step: int) -> None:
    # Records store non-finite numbers as null (JSON); TensorBoard shows NaN as a gap.
    writer.add_scalar(tag, math.nan if value is None else float(value), int(step))
