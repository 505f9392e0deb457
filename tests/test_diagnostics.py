"""Diagnostics: negative-transfer flags, the cosine image, the TensorBoard tags every
integration writes, the benchmark's event files and the `run --out` figure."""

from __future__ import annotations

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from curriculum_rl.diagnostics import (
    DecisionLog,
    cosine_image,
    diagnostics_figure,
    negative_transfer_flags,
    write_record,
)


class RecordingWriter:
    def __init__(self) -> None:
        self.scalars: dict[str, list[tuple[int, float]]] = {}
        self.images: dict[str, list[tuple[int, tuple]]] = {}

    def add_scalar(self, tag, value, global_step):
        self.scalars.setdefault(tag, []).append((global_step, value))

    def add_image(self, tag, img, global_step, dataformats):
        assert dataformats == "HWC" and img.dtype == np.uint8
        self.images.setdefault(tag, []).append((global_step, img.shape))


def record(decisions: int = 8) -> dict:
    """A run record (RunRecord.to_dict() layout): task b's val loss rises from decision 3
    on while the others fall; task c's gradient opposes the update from decision 2 on."""
    val = np.ones((decisions, 3))
    val[:, 0] = val[:, 2] = 0.9 ** np.arange(decisions)
    val[3:, 1] = 1.1 ** np.arange(1, decisions - 2)
    cos_update = np.full((decisions, 3), 0.5)
    cos_update[2:, 2] = -0.3
    return {
        "tasks": ["a", "b", "c"],
        "steps": [25 * i for i in range(decisions)],
        "val_loss_curve": val.tolist(),
        "train_loss_curve": (val * 0.8).tolist(),
        "weights": [[1.0, 1.5, 0.5]] * decisions,
        "sampling": [[0.2, 0.3, 0.5]] * decisions,
        "grad_cos": [np.eye(3).tolist()] * decisions,
        "cos_update": cos_update.tolist(),
    }


def test_flags_need_patience_decisions_in_a_row():
    run = record()
    flags = negative_transfer_flags(run["val_loss_curve"], run["cos_update"], patience=3)
    assert flags["val_rise"][:, 1].tolist() == [False] * 5 + [True] * 3  # rises at 3, 4, 5
    assert not flags["val_rise"][:, [0, 2]].any()
    assert flags["conflict"][:, 2].tolist() == [False] * 4 + [True] * 4  # negative from 2
    assert not flags["conflict"][:, :2].any()
    # one task alone cannot rise "while others train"; missing values flag nothing
    assert not negative_transfer_flags([[1.0], [2.0], [3.0], [4.0]], patience=1)["val_rise"].any()
    assert not negative_transfer_flags([[None, 1.0]] * 5, patience=1)["val_rise"].any()


def test_cosine_image_colours():
    image = cosine_image([[1.0, -1.0], [0.0, float("nan")]], cell=2)
    assert image.shape == (4, 4, 3)
    assert image[0, 0].tolist() == [255, 0, 0]  # aligned: red
    assert image[0, 3].tolist() == [0, 0, 255]  # conflicting: blue
    assert image[3, 0].tolist() == image[3, 3].tolist() == [255, 255, 255]  # none / unknown


def test_decision_log_writes_every_tag():
    writer, run = RecordingWriter(), record()
    write_record(writer, run, prefix="curriculum/")
    for name in ("weight", "sampling", "val_loss", "train_loss"):
        for task in run["tasks"]:
            assert len(writer.scalars[f"curriculum/{name}/{task}"]) == 8
    rise = writer.scalars["curriculum/negative_transfer/val_rise/b"]
    assert [v for _, v in rise] == [0.0] * 5 + [1.0] * 3
    assert "curriculum/normalisation" not in writer.scalars  # a record made before it
    normalised, run["normalisation"] = RecordingWriter(), [0.0] * 4 + [0.5] * 4
    write_record(normalised, run, prefix="curriculum/")
    assert normalised.scalars["curriculum/normalisation"][3:5] == [(75, 0.0), (100, 0.5)]
    assert "curriculum/scale" not in writer.scalars
    scaled, run["scale"] = RecordingWriter(), [1.0] * 6 + [0.25] * 2
    write_record(scaled, run, prefix="curriculum/")
    assert scaled.scalars["curriculum/scale"][5:7] == [(125, 1.0), (150, 0.25)]
    assert writer.images["curriculum/grad_cos"][0] == (0, (36, 36, 3))
    log = DecisionLog(RecordingWriter(), ["a", "b"])
    flags = log.write(0, weights=[1, 1], sampling=[0.5, 0.5], val_loss=[1.0, 2.0])
    assert set(flags) == {"val_rise"}  # no cosines given: no conflict flag


def test_benchmark_event_files_hold_the_diagnostics(tmp_path):
    from curriculum_rl.benchmark.tensorboard import write_run_events

    run = {**record(), "j_curve": [0.0] * 8, "final_test_j": 0.1, "best_test_j": None}
    write_run_events(tmp_path / "tb", run)
    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    assert "grad_cos" in events.Tags()["images"]
    scalars = events.Tags()["scalars"]
    assert {"J/val", "weight/a", "negative_transfer/conflict/c", "train_loss/b"} <= set(scalars)


def test_figure_of_a_run(tmp_path):
    fig = diagnostics_figure(record())
    assert len(fig.axes) >= 6
    fig.savefig(tmp_path / "d.png")
    older = {k: v for k, v in record().items() if k not in ("grad_cos", "cos_update")}
    diagnostics_figure(older)  # records from before the cosines were kept still draw


def test_the_figure_draws_the_loss_normalisation_only_where_a_decision_used_it():
    def alpha_lines(rec):
        fig = diagnostics_figure(rec)
        return [
            line.get_ydata().tolist()
            for ax in fig.axes
            for line in ax.get_lines()
            if line.get_label() == "alpha"
        ]

    alpha = [0.0, 0.0, 0.5, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert alpha_lines({**record(), "normalisation": alpha}) == [alpha]
    assert alpha_lines({**record(), "normalisation": [0.0] * 8}) == []
    assert alpha_lines(record()) == []


def test_the_weight_panel_shows_the_weights_the_objective_applied():
    def weight_panel(rec):
        fig = diagnostics_figure(rec)
        (ax,) = [ax for ax in fig.axes if ax.get_title().startswith("loss weight")]
        return ax.get_title(), [line.get_ydata().tolist() for line in ax.get_lines()]

    title, lines = weight_panel(record(4))
    assert title == "loss weight" and lines[1] == [1.5] * 4
    assert weight_panel({**record(4), "scale": [1.0] * 4}) == (title, lines)
    title, lines = weight_panel({**record(4), "scale": [1.0, 1.0, 0.5, 0.5]})
    assert title == "loss weight x objective scale"
    assert lines[1] == [1.5, 1.5, 0.75, 0.75]  # task b's weight, halved with the scale


@pytest.mark.slow
def test_run_out_writes_the_diagnostics_png(tmp_path):
    from curriculum_rl.cli import main

    args = ["run", "--suite", "synthetic", "--controller", "dwa", "--budget", "60"]
    assert (
        main([*args, "--interval", "10", "--no-reference", "--quiet", "--out", str(tmp_path)]) == 0
    )
    assert (tmp_path / "diagnostics.png").stat().st_size > 10_000
