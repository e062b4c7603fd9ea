"""The database's identity: a random id in maintctl's own table
(maintctl_meta, key database_id), given by init-db or, where missing, by the
first backup. Backups are named by its short form, so that rotation sees only
this database's copies however many share a directory or a file name. The id
travels with the data: a backup and a copy made by hand carry it. A restore
keeps the id of the database it replaces, so that a database goes on with
its own copies whatever backup was put back.
"""

from __future__ import annotations

import os
import re
import sqlite3

from maintctl.store.db import ActionError, Connection, table_exists, transaction

TABLE_SQL = "CREATE TABLE IF NOT EXISTS maintctl_meta (key TEXT PRIMARY KEY, value TEXT)"
KEY = "database_id"
SHORT_LENGTH = 8  # hex digits: two databases in one directory share them once in four billion

_WELL_FORMED = re.compile(r"[0-9a-f]{8,64}")


def new_uuid() -> str:
    """Return a random UUID (version 4) as text. (The uuid module costs a run
    more to import than the whole of this: it loads the platform module.)"""
    value = bytearray(os.urandom(16))
    value[6] = value[6] & 0x0F | 0x40  # version 4
    value[8] = value[8] & 0x3F | 0x80  # the RFC 4122 variant
    text = value.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def read(connection: sqlite3.Connection) -> str | None:
    """Given a connection, return the database's id, None where it has none yet."""
    if not table_exists(connection, "maintctl_meta"):
        return None
    row = connection.execute("SELECT value FROM maintctl_meta WHERE key = ?", (KEY,)).fetchone()
    if row is None:
        return None
    if not isinstance(row[0], str) or not _WELL_FORMED.fullmatch(row[0]):
        raise ActionError(f"maintctl_meta: {KEY} {row[0]!r} is not an id maintctl gave (hex digits)")
    return row[0]


def add(connection: sqlite3.Connection, database_id: str | None = None) -> None:
    """Inside the caller's transaction, give the database an id (a new random
    one unless given) where it has none."""
    connection.execute(TABLE_SQL)
    connection.execute(
        "INSERT OR IGNORE INTO maintctl_meta (key, value) VALUES (?, ?)",
        (KEY, database_id or new_uuid().replace("-", "")),
    )


def replace(connection: sqlite3.Connection, database_id: str | None) -> None:
    """Inside the caller's transaction, make the given id the database's,
    whatever it had (None: leave it none, for its next backup to give)."""
    if table_exists(connection, "maintctl_meta"):
        connection.execute("DELETE FROM maintctl_meta WHERE key = ?", (KEY,))
    if database_id is not None:
        add(connection, database_id)


def assign(connection: Connection) -> str:
    """Given a connection, return the database's id, giving it one first (in
    a transaction of its own) where it has none."""
    database_id = read(connection)
    if database_id is None:
        with transaction(connection):
            add(connection)
        database_id = read(connection)
    return database_id


def short(database_id: str) -> str:
    """Given a database id, return the short form that backup names carry."""
    return database_id[:SHORT_LENGTH]
