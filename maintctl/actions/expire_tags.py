"""expire-tags: drop tag suggestions nobody confirmed in time (7 days by default)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from maintctl import audit, timestamps
from maintctl.actions import PROBLEMS_LISTED, key_text_sql, keys_json, keys_sql, shown
from maintctl.config import Settings
from maintctl.utf8 import readable_sql, unclean_sql

NAME = "expire-tags"
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
COUNTS = ("expired",)
NOTIFIES = False
OWN_TABLES = ()

_INSTANT = f"{timestamps.instant_sql('t.suggested_at')} AS instant"
_WHERE = "t.status = 'suggested'"
_DUE = timestamps.due_sql(
    f"SELECT t.rowid, t.memory_id, t.tag, t.suggested_at, {_INSTANT} FROM memory_tags AS t",
    f"{_WHERE} AND {key_text_sql('t.memory_id', 't.tag')}",
    "t.suggested_at",
    "instant <= :cutoff",
)
_UNREADABLE = timestamps.due_sql(
    f"SELECT {readable_sql('t.memory_id')} AS memory_id, {readable_sql('t.tag')} AS tag,"
    f" {readable_sql('t.suggested_at')} AS suggested_at, {unclean_sql('t.memory_id', 't.tag')} AS key_problem,"
    f" {_INSTANT} FROM memory_tags AS t",
    _WHERE,
    "t.suggested_at",
    "instant IS NULL OR (instant <= :cutoff AND key_problem IS NOT NULL)",
)
# Claimed by rowid (one B-tree search a row, where the primary key would take
# two), guarded on the rest: a rowid that VACUUM gave to another row matches nothing.
_CLAIM = (
    "DELETE FROM memory_tags WHERE +status = 'suggested'"
    f" AND (rowid, +memory_id, +tag, +suggested_at) IN ({keys_sql(4)})"
    " RETURNING rowid, json_object('tag', tag, 'reason', 'suggested_tag_expiry')"
)


@dataclass(slots=True)
class StaleTag:
    rowid: int
    memory_id: str
    tag: str
    suggested_at: str  # as stored: the claim is guarded on it
    suggested_instant: str
    warning: str | None = None

    def planned(self) -> dict:
        return {"id": self.memory_id, "tag": self.tag, "suggested_at": self.suggested_instant}

    def describe(self) -> str:
        return f"tag {self.tag!r} on memory {self.memory_id}, suggested {self.suggested_instant}"


def _cutoff_bounds(settings: Settings, limit: int | None) -> dict[str, str | int]:
    return timestamps.due_bounds(settings.now, limit, settings.tag_expiry)


def plan(connection: sqlite3.Connection, settings: Settings, limit: int | None) -> list[StaleTag]:
    """Given the run's settings, return up to `limit` (None: all) suggestions older than the tag expiry."""
    parameters = _cutoff_bounds(settings, limit)
    return [StaleTag(*row) for row in connection.execute(_DUE, parameters)]


def apply(connection: sqlite3.Connection, stale: list[StaleTag], settings: Settings) -> list[StaleTag]:
    """Delete the planned suggestions that are still suggested and unchanged; return those."""
    details = dict(
        connection.execute(
            _CLAIM, {"keys": keys_json((tag.rowid, tag.memory_id, tag.tag, tag.suggested_at) for tag in stale)}
        ).fetchall()
    )
    expired = [tag for tag in stale if tag.rowid in details]
    audit.record(connection, (("memory", tag.memory_id, "expired", details[tag.rowid]) for tag in expired), settings)
    return expired


def tally(expired: list[StaleTag]) -> dict[str, int]:
    return {"expired": len(expired)}


def problems(connection: sqlite3.Connection, settings: Settings) -> list[str]:
    """Return the suggestions whose suggested_at names no instant, or whose memory_id or tag is not clean text."""
    return [
        f"tag {tag!r} on memory {shown(memory_id)}: "
        + (
            f"suggested_at {suggested_at!r} names no instant"
            if instant is None
            else f"its memory_id or tag {key_problem}"
        )
        + "; not expired"
        for memory_id, tag, suggested_at, key_problem, instant in connection.execute(
            _UNREADABLE, _cutoff_bounds(settings, PROBLEMS_LISTED)
        )
    ]


def count_due(connection: sqlite3.Connection, settings: Settings) -> int:
    """Return how many items are due now."""
    return connection.execute(f"SELECT count(*) FROM ({_DUE})", _cutoff_bounds(settings, None)).fetchone()[0]
