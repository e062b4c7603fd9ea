"""requeue-events: ask again about events their owners never answered."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from maintctl import timestamps
from maintctl.actions.base.due_rows import DueRows, app_text, claimed, key_text, keys_sql, text_sql
from maintctl.actions.base.upcoming import Upcoming
from maintctl.config.settings import Settings
from maintctl.store import audit, outbox

REQUIRES = {
    "events": ("id", "owner_user_id", "description", "event_date", "status", "pending_since"),
    "users": ("telegram_user_id",),
    "audit_log": ("entity_type", "entity_id", "action", "actor", "details", "created_at"),
}
INDEXES = (
    "CREATE INDEX IF NOT EXISTS maintctl_events_pending ON events (status, pending_since)",
    (
        f"CREATE INDEX IF NOT EXISTS maintctl_events_odd_pending_since ON events (status)"
        f" WHERE {timestamps.odd_sql('pending_since')}"
    ),
)

# The notification is built here, by SQLite, as bytes: the app's text may hold
# bytes that are not UTF-8 (see app_text).
_ROWS = DueRows(
    source="FROM events AS e",
    where="e.status = 'pending' AND EXISTS (SELECT 1 FROM users AS u WHERE u.telegram_user_id = e.owner_user_id)",
    column="e.pending_since",
    keys=("e.id",),
    read=f"e.id AS event_id, {text_sql('e.owner_user_id')} AS owner_user_id, {text_sql('e.description')} AS"
    f" description, {text_sql('e.event_date')} AS event_date, e.pending_since",
    returned="event_id, owner_user_id, pending_since, instant,"
    " CAST(json_object('user_id', owner_user_id, 'message_type', 'event_reprompt', 'content', json_object("
    "'event_id', event_id, 'description', description, 'event_date', event_date)) AS BLOB)",
    upcoming=Upcoming("events", "status", "status = 'pending'", "pending_since"),
    age=lambda settings: settings.reprompt_after,
    named=lambda event_id: f"event {key_text(event_id)}",
    left_as="not re-prompted",
)
_CLAIM = (
    "UPDATE events SET pending_since = :now WHERE +status = 'pending'"
    f" AND (id, +pending_since) IN ({keys_sql(2)}) RETURNING id"
)


@dataclass(slots=True)
class Reprompt:
    event_id: str
    user_id: int
    message: str  # the notification's JSON
    pending_since: str  # as stored: the claim is guarded on it
    pending_instant: str
    warning: str | None = None

    def planned(self) -> dict:
        return {"id": self.event_id, "user_id": self.user_id, "pending_since": self.pending_instant}

    def describe(self) -> str:
        return f"event {self.event_id} for user {self.user_id}, pending since {self.pending_instant}"


def plan(connection: sqlite3.Connection, settings: Settings, limit: int | None) -> list[Reprompt]:
    """Given the run's settings, return up to `limit` (None: all) events left
    pending for longer than the re-prompt interval, whose owner is a user."""
    return [_reprompt(*row) for row in _ROWS.rows(connection, settings, limit)]


def _reprompt(event_id, user_id, pending_since, instant, raw_message) -> Reprompt:
    message, mangled = app_text(raw_message)
    warning = f"event {event_id}: text that is not valid UTF-8; sent with U+FFFD for the bad bytes" if mangled else None
    return Reprompt(event_id, user_id, message, pending_since, instant, warning)


def apply(connection: sqlite3.Connection, reprompts: list[Reprompt], settings: Settings) -> list[Reprompt]:
    """Re-prompt the planned events that are still pending and unchanged; return those."""
    now = timestamps.format_instant(settings.now)
    requeued = claimed(connection, _CLAIM, reprompts, lambda event: (event.event_id, event.pending_since), now=now)
    audit.record(connection, (audit.Entry("event", event.event_id, "requeued") for event in requeued), settings)
    outbox.queue(
        connection, ((f"event_reprompt:{event.event_id}:{now}", event.message) for event in requeued), settings
    )
    return requeued


def tally(requeued: list[Reprompt]) -> dict[str, int]:
    return {"requeued": len(requeued)}


ACTION = _ROWS.batched(
    requires=REQUIRES,
    index_sql=INDEXES,
    own_tables=(outbox.TABLE_SQL,),
    plan=plan,
    apply=apply,
    tally=tally,
)
