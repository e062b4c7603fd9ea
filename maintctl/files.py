"""Files that maintctl writes beside the database or its backups: created
with no more permission than what they copy (whatever the umask), synced to
disk before they count, removed whole, named by the UTC time with every year
in four digits."""

from __future__ import annotations

import os
import shutil
import stat
from datetime import datetime
from pathlib import Path

from maintctl import timestamps


def permissions(path: Path) -> int:
    """Given a file, return its permission bits (such as 0o640)."""
    return stat.S_IMODE(path.stat().st_mode) & 0o777


def create_private(path: Path, mode: int) -> None:
    """Given a path that must not exist yet and permission bits, create an
    empty file there with exactly those bits (the umask can only have made
    them narrower; chmod sets them whole). SQLite, writing a database into
    it, gives its journal the same bits."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(descriptor, mode)
    finally:
        os.close(descriptor)


def sync(path: Path) -> None:
    """Given a file or directory, flush it to disk (a directory: the names in it)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def discard(path: Path) -> None:
    """Given a path, remove what is there (a directory with all in it); nothing there is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def stamp(instant: datetime) -> str:
    """Given an instant, return its UTC time as file names carry it, such as
    20261122T093000Z: every year in four digits (0999, not 999), so that the
    names sort as the times do."""
    return timestamps.format_instant(instant)[:19].replace("-", "").replace(":", "") + "Z"
