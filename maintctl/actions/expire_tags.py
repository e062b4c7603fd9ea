"""expire-tags: drop tag suggestions nobody confirmed in time (7 days by default)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from maintctl import timestamps
from maintctl.actions.base.due_rows import DueRows, key_text, keys_json, keys_sql
from maintctl.actions.base.upcoming import Upcoming
from maintctl.config.settings import Settings
from maintctl.store import audit

REQUIRES = {
    "memory_tags": ("memory_id", "tag", "status", "suggested_at"),
    "audit_log": ("entity_type", "entity_id", "action", "actor", "details", "created_at"),
}
INDEXES = (
    "CREATE INDEX IF NOT EXISTS maintctl_memory_tags_suggested ON memory_tags (status, suggested_at)",
    (
        f"CREATE INDEX IF NOT EXISTS maintctl_memory_tags_odd_suggested_at ON memory_tags (status)"
        f" WHERE {timestamps.odd_sql('suggested_at')}"
    ),
)

_DETAILS = "json_object('tag', tag, 'reason', 'suggested_tag_expiry')"
# Claimed by rowid where the table has rowids (one B-tree search a row, where
# the primary key would take two), guarded on the rest: a rowid that VACUUM
# gave to another row matches nothing. A table WITHOUT ROWID is claimed by its
# primary key; its rows are then told apart by that key, as JSON.
_CLAIM_BY_ROWID = (
    "DELETE FROM memory_tags WHERE +status = 'suggested'"
    f" AND (rowid, +memory_id, +tag, +suggested_at) IN ({keys_sql(4)}) RETURNING rowid, {_DETAILS}"
)
_CLAIM_BY_KEY = (
    "DELETE FROM memory_tags WHERE +status = 'suggested'"
    f" AND (memory_id, tag, +suggested_at) IN ({keys_sql(4, skip=1)}) RETURNING json_array(memory_id, tag), {_DETAILS}"
)


def _has_rowids(connection: sqlite3.Connection) -> bool:
    """Given the database, return whether its memory_tags table has rowids (it is not WITHOUT ROWID)."""
    try:
        connection.execute("SELECT rowid FROM memory_tags LIMIT 0")
    except sqlite3.OperationalError as error:
        if "no such column" not in str(error):
            raise
        return False
    return True


def _read(connection: sqlite3.Connection) -> str:
    """Given the database, return the columns a plan reads of a stale suggestion, its identity first."""
    identity = "t.rowid" if _has_rowids(connection) else "json_array(t.memory_id, t.tag)"
    return f"{identity}, t.memory_id, t.tag, t.suggested_at"


_ROWS = DueRows(
    source="FROM memory_tags AS t",
    where="t.status = 'suggested'",
    column="t.suggested_at",
    keys=("t.memory_id", "t.tag"),
    read=_read,
    upcoming=Upcoming("memory_tags", "status", "status = 'suggested'", "suggested_at"),
    age=lambda settings: settings.tag_expiry,
    held_in=("memory_tags", "t"),
    named=lambda memory_id, tag: f"tag {tag!r} on memory {key_text(memory_id)}",
    left_as="not expired",
)


@dataclass(slots=True)
class StaleTag:
    identity: int | str  # as the claim returns it: the rowid, or the primary key as JSON
    memory_id: str
    tag: str
    suggested_at: str  # as stored: the claim is guarded on it
    suggested_instant: str
    warning: str | None = None

    def planned(self) -> dict:
        return {"id": self.memory_id, "tag": self.tag, "suggested_at": self.suggested_instant}

    def describe(self) -> str:
        return f"tag {self.tag!r} on memory {self.memory_id}, suggested {self.suggested_instant}"


def plan(connection: sqlite3.Connection, settings: Settings, limit: int | None) -> list[StaleTag]:
    """Given the run's settings, return up to `limit` (None: all) suggestions older than the tag expiry."""
    return [StaleTag(*row) for row in _ROWS.rows(connection, settings, limit)]


def apply(connection: sqlite3.Connection, stale: list[StaleTag], settings: Settings) -> list[StaleTag]:
    """Delete the planned suggestions that are still suggested and unchanged; return those."""
    claim = _CLAIM_BY_ROWID if _has_rowids(connection) else _CLAIM_BY_KEY
    keys = keys_json((tag.identity, tag.memory_id, tag.tag, tag.suggested_at) for tag in stale)
    details = dict(connection.execute(claim, {"keys": keys}).fetchall())
    expired = [tag for tag in stale if tag.identity in details]
    audit.record(connection, (("memory", tag.memory_id, "expired", details[tag.identity]) for tag in expired), settings)
    return expired


def tally(expired: list[StaleTag]) -> dict[str, int]:
    return {"expired": len(expired)}


ACTION = _ROWS.batched(requires=REQUIRES, index_sql=INDEXES, plan=plan, apply=apply, tally=tally)
