"""Media files of expired uploads: deleted only inside the media directory.

A memory's file is queued for deletion in the transaction that expires the
memory, and deleted after that commits: a file is never deleted for a memory
that did not expire, and a run killed in between leaves the deletion queued
for the next run rather than a file behind for ever.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from maintctl import timestamps
from maintctl.config import Settings
from maintctl.db import table_exists, transaction

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS maintctl_media_deletions (
    id INTEGER PRIMARY KEY,
    memory_id TEXT NOT NULL,
    path TEXT NOT NULL,
    queued_at TEXT NOT NULL
)"""


class Located(NamedTuple):
    """Where a stored media path leads: the file that may be deleted, or why none may."""

    file: str | None
    problem: str | None = None


class MediaDirectory:
    """The media directory, resolved once, with the directories under it
    resolved once each (a batch's files mostly share a few directories)."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.root = os.path.realpath(path)
        self._resolved: dict[str, str] = {}

    def locate(self, stored: str | None) -> Located:
        """Given a memory's media_local_path (relative paths are taken from the
        media directory), return the file it resolves to, links followed,
        where that is a regular file inside the media directory; otherwise no
        file and, where the path leads somewhere it must not, the problem."""
        if not stored:
            return Located(None)
        if not isinstance(stored, str):
            return Located(None, f"media path {stored!r} is not text; left alone")
        try:
            real, status = self._resolve(os.path.join(self.path, stored))  # an absolute stored path stays as it is
        except (ValueError, OSError) as error:
            return Located(None, f"media path {stored!r} cannot be used ({error}); left alone")
        if not real.startswith(self.root + os.sep):
            return Located(None, f"media file {stored!r} is outside the media directory {self.path}; left alone")
        if status is None:
            return Located(None)  # already gone
        if not stat.S_ISREG(status.st_mode):
            return Located(None, f"media path {stored!r} is not a regular file; left alone")
        return Located(real)

    def _resolve(self, candidate: str) -> tuple[str, os.stat_result | None]:
        """Return the real path of candidate and the status of what is there
        (None where nothing is), following links as realpath does."""
        parent, name = os.path.split(candidate)
        if name in ("", ".", ".."):
            real = os.path.realpath(candidate)
            return real, _status(real)
        if parent not in self._resolved:
            self._resolved[parent] = os.path.realpath(parent)
        joined = os.path.join(self._resolved[parent], name)
        status = _status(joined, follow=False)
        if status is not None and stat.S_ISLNK(status.st_mode):
            real = os.path.realpath(joined)
            return real, _status(real)
        return joined, status


def _status(path: str, follow: bool = True) -> os.stat_result | None:
    try:
        return os.stat(path, follow_symlinks=follow)
    except FileNotFoundError:
        return None


def queue(connection: sqlite3.Connection, files: Iterable[tuple[str, str]], settings: Settings) -> None:
    """Given (memory_id, file) pairs of memories just expired, the files as
    MediaDirectory.locate resolved them, queue them for deletion (inside the
    caller's transaction)."""
    queued_at = timestamps.format_instant(settings.now)
    connection.executemany(
        "INSERT INTO maintctl_media_deletions (memory_id, path, queued_at) VALUES (?, ?, ?)",
        ((memory_id, path, queued_at) for memory_id, path in files),
    )


class Deleted(NamedTuple):
    deleted: int
    warnings: list[str]


def delete_queued(connection: sqlite3.Connection, settings: Settings) -> Deleted:
    """Delete the queued files and clear them from the queue; return how many
    were deleted and what was not.

    Each file was resolved, links followed, when it was queued. Unlinking
    never follows the last component of a path, so what could since have
    changed is a directory on the way: each directory is checked again (once
    per batch) to be inside the media directory and free of links."""
    deleted, warnings = 0, []
    if not table_exists(connection, "maintctl_media_deletions"):
        return Deleted(0, [])
    root = os.path.realpath(settings.media_dir) + os.sep
    while connection.may_go_on() and (
        batch := connection.execute(
            "SELECT id, memory_id, path FROM maintctl_media_deletions ORDER BY id LIMIT ?", (settings.batch_size,)
        ).fetchall()
    ):
        trusted: dict[str, bool] = {}
        for _, memory_id, path in batch:
            directory = os.path.dirname(path)
            if directory not in trusted:
                trusted[directory] = (directory + os.sep).startswith(root) and os.path.realpath(directory) == directory
            if not trusted[directory]:
                warnings.append(f"memory {memory_id}: media file {path!r} left alone: its directory changed")
                continue
            try:
                os.unlink(path)
                deleted += 1
            except FileNotFoundError:
                pass
            except OSError as error:
                warnings.append(f"memory {memory_id}: media file {path!r} could not be deleted ({error.strerror})")
        with transaction(connection):
            connection.executemany(
                "DELETE FROM maintctl_media_deletions WHERE id = ?", ((row_id,) for row_id, _, _ in batch)
            )
    return Deleted(deleted, warnings)
