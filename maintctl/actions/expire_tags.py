"""expire-tags: drop tag suggestions nobody confirmed in time (7 days by default)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import NamedTuple

from maintctl import timestamps
from maintctl.actions.base.batches import Batched
from maintctl.actions.base.rows import (
    PROBLEMS_LISTED,
    DueRows,
    doable_sql,
    key_text,
    keys_json,
    keys_sql,
    left_sql,
    why_left,
)
from maintctl.actions.base.upcoming import Upcoming
from maintctl.config.settings import Settings
from maintctl.store import audit, references

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

_INSTANT = f"{timestamps.instant_sql('t.suggested_at')} AS instant"
_WHERE = "t.status = 'suggested'"
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


class _Shape(NamedTuple):
    """What the queries depend on in the app's memory_tags table."""

    by_rowid: bool  # it has rowids (it is not WITHOUT ROWID)
    held: str | None  # SQL for what holds a tag (references.held_sql)


def _shape(connection: sqlite3.Connection) -> _Shape:
    """Given the database, return the shape of its memory_tags table."""
    try:
        connection.execute("SELECT rowid FROM memory_tags LIMIT 0")
        by_rowid = True
    except sqlite3.OperationalError as error:
        if "no such column" not in str(error):
            raise
        by_rowid = False
    return _Shape(by_rowid, _held(connection))


def _due(shape: _Shape) -> str:
    """Given the table's shape, return the query for the stale suggestions that can be deleted."""
    identity = "t.rowid" if shape.by_rowid else "json_array(t.memory_id, t.tag)"
    select = f"SELECT {identity}, t.memory_id, t.tag, t.suggested_at, {_INSTANT} FROM memory_tags AS t"
    return doable_sql(select, _WHERE, "t.suggested_at", ("t.memory_id", "t.tag"), shape.held)


def _held(connection: sqlite3.Connection) -> str | None:
    return references.held_sql(connection, "memory_tags", "t")


_ROWS = DueRows(
    lambda connection: _due(_shape(connection)),
    Upcoming("memory_tags", "status", "status = 'suggested'", "suggested_at"),
    age=lambda settings: settings.tag_expiry,
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
    claim = _CLAIM_BY_ROWID if _shape(connection).by_rowid else _CLAIM_BY_KEY
    keys = keys_json((tag.identity, tag.memory_id, tag.tag, tag.suggested_at) for tag in stale)
    details = dict(connection.execute(claim, {"keys": keys}).fetchall())
    expired = [tag for tag in stale if tag.identity in details]
    audit.record(connection, (("memory", tag.memory_id, "expired", details[tag.identity]) for tag in expired), settings)
    return expired


def tally(expired: list[StaleTag]) -> dict[str, int]:
    return {"expired": len(expired)}


def problems(connection: sqlite3.Connection, settings: Settings) -> list[str]:
    """Return the suggestions whose suggested_at names no instant, whose
    memory_id or tag is not clean text, or that another table holds."""
    left = left_sql("FROM memory_tags AS t", _WHERE, "t.suggested_at", ("t.memory_id", "t.tag"), _held(connection))
    return [
        f"tag {tag!r} on memory {key_text(memory_id)}: "
        + why_left("suggested_at", suggested_at, instant, "memory_id or tag", key_problem, held_by)
        + "; not expired"
        for memory_id, tag, suggested_at, key_problem, held_by, instant in connection.execute(
            left, _ROWS.bounds(settings, PROBLEMS_LISTED)
        )
    ]


ACTION = Batched(
    requires=REQUIRES,
    index_sql=(*INDEXES, _ROWS.upcoming.index_sql),
    plan=plan,
    apply=apply,
    tally=tally,
    problems=problems,
    count_due=_ROWS.count,
    outlook=_ROWS.outlook,
)
