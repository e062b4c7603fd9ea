"""The database of a run that stays (run-all --for), followed when its path
comes to name another file: a restore or a deploy that moves a copy into
place (`mv new.db core.db`), a link pointed elsewhere, a file deleted and
written again.

A look is one os.stat of the path, compared with the (device, inode) of the
file open. When they differ, the run lets go of the replaced file and opens
the one the path names, once it is whole: a SQLite file as long as its
header says (a copy still being written is waited for). Until then the path
names no database the run can use, and the run says why.

Letting go of a WAL database: SQLite, closing a file that has moved, leaves
its -wal and -shm where they are, and there they now sit beside the new
file, which SQLite would read through them. So where they are still the
replaced file's and no other process has them open, the replaced file's WAL
is first checkpointed into it (its rows kept in it, wherever it went) and
emptied; where another process has them open, the run says so.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from maintctl.config.settings import ConfigError
from maintctl.store import openers
from maintctl.store.db import Connection, Locked, Stopped

RETRY = 1.0  # seconds at most between tries of a path that names no usable database, where nothing changes
_MAGIC = b"SQLite format 3\x00"


class Followed:
    def __init__(self, path: Path, opener: Callable[[], Connection]):
        """Given the database's path and how to open it, open it (raising as
        the opener does: ConfigError, Locked)."""
        self.path = path
        self._opener = opener
        self.connection: Connection | None = None
        self.problem: str | None = None  # why the path names no database the run can use (connection is None)
        self.warnings: list[str] = []
        self._file: tuple[int, int] | None = None  # (st_dev, st_ino) of the file open
        self._companions: dict[Path, tuple[int, int]] = {}  # the -wal and -shm it holds, of a WAL database
        self._tried: tuple | None = None  # the path's status when it was last tried, none being open
        self._tried_at = 0.0
        self._unusable_since = 0.0
        self._open()

    def moved(self) -> bool:
        """Return whether the path names another file than the one open (with
        none open: whether it has changed since it was last tried, or RETRY
        has passed). One os.stat."""
        status = _status(self.path)
        if self.connection is not None:
            return status is None or status[:2] != self._file
        return status != self._tried or time.monotonic() - self._tried_at >= RETRY

    def follow(self) -> bool:
        """Let go of the file open, if any, and open the one the path names,
        if it is whole and the app's database; return whether there is one."""
        if self.connection is not None:
            self._let_go()
            self._unusable_since = time.monotonic()
        self._tried, self._tried_at = _status(self.path), time.monotonic()
        problem = _not_whole(self.path)
        if problem is None:
            try:
                self._open()
            except (ConfigError, Locked) as error:
                problem = str(error)
            except Stopped as error:  # while the app held the new file: the window is over anyway
                problem = f"{self.path}: not opened, the run being {error}"
        if problem is not None:
            self.problem = problem
            return False
        if self.problem is not None:
            seconds, why = time.monotonic() - self._unusable_since, self.problem.removeprefix(f"{self.path}: ")
            self.warnings.append(
                f"{self.path} named no database to use for {seconds:.1f} s ({why});"
                " the window went on with the file there now (replace a database in one rename, such as mv)"
            )
            self.problem = None
        return True

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _open(self) -> None:
        """Open the database the path names, knowing which file that is: the
        path is looked at before and after, and opened again where it changed
        meanwhile."""
        for _ in range(3):
            before = _status(self.path)
            connection = self._opener()
            after = _status(self.path)
            if before is not None and before[:2] == (after or ())[:2]:
                try:
                    (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
                except sqlite3.Error as error:
                    connection.close()
                    raise Locked(f"{self.path}: {error}") from None
                self.connection, self._file = connection, before[:2]
                connection.moved = self.moved  # no transaction is begun on a file replaced (db.transaction)
                self._companions = _companions(self.path) if mode == "wal" else {}
                return
            connection.close()
        raise ConfigError(f"{self.path}: was replaced again and again while it was opened")

    def _let_go(self) -> None:
        """Close the replaced file's connection; a WAL database's -wal, still
        the replaced file's and used by no other process, emptied first."""
        replaced, self.connection = self.connection, None
        try:
            if self._companions and all(_same(path, file) for path, file in self._companions.items()):
                self._empty_wal(replaced)
        finally:
            replaced.close()

    def _empty_wal(self, replaced: Connection) -> None:
        shm = self.path.with_name(self.path.name + "-shm")
        others = sorted({lock.pid for lock, _ in openers.locks_on([shm]) if lock.pid != os.getpid()})
        if others:
            self.warnings.append(
                f"{self.path} was replaced while {', '.join(f'pid {pid}' for pid in others)} still had the replaced"
                " file's -wal and -shm open, which SQLite reads as the new file's: stop every process that has a WAL"
                " database open before replacing it"
            )
            return
        try:
            replaced.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as error:
            self.warnings.append(f"{self.path}: the replaced file's -wal could not be emptied ({error})")


def _status(path: Path) -> tuple[int, int, int, int] | None:
    """Given a path, return what says which file it names and whether it changed: device, inode, size, mtime."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns


def _same(path: Path, file: tuple[int, int]) -> bool:
    status = _status(path)
    return status is not None and status[:2] == file


def _companions(path: Path) -> dict[Path, tuple[int, int]]:
    found = {}
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if (status := _status(companion)) is not None:
            found[companion] = status[:2]
    return found


def _not_whole(path: Path) -> str | None:
    """Given the path, return why it names no file to open yet: nothing
    there, or a SQLite file shorter than its header says (a copy still being
    written); None to open it (the opener judges the rest). Read before the
    file is opened by SQLite: closing a descriptor of a file drops every
    POSIX lock the process holds on it, SQLite's included."""
    try:
        with open(path, "rb") as file:
            header, size = file.read(100), os.fstat(file.fileno()).st_size
    except FileNotFoundError:
        return f"{path}: nothing there"
    except OSError as error:
        return f"{path}: cannot be read ({error.strerror})"
    if 0 < len(header) < 100 and _MAGIC.startswith(header[:16]):
        return f"{path}: a SQLite file still being written ({size:,} bytes so far)"
    if len(header) == 100 and header[:16] == _MAGIC and header[92:96] == header[24:28]:
        page_size = int.from_bytes(header[16:18], "big")
        expected = int.from_bytes(header[28:32], "big") * (65536 if page_size == 1 else page_size)
        if size < expected:
            return f"{path}: a SQLite file still being written ({size:,} of {expected:,} bytes)"
    return None
