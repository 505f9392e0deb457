"""Safe files: atomic writes (a reader, or a rerun after a crash, sees the old file or the
new one, never half of one) and folder locks (one writer per output folder).

Every file that a later command reads back (benchmark runs and tables, training configs
and checkpoints, policy files) is written to a temporary file in the same folder, flushed
to disk, then renamed over its target: ``os.replace`` is atomic within one file system, so
killing the writer at any moment (Ctrl-C, ``kill -9``, an out-of-memory kill) leaves the
previous version intact, plus at worst a hidden ``.NAME.*.tmp*`` file.

Two commands writing one folder at once would still interleave their files (and one would
delete the other's temporary files from under it): :func:`folder_lock` makes the second
one stop at once with a clear error. A stdlib leaf: every layer may use it.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

LOCK_NAME = ".lock"


class FolderBusyError(ValueError):
    """Another process holds the folder's lock."""


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that needs a file name (a zip,
    a figure); on a normal exit it replaces ``path``, on an exception it is removed.

    The temporary name keeps ``path``'s suffix, so writers that pick a format from the
    suffix (``savefig``, SB3's ``save``) write the same format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}"
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see the module docstring)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, obj: Any, **dumps: Any) -> None:
    """Replace ``path`` with ``obj`` as JSON atomically; ``dumps`` go to ``json.dumps``
    (``indent=1`` unless given). The text is built first, so an object that cannot be
    serialised never touches the file."""
    write_text_atomic(path, json.dumps(obj, **{"indent": 1, **dumps}))


def write_png_atomic(path: str | Path, figure: Any) -> Path:
    """Replace ``path`` with a matplotlib ``figure`` as a PNG atomically; return ``path``.
    Drawn on the Agg canvas directly: no ``pyplot``, so the process's backend is left
    alone (and ``figure.savefig`` took a quarter longer on the benchmark's figures)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # only figure writers need it

    with atomic_path(path) as tmp:
        FigureCanvasAgg(figure).print_png(tmp)
    return Path(path)


def _fsync(path: Path) -> None:
    """Flush the file's data to disk before the rename publishes it, so that after a
    power loss the new name never points at missing data."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def folder_lock(folder: str | Path, command: str) -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if missing) while the block runs.

    The lock is the operating system's (``flock``; ``msvcrt.locking`` on Windows) on
    ``folder/.lock``, so it is released when the holder exits, even by ``kill -9``: a
    crashed command never leaves a stale lock behind.

    Raises:
        FolderBusyError: another process holds it; the message names ``command`` and
            that process and says what to do.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / LOCK_NAME).open("a+") as handle:
        try:
            _lock(handle)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise FolderBusyError(
                f"{folder} is in use by another `{command}` ({holder}); wait for it to finish, "
                "or give another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield folder


def _lock(handle: IO[str]) -> None:
    """Take the lock without waiting; ``OSError`` when another process holds it."""
    handle.seek(0)  # msvcrt locks bytes from the current position
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def json_ready(obj):
    """``obj`` with every non-finite float replaced by ``None`` (strict JSON has no
    NaN or Infinity; ``null`` then reads "not finite: failed runs dominate")."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    return obj
