"""Atomic writes and folder locks (curriculum_rl.atomic): a writer killed mid-write leaves
the old file intact, and so do the files built on them (policy artifacts)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from curriculum_rl import atomic
from curriculum_rl.atomic import (
    FolderBusyError,
    atomic_path,
    folder_lock,
    write_bytes_atomic,
    write_json_atomic,
    write_png_atomic,
)
from curriculum_rl.controllers.actions import DEFAULT_TRANSFORM
from curriculum_rl.controllers.learned.artifact import load_artifact, save_artifact
from curriculum_rl.controllers.learned.network import NetworkConfig, TaskSetActor, init_weights

# Rewrites one 8 MB file as fast as it can, each version one repeated byte (a torn file
# would mix two bytes); prints "go" once the first version is in place.
WRITER = textwrap.dedent(
    """
    import sys
    from curriculum_rl.atomic import write_bytes_atomic
    path, size = sys.argv[1], 8 << 20
    write_bytes_atomic(path, bytes([0]) * size)
    print("go", flush=True)
    version = 1
    while True:
        write_bytes_atomic(path, bytes([version % 256]) * size)
        version += 1
    """
)


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".tmp" in p.name]


def test_a_writer_killed_mid_write_leaves_a_whole_file(tmp_path):
    """A plain ``write_bytes`` loop killed this way leaves a torn file most of the time
    (3 kills of 5, measured); three kills make a non-atomic writer fail this test."""
    target = tmp_path / "results.bin"
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout.readline().strip() == "go"
            time.sleep(0.3)  # many rewrites in: the kill lands inside one
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        data = target.read_bytes()
        assert len(data) == 8 << 20 and data == data[:1] * len(data)  # one whole version


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "run.json"
    write_json_atomic(target, {"version": 1})

    class Unserialisable:
        pass

    with pytest.raises(TypeError):
        write_json_atomic(target, {"version": Unserialisable()})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text('{"version": 2, "half')  # the writer dies midway
        raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"version": 1}
    assert not _leftovers(tmp_path)


def test_the_temporary_file_keeps_the_suffix(tmp_path):
    with atomic_path(tmp_path / "last.zip") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".zip")
        tmp.write_bytes(b"zip")
    assert (tmp_path / "last.zip").read_bytes() == b"zip" and not _leftovers(tmp_path)


def test_a_redrawn_figure_replaces_its_file_not_a_hard_linked_copy(tmp_path):
    """Benchmark folders are copied with hard links to resume or profile them; redrawing
    a plot in the copy must not rewrite the original through the shared inode."""
    from matplotlib.figure import Figure

    original = tmp_path / "original" / "gain.png"
    write_bytes_atomic(original, b"the original plot")
    copy = tmp_path / "copy" / "gain.png"
    copy.parent.mkdir()
    os.link(original, copy)
    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    assert write_png_atomic(copy, fig) == copy
    assert original.read_bytes() == b"the original plot"
    assert copy.read_bytes().startswith(b"\x89PNG") and not _leftovers(copy.parent)


def _actor(seed: int) -> TaskSetActor:
    torch.manual_seed(seed)
    actor = TaskSetActor(NetworkConfig(hidden=16))
    init_weights(actor)
    return actor


def test_an_interrupted_policy_save_leaves_the_old_pair_loadable(tmp_path, monkeypatch):
    path = tmp_path / "policy"
    save_artifact(path, _actor(0), max_tasks=8, action=DEFAULT_TRANSFORM)
    before = load_artifact(path).actor.state_dict()

    def crash(_: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic, "_fsync", crash)  # fails after the bytes, before the rename
    with pytest.raises(OSError, match="disk full"):
        save_artifact(path, _actor(1), max_tasks=8, action=DEFAULT_TRANSFORM)
    monkeypatch.undo()
    after = load_artifact(path).actor.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not _leftovers(tmp_path)


def test_a_folder_has_one_holder_and_a_killed_one_frees_it(tmp_path):
    folder = tmp_path / "out"
    busy = r"in use by another `curriculum-rl benchmark`"
    with (
        folder_lock(folder, "curriculum-rl benchmark"),
        pytest.raises(FolderBusyError, match=busy),
        folder_lock(folder, "curriculum-rl benchmark"),
    ):
        pass
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from curriculum_rl.atomic import folder_lock\n"
            "with folder_lock(sys.argv[1], 'x'):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(600)\n",
            str(folder),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusyError, match=f"pid {holder.pid}"), folder_lock(folder, "x"):
            pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=60)
    with folder_lock(folder, "x"):  # no stale lock after kill -9
        pass


def test_bytes_round_trip(tmp_path):
    write_bytes_atomic(tmp_path / "a" / "b.bin", b"\x00\x01")
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"\x00\x01"
