"""Media files of expired uploads: deleted only inside the media directory.

A memory's file is queued for deletion in the transaction that expires the
memory, and deleted after that commits, unless another memory still uses it:
a file is never deleted for a memory that did not expire, nor while a memory
that stays uses it, and a run killed in between leaves the deletion queued
for the next run rather than a file behind for ever.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from typing import NamedTuple

from maintctl import timestamps
from maintctl.config.settings import Settings
from maintctl.media import users as media_users
from maintctl.media.paths import MediaDirectory
from maintctl.store.db import table_exists, transaction
from maintctl.utf8 import readable_sql

# path: the file's name as the filesystem has it, as bytes (a BLOB), so that
# a name that is not UTF-8 is kept whole; earlier versions wrote text.
TABLE_SQL = """
CREATE TABLE IF NOT EXISTS maintctl_media_deletions (
    id INTEGER PRIMARY KEY,
    memory_id TEXT NOT NULL,
    path TEXT NOT NULL,
    queued_at TEXT NOT NULL
)"""

# Queued files checked for users in one query, right before they are unlinked: a
# memory the app stores meanwhile is missed only while so many are unlinked (some
# milliseconds), and the query costs little beside the unlinking.
_CHECKED_AT_ONCE = 200


def queue(connection: sqlite3.Connection, files: Iterable[tuple[str, str]], settings: Settings) -> None:
    """Given (memory_id, file) pairs of memories just expired, the files as
    MediaDirectory.locate named them, queue them for deletion (inside the
    caller's transaction)."""
    queued_at = timestamps.format_instant(settings.now)
    connection.executemany(
        "INSERT INTO maintctl_media_deletions (memory_id, path, queued_at) VALUES (?, ?, ?)",
        ((memory_id, os.fsencode(path), queued_at) for memory_id, path in files),
    )


class Deleted(NamedTuple):
    deleted: int
    warnings: list[str]


def delete_queued(connection: sqlite3.Connection, settings: Settings) -> Deleted:
    """Delete the queued files that no memory uses any more and clear them
    from the queue; return how many were deleted and what was left alone.

    Each file was named when it was queued: its directory resolved, links
    followed, its last component as it is (a link is unlinked as a link).
    What could since have changed is a directory on the way: each is checked
    again (once per batch) to be inside the media directory and free of
    links. And the app may since have stored a memory that uses the file:
    the files are checked again for users right before they are unlinked,
    _CHECKED_AT_ONCE at a time (the media directory's links are looked for
    once, at the first check)."""
    deleted, warnings = 0, []
    if not table_exists(connection, "maintctl_media_deletions"):
        return Deleted(0, [])
    directory = MediaDirectory(settings.media_dir)
    # Without init-db's index each check reads the memories table: then once a batch.
    at_once = _CHECKED_AT_ONCE if media_users.indexed(connection) else settings.batch_size
    while connection.may_go_on() and (batch := _queued(connection, settings.batch_size)):
        trusted = _trusted(directory, {path for _, _, path in batch})
        for start in range(0, len(batch), at_once):
            deleted += _delete(connection, directory, batch[start : start + at_once], trusted, warnings)
        with transaction(connection):
            connection.executemany(
                "DELETE FROM maintctl_media_deletions WHERE id = ?", ((row_id,) for row_id, _, _ in batch)
            )
    return Deleted(deleted, warnings)


def _queued(connection: sqlite3.Connection, limit: int) -> list[tuple[int, str | bytes, str]]:
    """Given how many, return the first queued deletions: (id, memory id,
    file), the file as Python names it (bytes that are not UTF-8 held as
    os.fsdecode holds them), whether it was queued as bytes or as text."""
    return [
        (row_id, memory_id, os.fsdecode(path))
        for row_id, memory_id, path in connection.execute(
            f"SELECT id, {readable_sql('memory_id')}, CAST(path AS BLOB) FROM maintctl_media_deletions"
            " ORDER BY id LIMIT ?",
            (limit,),
        )
    ]


def _delete(
    connection: sqlite3.Connection,
    directory: MediaDirectory,
    queued: list[tuple[int, str | bytes, str]],
    trusted: set[str],
    warnings: list[str],
) -> int:
    """Given queued deletions and the files whose directories are trusted,
    check those files for users and unlink the rest at once; return how many
    were deleted (and add what was left alone, and why, to warnings)."""
    in_use = media_users.kept(connection, directory, {path for _, _, path in queued if path in trusted})
    deleted = 0
    for _, memory_id, path in queued:
        if path not in trusted:
            warnings.append(f"memory {memory_id}: media file {path!r} left alone: its directory changed")
        elif path in in_use:
            warnings.append(f"memory {memory_id}: {in_use[path]}")
        else:
            deleted += _unlink(memory_id, path, warnings)
    return deleted


def _trusted(directory: MediaDirectory, files: set[str]) -> set[str]:
    """Given queued files, return those whose directory is still inside the
    media directory and free of links (each directory checked once)."""
    directories = {os.path.dirname(file) for file in files}
    sound = {path for path in directories if (path + os.sep).startswith(directory.root + os.sep) and _real(path)}
    return {file for file in files if os.path.dirname(file) in sound}


def _real(path: str) -> bool:
    """Given a directory, return whether it is its own real path (no link on the way)."""
    try:
        return os.path.realpath(path) == path
    except ValueError:  # a NUL, in a row not written by maintctl
        return False


def _unlink(memory_id: str | bytes, path: str, warnings: list[str]) -> int:
    """Unlink path (a link as a link); return 1 where that deleted it, 0
    where it was gone already or could not be (that said in warnings)."""
    try:
        os.unlink(os.fsencode(path))
        return 1
    except FileNotFoundError:
        return 0
    except OSError as error:
        warnings.append(f"memory {memory_id}: media file {path!r} could not be deleted ({error.strerror})")
        return 0
