"""One audit_log row per change, written inside the change's transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import NamedTuple

from maintctl import json_text, timestamps
from maintctl.config import Settings


class Entry(NamedTuple):
    entity_type: str
    entity_id: str
    action: str
    details: dict | str | None = None  # a dict, or its JSON already


def record(connection: sqlite3.Connection, entries: Iterable[Entry], settings: Settings) -> None:
    """Given the entries for the changes just made, write their audit rows
    (inside the caller's transaction)."""
    created_at = timestamps.format_instant(settings.now)
    connection.executemany(
        "INSERT INTO audit_log (entity_type, entity_id, action, actor, details, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (
            (
                entry.entity_type,
                entry.entity_id,
                entry.action,
                settings.actor,
                entry.details
                if entry.details is None or isinstance(entry.details, str)
                else json_text.encode(entry.details),
                created_at,
            )
            for entry in entries
        ),
    )
