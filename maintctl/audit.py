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


def record(connection: sqlite3.Connection, entries: Iterable[Entry | tuple], settings: Settings) -> None:
    """Given the entries for the changes just made (Entry, or tuples of its
    four fields), write their audit rows (inside the caller's transaction)."""
    actor, created_at = settings.actor, timestamps.format_instant(settings.now)
    connection.executemany(
        "INSERT INTO audit_log (entity_type, entity_id, action, actor, details, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (
            (
                entity_type,
                entity_id,
                action,
                actor,
                details if details is None or isinstance(details, str) else json_text.encode(details),
                created_at,
            )
            for entity_type, entity_id, action, details in entries
        ),
    )
