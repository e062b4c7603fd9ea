"""Files that maintctl writes beside the database or its backups: created
with no more permission than what they copy (whatever the umask), synced to
disk before they count, removed whole, named by the UTC time with every year
in four digits; and the lock that runs writing into one directory share."""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Self

from maintctl import timestamps


def permissions(path: Path) -> int:
    """Given a file, return its permission bits (such as 0o640)."""
    return stat.S_IMODE(path.stat().st_mode) & 0o777


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISLNK, "a symbolic link"),
)


def kind(mode: int) -> str:
    """Given a file's mode (st_mode), return what kind of file it is, in words ("a named pipe")."""
    return next((name for test, name in _KINDS if test(mode)), "a regular file" if stat.S_ISREG(mode) else "a file")


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


def printable(path: Path | str) -> str:
    """Given a path, return it as messages name it: bytes of it that are not
    UTF-8 as \\x escapes, so that the message can be printed and stored."""
    return os.fsencode(path).decode(errors="backslashreplace")


def stamp(instant: datetime) -> str:
    """Given an instant, return its UTC time as file names carry it, such as
    20261122T093000Z: every year in four digits (0999, not 999), so that the
    names sort as the times do."""
    return timestamps.format_instant(instant)[:19].replace("-", "").replace(":", "") + "Z"


class LockTimeout(Exception):
    """A run held a shared lock exclusively for longer than the wait allowed."""


class SharedLock:
    """A lock file that the runs writing one kind of file into a directory
    share, whichever host they run on: each holds it shared while it writes,
    and what a run may only do alone (remove what a killed run left, delete
    old files) it does while holding it exclusively, which it gets only where
    no other run holds it at all. It is flock's: the kernel drops it however
    a run ends, and NFS takes it to the other hosts. Where the filesystem
    keeps no locks, every run counts as alone."""

    def __init__(self, path: Path, mode: int):
        """Given the lock file (created with the permission bits mode where
        missing), open it; nothing is held yet."""
        self.path = path
        try:
            self.descriptor: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
        except OSError:  # not ours to open (another user's), say: the run goes on as though alone
            self.descriptor = None

    def alone(self) -> bool:
        """Give up what is held and try to hold it exclusively; return
        whether that worked (no other run holds it)."""
        if self.descriptor is None:
            return True
        try:
            fcntl.flock(self.descriptor, fcntl.LOCK_UN)
            fcntl.flock(self.descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError:  # no locks on this filesystem
            self._close()
            return True
        return True

    def share(self, wait: float, may_go_on: Callable[[], object]) -> None:
        """Given how long to wait for a run that holds it exclusively, and
        what raises where the run must stop waiting, hold it shared; raise
        LockTimeout past the wait."""
        deadline = time.monotonic() + wait
        while self.descriptor is not None:
            try:
                fcntl.flock(self.descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                may_go_on()
                if time.monotonic() >= deadline:
                    raise LockTimeout(f"{self.path}: another run held it alone for {wait:g} s") from None
                time.sleep(0.05)
            except OSError:  # no locks on this filesystem
                self._close()

    def _close(self) -> None:
        if self.descriptor is not None:
            os.close(self.descriptor)  # releases what is held
            self.descriptor = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exception: object) -> None:
        self._close()
