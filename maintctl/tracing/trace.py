"""One item's trace: the database's side and the stream's in one timeline,
and the verdict, the furthest stage maintctl can see the item reach.

Where Redis is unset or does not answer, a delivered item's verdict stays
at `in-stream` (delivered; no reader seen) and the timeline says why: what
no one can see is never called acknowledged.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from maintctl import timestamps
from maintctl.config.settings import Settings
from maintctl.store import identity, outbox, streams
from maintctl.tracing import readers, records
from maintctl.tracing.records import NoSuchItem, Record, Step

__all__ = ["KINDS", "NoSuchItem", "Trace", "trace"]

KINDS = ("reminder", "event", "job-run")
SETTLED = ("not-due", "acknowledged", "no-readers")  # exit 0 however old


@dataclass
class Trace:
    document: dict  # {"item", "timeline", "delivery", "verdict"}
    stuck: str | None  # why it is stuck past MAINTCTL_STUCK_AFTER; None where it is not

    @property
    def exit_code(self) -> int:
        return 1 if self.stuck else 0


def trace(connection: sqlite3.Connection, settings: Settings, kind: str, item_id: str) -> Trace:
    """Given a kind (KINDS) and an id, return the item's trace; raise NoSuchItem where there is none."""
    if kind == "reminder":
        record = records.reminder(connection, item_id, settings.stream, settings.now)
    elif kind == "event":
        record = records.event(connection, item_id, settings.stream, settings.now, settings.reprompt_after)
    else:
        record = records.job_run(connection, item_id, settings.job_stream)
    verdict, since, delivery = _follow(connection, settings, record)
    timeline = sorted(record.steps, key=lambda step: step.at or "")  # undated (a fire_at naming no instant) first
    stuck = None
    if verdict not in SETTLED and since is not None:
        age = settings.now - since
        if age > settings.stuck_after:
            stuck = (
                f"{kind} {item_id}: {verdict} since {timestamps.format_instant(since)}"
                f" ({streams.duration(age.total_seconds())}, more than MAINTCTL_STUCK_AFTER,"
                f" {streams.duration(settings.stuck_after.total_seconds())})"
            )
    document = {
        "item": record.item,
        "timeline": [step.as_json() for step in timeline],
        "delivery": delivery,
        "verdict": verdict,
    }
    return Trace(document, stuck)


def _follow(connection, settings: Settings, record: Record) -> tuple[str, datetime | None, dict | None]:
    """Given an item's record, follow its newest notification into its
    stream (adding what is seen to its steps); return the verdict, since when
    it has held (where its age matters) and the delivery's document."""
    notification = record.notification
    if record.due_since is not None:
        return "due-not-fired", record.due_since, _delivery(notification, [])
    if notification is None:
        return "not-due", None, None
    if not notification.delivered:
        return "queued", records.instant_or_none(notification.queued_at), _delivery(notification, [])
    delivered = records.instant_or_none(notification.delivered_at or notification.since)
    now = timestamps.format_instant(settings.now)
    if settings.redis_url is None:
        record.steps.append(Step(now, "readers", "no Redis URL set: whether a group read it cannot be seen"))
        return "in-stream", delivered, _delivery(notification, [])
    try:
        client = outbox.redis_client(settings)
    except outbox.DeliveryError as error:
        record.steps.append(Step(now, "readers", f"{error}: whether a group read it cannot be seen"))
        return "in-stream", delivered, _delivery(notification, [])
    import redis

    try:
        side = _read(connection, client, notification, record, now)
    except readers.NotAStream as error:
        record.steps.append(Step(now, "readers", f"{error}: no reader can read it"))
        return "in-stream", delivered, _delivery(notification, [])
    except (redis.RedisError, OSError, ValueError, UnicodeError) as error:
        reason = outbox.describe_error(error, settings)
        record.steps.append(Step(now, "readers", f"{reason}: whether a group read it cannot be seen"))
        return "in-stream", delivered, _delivery(notification, [])
    finally:
        client.close()
    if side is None:
        return "in-stream", delivered, _delivery(notification, [])
    groups = side.groups
    if not groups:
        what = "the stream has no consumer group" if side.stream_exists else "the stream is not there"
        record.steps.append(Step(now, "readers", f"{notification.stream}: {what}: no one reads it"))
        return "no-readers", None, _delivery(notification, groups)
    if not side.entry_present:
        record.steps.append(Step(now, "stream", f"entry {notification.entry_id} is no longer in the stream (trimmed)"))
    for group in groups:
        if group.pending:
            detail = (
                f"group {group.group}: read by {group.consumer}, not acknowledged (idle {group.idle_ms} ms,"
                f" deliveries {group.deliveries})"
            )
            record.steps.append(Step(now, "pending", detail))
        elif group.read:
            record.steps.append(Step(now, "acknowledged", f"group {group.group}: read and acknowledged"))
        else:
            record.steps.append(Step(now, "not-read", f"group {group.group}: not handed it yet"))
    if not all(group.read for group in groups):
        verdict = "in-stream"
    elif any(group.pending for group in groups):
        verdict = "read-not-acknowledged"
    else:
        verdict = "acknowledged"
    return verdict, delivered, _delivery(notification, groups)


def _read(connection, client, notification, record: Record, now: str):
    """Given a client, find the notification's stream entry id where the
    outbox no longer says it (its row pruned: the dedup key holds it while it
    lives); return the stream's side of it, None where it cannot be found."""
    if notification.entry_id is None:
        database_id = identity.read(connection)
        key = outbox.dedup_prefix(notification.stream, database_id or "") + notification.msg_id
        notification.entry_id = readers.sent_entry(client, key) if database_id else None
        if notification.entry_id is None:
            record.steps.append(
                Step(now, "readers", "its stream entry id is no longer known (its dedup key expired): not followed")
            )
            return None
        record.steps.append(Step(now, "delivered", f"to {notification.stream} as entry {notification.entry_id}"))
    return readers.read_side(client, notification.stream, notification.entry_id)


def _delivery(notification, groups: list) -> dict | None:
    if notification is None:
        return None
    return {
        "stream": notification.stream,
        "msg_id": notification.msg_id,
        "entry_id": notification.entry_id,
        "groups": [group.as_json() for group in groups],
    }
