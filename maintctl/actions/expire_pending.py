"""expire-pending: drop the uploads that were never confirmed in time.

Each expired pending memory leaves the search index and the memories table
(its tags and reminders go with it by cascade) with its audit row in one
transaction; its media file, where it lies inside the media directory, is
queued in that same transaction and deleted once it commits, unless a memory
that remains still uses it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from maintctl import timestamps
from maintctl.actions.base.due_rows import DueRows, claimed, key_text, keys_json, keys_sql
from maintctl.actions.base.upcoming import Upcoming
from maintctl.config.settings import Settings
from maintctl.media import deletions as media
from maintctl.media import users as media_users
from maintctl.media.paths import MediaDirectory
from maintctl.store import audit
from maintctl.store.db import columns_of
from maintctl.utf8 import readable_sql

REQUIRES = {
    "memories": ("id", "status", "pending_expires_at", "media_local_path"),
    "memories_fts": ("memory_id",),
    "audit_log": ("entity_type", "entity_id", "action", "actor", "details", "created_at"),
}
INDEXES = (
    "CREATE INDEX IF NOT EXISTS maintctl_memories_pending ON memories (status, pending_expires_at)",
    (
        f"CREATE INDEX IF NOT EXISTS maintctl_memories_odd_expiry ON memories (status)"
        f" WHERE {timestamps.odd_sql('pending_expires_at')}"
    ),
    media_users.INDEX,
)

_ROWS = DueRows(
    source="FROM memories AS m",
    where="m.status = 'pending'",
    column="m.pending_expires_at",
    keys=("m.id",),
    read=f"m.id AS memory_id, m.pending_expires_at, {readable_sql('m.media_local_path')} AS media_local_path",
    upcoming=Upcoming("memories", "status", "status = 'pending'", "pending_expires_at"),
    held_in=("memories", "m"),
    named=lambda memory_id: f"memory {key_text(memory_id)}",
    left_as="not expired",
)
_CLAIM = f"DELETE FROM memories WHERE +status = 'pending' AND (id, +pending_expires_at) IN ({keys_sql(2)}) RETURNING id"
_UNINDEX = f"DELETE FROM memories_fts WHERE memory_id IN ({keys_sql(1)})"
# memory_id is UNINDEXED, so the above reads every row of the search index, once
# per batch: a pass quadratic in the backlog. A regular FTS5 table keeps its rows
# in the plain table memories_fts_content (columns id, c0 = memory_id, c1, ...);
# where it does, init-db indexes c0 there (SEARCH_INDEX), and a batch finds its
# rows through that index (or, before init-db has run, by reading that table).
SEARCH_INDEX = "CREATE INDEX IF NOT EXISTS maintctl_memories_fts_memory ON memories_fts_content (c0)"
_UNINDEX_BY_ROWID = (
    f"DELETE FROM memories_fts WHERE rowid IN (SELECT id FROM memories_fts_content WHERE c0 IN ({keys_sql(1)}))"
)


@dataclass(slots=True)
class Expiry:
    """One expired pending memory, and the file that goes with it."""

    memory_id: str
    pending_expires_at: str  # as stored: the claim is guarded on it
    expires_instant: str
    media_local_path: str | bytes | None  # bytes: not clean text (see utf8.readable_sql)
    file: str | None  # the file (or link) to delete, where there is one inside the media directory
    warning: str | None = None
    queued: bool = False  # its file handed to the deletion queue (after_commit counts it once deleted)

    def planned(self) -> dict:
        return {
            "id": self.memory_id,
            "pending_expires_at": self.expires_instant,
            "media_local_path": key_text(path) if isinstance(path := self.media_local_path, bytes) else path,
            "delete_file": self.file,
        }

    def describe(self) -> str:
        text = f"memory {self.memory_id}, expired {self.expires_instant}"
        if self.file:
            text += f"; delete {self.file}"
        elif self.warning:
            text += f"; leave {self.media_local_path!r} alone"
        return text


def plan(connection: sqlite3.Connection, settings: Settings, limit: int | None) -> list[Expiry]:
    """Given the run's settings, return up to `limit` (None: all) expired
    pending memories, each with the file inside the media directory that
    its path names.

    Whether another memory still uses that file is decided once the memories
    have gone, right before the file would be unlinked (media.delete_queued:
    the app may store one meanwhile, and the media directory is searched for
    links then, once a pass). A dry run, which never gets there, decides it
    here, against the memories that would remain, so that it shows what the
    pass would do."""
    expiries = []
    media_dir = MediaDirectory(settings.media_dir)
    for memory_id, expires_at, stored_path, instant in _ROWS.rows(connection, settings, limit):
        located = media_dir.locate(stored_path)
        warning = f"memory {memory_id}: {located.problem}" if located.problem else None
        expiries.append(Expiry(memory_id, expires_at, instant, stored_path, located.file, warning))
    if settings.dry_run:
        _foresee_files(connection, expiries, media_dir)
    return expiries


def _foresee_files(connection: sqlite3.Connection, expiries: list[Expiry], media_dir: MediaDirectory) -> None:
    """Given a dry run's expiries, keep the file of each that a remaining
    memory uses (saying why), and leave a file that several share to the
    last of them, as the deletion after commit would do."""
    with_file = [expiry for expiry in expiries if expiry.file]
    in_use = media_users.kept(
        connection, media_dir, {expiry.file for expiry in with_file}, {expiry.memory_id for expiry in expiries}
    )
    last = {expiry.file: expiry for expiry in with_file}
    for expiry in with_file:
        if expiry.file in in_use:
            expiry.warning = f"memory {expiry.memory_id}: {in_use[expiry.file]}"
        if expiry.file in in_use or last[expiry.file] is not expiry:
            expiry.file = None


def apply(connection: sqlite3.Connection, expiries: list[Expiry], settings: Settings) -> list[Expiry]:
    """Expire the planned memories that are still pending and unchanged; return those."""
    expired = claimed(connection, _CLAIM, expiries, lambda expiry: (expiry.memory_id, expiry.pending_expires_at))
    unindex = _UNINDEX_BY_ROWID if plain_content_table(connection) else _UNINDEX
    connection.execute(unindex, {"keys": keys_json((expiry.memory_id,) for expiry in expired)})
    audit.record(connection, (audit.Entry("memory", expiry.memory_id, "expired") for expiry in expired), settings)
    media.queue(connection, ((expiry.memory_id, expiry.file) for expiry in expired if expiry.file), settings)
    for expiry in expired:
        expiry.queued = True
    return expired


def shaped_indexes(connection: sqlite3.Connection) -> tuple[str, ...]:
    """Return SEARCH_INDEX where memories_fts has the content table it indexes."""
    return (SEARCH_INDEX,) if plain_content_table(connection) else ()


def plain_content_table(connection: sqlite3.Connection) -> bool:
    """Return whether memories_fts keeps its rows, memory_id first, in memories_fts_content."""
    return columns_of(connection, "memories_fts_content")[:2] == ["id", "c0"] and columns_of(
        connection, "memories_fts"
    )[:1] == ["memory_id"]


def after_commit(connection: sqlite3.Connection, settings: Settings) -> tuple[dict[str, int], list[str]]:
    """Delete the files queued by the batches committed so far (and any a
    killed run left queued); return the count and what was left alone."""
    deleted = media.delete_queued(connection, settings)
    return {"files_deleted": deleted.deleted}, deleted.warnings


def tally(expiries: list[Expiry]) -> dict[str, int]:
    """Count the memories, and the files a dry run would delete with them
    (those a real run has queued are counted by after_commit, once deleted)."""
    return {
        "expired": len(expiries),
        "files_deleted": sum(1 for expiry in expiries if expiry.file and not expiry.queued),
    }


ACTION = _ROWS.batched(
    requires=REQUIRES,
    index_sql=INDEXES,
    shaped_indexes=shaped_indexes,
    own_tables=(media.TABLE_SQL,),
    plan=plan,
    apply=apply,
    tally=tally,
    after_commit=after_commit,
)
