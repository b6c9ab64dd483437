"""Atomic file writes: a temp file beside the target, renamed into place, so no reader ever sees half a file;
sets of files that appear together or not at all; and new folders that appear whole."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _default_mode() -> int:
    """The permissions a plain ``open(path, "w")`` would give under the current umask."""
    return 0o666 & ~_umask()


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Calls ``write(tmp_path)`` and renames the result to ``path``; on any error the target is untouched.

    ``tempfile`` creates files readable by their owner only; the result gets ordinary permissions instead.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_set(writes: list[tuple[Path, Callable[[str], None]]]) -> list[Path]:
    """Writes several files so that they appear together or not at all.

    Each ``write(tmp_path)`` runs into a hidden folder beside the targets; only when every one has succeeded
    are the files renamed into place (renames within a folder are quick and cannot fail half-way through a
    file). On any error, or Ctrl-C, the hidden folder is removed and no target is touched.
    """
    if not writes:
        return []
    parents = {Path(path).parent for path, _ in writes}
    if len(parents) != 1:
        raise ValueError("atomic_write_set writes into one folder")
    parent = parents.pop()
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pixelcore-", dir=parent) as staging:
        staged = []
        for path, write in writes:
            tmp = os.path.join(staging, Path(path).name)
            write(tmp)
            os.chmod(tmp, _default_mode())
            staged.append((tmp, Path(path)))
        for tmp, path in staged:
            os.replace(tmp, path)
    return [path for _, path in staged]


def atomic_new_folder(path: str | Path, files: dict[str, bytes]) -> Path:
    """Creates the folder ``path`` holding ``files`` (relative POSIX path -> content), all at once: they are
    written into a hidden folder beside it, which is renamed into place. ``path`` must not exist, or be an
    empty folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        for rel, data in files.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).write_bytes(data)
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it owner-only; a plain mkdir would not
        if path.exists():
            path.rmdir()  # empty, or this refuses
        staging.rename(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
