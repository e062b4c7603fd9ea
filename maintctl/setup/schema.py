"""init-db: the app's schema where it is missing, maintctl's own tables, the
indexes its queries need and the database's id. It never drops or rewrites data."""

from __future__ import annotations

import sqlite3

from maintctl.actions import registry
from maintctl.store import history, identity, outbox, schedules
from maintctl.store.db import transaction
from maintctl.tracing.records import LOOKUP_INDEXES

APP_TABLES = (
    """CREATE TABLE IF NOT EXISTS users (
        telegram_user_id INTEGER PRIMARY KEY,
        username TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS memories (
        id TEXT PRIMARY KEY,
        owner_user_id INTEGER NOT NULL,
        content TEXT,
        status TEXT NOT NULL DEFAULT 'pending',
        pending_expires_at TEXT,
        media_local_path TEXT,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    )""",
    """CREATE TABLE IF NOT EXISTS memory_tags (
        memory_id TEXT NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
        tag TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'suggested',
        suggested_at TEXT,
        PRIMARY KEY (memory_id, tag)
    )""",
    """CREATE TABLE IF NOT EXISTS reminders (
        id TEXT PRIMARY KEY,
        memory_id TEXT NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
        owner_user_id INTEGER NOT NULL,
        fire_at TEXT,
        recurrence_minutes INTEGER,
        fired INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS events (
        id TEXT PRIMARY KEY,
        owner_user_id INTEGER NOT NULL,
        description TEXT,
        event_date TEXT,
        status TEXT NOT NULL DEFAULT 'pending',
        pending_since TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS audit_log (
        id INTEGER PRIMARY KEY,
        entity_type TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        action TEXT NOT NULL,
        actor TEXT NOT NULL,
        details TEXT,
        created_at TEXT NOT NULL
    )""",
    "CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5 (memory_id UNINDEXED, content)",
)

# Deleting a memory cascades to its reminders: without an index that leads
# with reminders.memory_id, each deletion scans the whole reminders table.
# `trace` finds an item's audit rows and notifications by key (tracing/records.py).
_CHILD_KEY_INDEXES = {("reminders", "memory_id"): "maintctl_reminders_memory", **LOOKUP_INDEXES}


def _names(connection: sqlite3.Connection) -> set[str]:
    return {name for (name,) in connection.execute("SELECT name FROM sqlite_schema")}


def _leading_index_exists(connection: sqlite3.Connection, table: str, column: str) -> bool:
    """Return whether some index of the table (a primary key's included) starts with the column."""
    import sqlite_utils

    return any(index.columns[:1] == [column] for index in sqlite_utils.Database(connection)[table].indexes)


def init_db(connection: sqlite3.Connection) -> list[str]:
    """Create what is missing; return the names of the tables and indexes created."""
    before = _names(connection)
    loaded = [entry.load() for entry in registry.ACTIONS]
    with transaction(connection):
        for statement in APP_TABLES:
            connection.execute(statement)
        for statement in {sql for action in loaded for sql in action.own_tables} | {
            outbox.TABLE_SQL,
            history.TABLE_SQL,
            schedules.TABLE_SQL,
        }:
            connection.execute(statement)
        identity.add(connection)
        for statement in (
            [sql for action in loaded for sql in action.indexes(connection)]
            + list(outbox.INDEXES)
            + list(history.INDEXES)
        ):
            connection.execute(statement)
        for (table, column), index in _CHILD_KEY_INDEXES.items():
            if not _leading_index_exists(connection, table, column):
                connection.execute(f"CREATE INDEX {index} ON {table} ({column})")
    created = _names(connection) - before
    return sorted(name for name in created if not name.startswith(("memories_fts_", "sqlite_")))
