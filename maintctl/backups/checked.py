"""The checked copy every destination gets: a consistent online copy of the
database taken with SQLite's backup API while the app goes on writing, and
checked with PRAGMA integrity_check before it counts."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from maintctl.store.db import ActionError, Connection, integrity_problems


class BackupFailed(ActionError):
    """The copy could not be made or did not check out; older backups are untouched."""


def copy_database(connection: Connection, partial: Path) -> None:
    """Given a file (created empty, with the database file's bits), copy the
    database into it and check the copy; raise BackupFailed where it cannot
    be made or does not check out."""
    copy = sqlite3.connect(partial)
    deadline = time.monotonic() + connection.busy_timeout

    def waiting(status: int, remaining: int, pages: int) -> None:
        # Called between tries while the app holds a lock that keeps the
        # copy from starting: hear SIGTERM, give up at the busy timeout.
        if status in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            connection.may_go_on()
            if time.monotonic() >= deadline:
                raise BackupFailed(
                    f"database is locked: another process kept the copy from starting for"
                    f" {connection.busy_timeout:g} s (MAINTCTL_BUSY_TIMEOUT)"
                )

    try:
        # One step: a copy taken in several would begin again each time the
        # app writes meanwhile, and might never end.
        connection.backup(copy, progress=waiting, sleep=0.05)
        problems_found = integrity_problems(copy)
    finally:
        copy.close()
    if problems_found:
        raise BackupFailed(f"the copy failed PRAGMA integrity_check: {'; '.join(problems_found[:3])}")
