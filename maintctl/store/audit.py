"""One audit_log row per change, written inside the change's transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import NamedTuple

from maintctl import json_text, timestamps
from maintctl.config.settings import Settings

_INSERT = "INSERT INTO audit_log (entity_type, entity_id, action, actor, details, created_at) VALUES (?, ?, ?, ?, ?, ?)"


class Entry(NamedTuple):
    entity_type: str
    entity_id: str
    action: str
    details: dict | str | None = None  # a dict, or its JSON already


def record(connection: sqlite3.Connection, entries: Iterable[Entry | tuple], settings: Settings) -> None:
    """Given the entries for the changes just made (Entry, or tuples of its
    four fields), write their audit rows (inside the caller's transaction)."""
    actor, created_at = settings.actor, timestamps.format_instant(settings.now)
    connection.executemany(
        _INSERT,
        (
            (entity_type, entity_id, action, actor, _details(details), created_at)
            for entity_type, entity_id, action, details in entries
        ),
    )


def record_one(connection: sqlite3.Connection, entry: Entry, settings: Settings) -> int:
    """Given one entry, write its audit row (inside the caller's transaction); return the row's id."""
    created_at = timestamps.format_instant(settings.now)
    row = (entry.entity_type, entry.entity_id, entry.action, settings.actor, _details(entry.details), created_at)
    return connection.execute(_INSERT, row).lastrowid


def _details(details: dict | str | None) -> str | None:
    return details if details is None or isinstance(details, str) else json_text.encode(details)
