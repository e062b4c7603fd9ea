"""The database's side of a trace: an item's row, its audit rows and its
notifications in maintctl's outbox, read by key through indexes (never a
scan of a table), changing nothing."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime

from maintctl import timestamps
from maintctl.store.db import columns_of, table_exists

# The lookups a trace makes, by key: init-db makes each index where no index of the table leads with the column.
LOOKUP_INDEXES = {
    ("audit_log", "entity_id"): "maintctl_audit_log_entity",
    ("maintctl_outbox", "msg_id"): "maintctl_outbox_msg_id",
}
AUDIT_SHOWN = 50  # the newest audit rows of an item shown (an event re-prompted daily for years has thousands)
NOTIFICATIONS_SHOWN = 20
INSTANT_LENGTH = len("2026-11-22T09:30:00.000Z")  # every instant a msg_id ends in is canonical


class NoSuchItem(LookupError):
    """The id names no item of that kind."""


@dataclass
class Step:
    """One line of the timeline."""

    at: str | None
    stage: str
    detail: str

    def as_json(self) -> dict:
        return {"at": self.at, "stage": self.stage, "detail": self.detail}


@dataclass
class Notification:
    """An item's message: queued in the outbox, then delivered to its stream."""

    stream: str
    msg_id: str
    queued_at: str | None
    delivered_at: str | None
    entry_id: str | None
    delivered: bool  # True also where its outbox row was pruned after delivery (delivered_at then unknown)
    since: str | None = None  # where pruned: when it was queued, as its audit row says


@dataclass
class Record:
    item: dict
    steps: list[Step] = field(default_factory=list)
    notification: Notification | None = None  # the newest one
    due_since: datetime | None = None  # due and not acted on yet: since when


def instant_or_none(text) -> datetime | None:
    """Given a value from the database, return the instant it names, None where it names none."""
    if not isinstance(text, str):
        return None
    try:
        return timestamps.parse_instant(text)
    except ValueError:
        return None


def _canonical_or_as_is(text):
    instant = instant_or_none(text)
    return timestamps.format_instant(instant) if instant else text


def audit_steps(connection: sqlite3.Connection, entity_type: str, entity_id: str) -> list[Step]:
    """Given an item, return its newest audit rows (up to AUDIT_SHOWN), oldest first, as steps."""
    if not table_exists(connection, "audit_log"):
        return []
    rows = connection.execute(
        "SELECT action, actor, details, created_at FROM audit_log WHERE entity_id = ? AND entity_type = ?"
        " ORDER BY id DESC LIMIT ?",
        (entity_id, entity_type, AUDIT_SHOWN),
    ).fetchall()
    return [
        Step(
            _canonical_or_as_is(created_at), action, f"audit: {action} by {actor}" + (f" {details}" if details else "")
        )
        for action, actor, details, created_at in reversed(rows)
    ]


def notifications(connection: sqlite3.Connection, prefix: str, stream: str) -> list[Notification]:
    """Given the msg_id (or the start of the msg_ids, ending in ':', that an
    instant ends) of an item's messages, return those in the outbox, oldest
    first (the newest NOTIFICATIONS_SHOWN), found through the index on
    msg_id. Only the item's own: event `e`'s start `event_reprompt:e:` also
    begins event `e:x`'s msg_ids, whose end is longer than one instant."""
    if not table_exists(connection, "maintctl_outbox"):
        return []
    if prefix.endswith(":"):
        where = "msg_id >= ? AND msg_id < ? AND length(msg_id) = ?"
        parameters = (prefix, prefix[:-1] + ";", len(prefix) + INSTANT_LENGTH)
    else:
        where, parameters = "msg_id = ?", (prefix,)
    rows = connection.execute(
        f"SELECT msg_id, queued_at, delivered_at, stream_id FROM maintctl_outbox WHERE {where} ORDER BY id DESC LIMIT ?",
        (*parameters, NOTIFICATIONS_SHOWN),
    ).fetchall()
    return [
        Notification(stream, msg_id, queued_at, delivered_at, entry_id, delivered_at is not None)
        for msg_id, queued_at, delivered_at, entry_id in reversed(rows)
    ]


def notification_steps(notification: Notification) -> list[Step]:
    """Given a notification found in the outbox, return its queued and delivered steps."""
    steps = [Step(notification.queued_at, "queued", f"{notification.msg_id} queued in maintctl_outbox")]
    if notification.delivered_at:
        steps.append(
            Step(notification.delivered_at, "delivered", f"to {notification.stream} as entry {notification.entry_id}")
        )
    return steps


def reminder(connection: sqlite3.Connection, reminder_id: str, stream: str, now: datetime) -> Record:
    """Given a reminder's id, return its record: its row now, its audit rows, its successor and its notification."""
    row = connection.execute(
        "SELECT id, memory_id, owner_user_id, fire_at, recurrence_minutes, fired FROM reminders WHERE id = ?",
        (reminder_id,),
    ).fetchone()
    if row is None:
        raise NoSuchItem(f"no reminder {reminder_id!r}")
    _, memory_id, owner, fire_at, minutes, fired = row
    fire_instant = instant_or_none(fire_at)
    record = Record(
        {
            "type": "reminder",
            "id": reminder_id,
            "memory_id": memory_id,
            "owner_user_id": owner,
            "fire_at": fire_at,
            "fired": bool(fired),
            "recurrence_minutes": minutes,
            "successor": None,
        }
    )
    now_text = timestamps.format_instant(now)
    every = f", every {minutes} minutes" if minutes is not None else ""
    record.steps.append(Step(now_text, "row", f"fire_at {fire_at}, fired {fired}{every}"))
    if fire_instant is None:
        record.steps.append(Step(None, "due", f"fire_at {fire_at!r} names no instant: never fired"))
    else:
        record.steps.append(Step(timestamps.format_instant(fire_instant), "due", "its fire_at"))
    audits = audit_steps(connection, "reminder", reminder_id)
    record.steps += audits
    if not fired and fire_instant is not None and fire_instant <= now:
        record.due_since = fire_instant
    found = notifications(connection, f"reminder:{reminder_id}:", stream)
    for notification in found:
        record.steps += notification_steps(notification)
    fired_at = next((step.at for step in reversed(audits) if step.stage == "fired"), None)
    if fired and fire_instant is not None:
        msg_id = f"reminder:{reminder_id}:{timestamps.format_instant(fire_instant)}"
        current = [notification for notification in found if notification.msg_id == msg_id]
        record.notification = current[-1] if current else Notification(stream, msg_id, None, None, None, True, fired_at)
        if not current:
            record.steps.append(Step(fired_at, "queued", f"{msg_id}: its outbox row is gone (delivered, then pruned)"))
        _successor(connection, record, memory_id, fire_instant, minutes, fired_at)
    return record


def _successor(connection, record: Record, memory_id, fire_instant: datetime, minutes, fired_at: str | None) -> None:
    """Name the reminder that firing this recurring one made: fire-reminders
    gives it the same memory and the first occurrence after the pass's now
    (the fired audit row's created_at), and audits it `created` with
    {"source": "recurrence"} at that same instant."""
    if not isinstance(minutes, int) or minutes <= 0 or fired_at is None:
        return
    from maintctl.actions.fire_reminders import next_occurrence

    upcoming = next_occurrence(timestamps.format_instant(fire_instant), minutes, timestamps.from_canonical(fired_at))
    if upcoming is None:
        return
    candidates = connection.execute(
        "SELECT r.id FROM reminders AS r JOIN audit_log AS a ON a.entity_id = r.id AND a.entity_type = 'reminder'"
        " AND a.action = 'created' AND a.created_at = ? WHERE r.memory_id = ? AND r.fire_at = ? AND r.id != ?"
        " AND CASE WHEN json_valid(a.details) THEN json_extract(a.details, '$.source') END = 'recurrence' LIMIT 1",
        (fired_at, memory_id, upcoming[0], record.item["id"]),
    ).fetchall()
    if candidates:
        (successor,) = candidates[0]
        record.item["successor"] = successor
        record.steps.append(Step(fired_at, "successor", f"next reminder {successor}, due {upcoming[0]}"))


def event(connection: sqlite3.Connection, event_id: str, stream: str, now: datetime, reprompt_after) -> Record:
    """Given an event's id, return its record: its row now, its audit rows and its re-prompts."""
    row = connection.execute(
        "SELECT owner_user_id, event_date, status, pending_since FROM events WHERE id = ?", (event_id,)
    ).fetchone()
    if row is None:
        raise NoSuchItem(f"no event {event_id!r}")
    owner, event_date, status, pending_since = row
    record = Record(
        {
            "type": "event",
            "id": event_id,
            "owner_user_id": owner,
            "event_date": event_date,
            "status": status,
            "pending_since": pending_since,
        }
    )
    record.steps.append(Step(timestamps.format_instant(now), "row", f"status {status}, pending since {pending_since}"))
    since = instant_or_none(pending_since)
    if status == "pending" and since is not None:
        due = timestamps.shift(since, reprompt_after)
        record.steps.append(Step(timestamps.format_instant(due), "due", "re-prompt (MAINTCTL_REPROMPT_AFTER)"))
        if due <= now:
            record.due_since = due
    record.steps += audit_steps(connection, "event", event_id)
    found = notifications(connection, f"event_reprompt:{event_id}:", stream)
    for notification in found:
        record.steps += notification_steps(notification)
    record.notification = found[-1] if found else None
    return record


def job_run(connection: sqlite3.Connection, run_id: str, stream: str) -> Record:
    """Given a job run's id, return its record: its row and its message."""
    if not table_exists(connection, "maintctl_job_runs"):
        raise NoSuchItem(f"no job run {run_id!r}")
    has_entry = "entry_id" in columns_of(connection, "maintctl_job_runs")
    row = connection.execute(
        "SELECT job, status, scheduled_for, skipped_occurrences, queued_at, enqueued_at, finished_at, error,"
        f" {'entry_id' if has_entry else 'NULL'} FROM maintctl_job_runs WHERE id = ?",
        (run_id,),
    ).fetchone()
    if row is None:
        raise NoSuchItem(f"no job run {run_id!r}")
    job, status, scheduled_for, skipped, queued_at, enqueued_at, finished_at, error, entry_id = row
    record = Record(
        {
            "type": "job-run",
            "id": run_id,
            "job": job,
            "status": status,
            "scheduled_for": scheduled_for,
            "queued_at": queued_at,
            "enqueued_at": enqueued_at,
            "finished_at": finished_at,
        }
    )
    record.steps.append(
        Step(scheduled_for, "scheduled", f"job {job}" + (f", {skipped} occurrences coalesced" if skipped else ""))
    )
    if status == "skipped":
        record.steps.append(Step(queued_at, "skipped", "the previous run was still running: recorded, not enqueued"))
        return record
    msg_id = f"job:{run_id}"
    found = notifications(connection, msg_id, stream)
    notification = found[-1] if found else None
    if notification is None and status != "pending":  # delivered, and its outbox row pruned since
        notification = Notification(stream, msg_id, queued_at, enqueued_at, entry_id, True, queued_at)
    elif notification is not None and notification.entry_id is None:
        notification.entry_id = entry_id
    if notification is None:
        record.steps.append(Step(queued_at, "queued", f"{msg_id}: not in maintctl_outbox (its job was removed?)"))
    else:
        record.steps += notification_steps(notification)
        record.notification = notification
    if finished_at:
        said = f": {json.dumps(error)}" if error else ""
        record.steps.append(Step(finished_at, status, f"the worker's result, read back from the results stream{said}"))
    return record
