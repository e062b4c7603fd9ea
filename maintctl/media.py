"""Media files of expired uploads: deleted only inside the media directory.

A memory's file is queued for deletion in the transaction that expires the
memory, and deleted after that commits: a file is never deleted for a memory
that did not expire, and a run killed in between leaves the deletion queued
for the next run rather than a file behind for ever.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
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


def queue(connection: sqlite3.Connection, files: Iterable[tuple[str, str]], settings: Settings) -> None:
    """Given (memory_id, file) pairs of memories just expired, the files as
    MediaDirectory.locate named them, queue them for deletion (inside the
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

    Each file was named when it was queued: its directory resolved, links
    followed, its last component as it is (a link is unlinked as a link).
    What could since have changed is a directory on the way: each directory
    is checked again (once per batch) to be inside the media directory and
    free of links."""
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
