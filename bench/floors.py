"""What maintctl is measured against: the least a script can do for the same work
(one transaction, set-based SQL, pipelined XADDs, no outbox, no dedup, no checks),
and the hand-written way (one reminder at a time, a commit each).

Run as `python bench/floors.py NAME DATABASE [REDIS_URL] [MEDIA_DIR]`."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path

NOW = "2026-11-22T09:30:00.000Z"
ACTOR = "system:scheduler"
STREAM = "notify:telegram"


def _stamp(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


def _next(fire_at: str, minutes: int) -> str:
    start, now, period = datetime.fromisoformat(fire_at), datetime.fromisoformat(NOW), timedelta(minutes=minutes)
    return _stamp(start + ((now - start) // period + 1) * period)


def _xadd_all(redis_url: str, messages: list[tuple[str, str]]) -> None:
    import redis

    pipe = redis.Redis.from_url(redis_url).pipeline(transaction=False)
    for index, (msg_id, data) in enumerate(messages, 1):
        pipe.xadd(STREAM, {"data": data, "msg_id": msg_id})
        if index % 10_000 == 0:
            pipe.execute()
    pipe.execute()


def fire(database: str, redis_url: str) -> None:
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    claimed = connection.execute(
        "UPDATE reminders SET fired = 1 WHERE fired = 0 AND fire_at <= ?"
        " RETURNING id, memory_id, fire_at, recurrence_minutes",
        (NOW,),
    ).fetchall()
    memory_ids = json.dumps([memory_id for _, memory_id, _, _ in claimed])
    memories = {
        row[0]: row[1:]
        for row in connection.execute(
            "SELECT id, owner_user_id, content FROM memories WHERE id IN (SELECT value FROM json_each(?))",
            (memory_ids,),
        )
    }
    successors = [
        (str(uuid.uuid4()), memory_id, memories[memory_id][0], _next(fire_at, minutes), minutes, reminder_id)
        for reminder_id, memory_id, fire_at, minutes in claimed
        if minutes
    ]
    connection.executemany(
        "INSERT INTO reminders (id, memory_id, owner_user_id, fire_at, recurrence_minutes, fired) VALUES (?, ?, ?, ?, ?, 0)",
        (row[:5] for row in successors),
    )
    audit = [("reminder", reminder_id, "fired", ACTOR, None, NOW) for reminder_id, _, _, _ in claimed]
    audit += [("reminder", row[0], "created", ACTOR, '{"source": "recurrence"}', NOW) for row in successors]
    connection.executemany(
        "INSERT INTO audit_log (entity_type, entity_id, action, actor, details, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        audit,
    )
    connection.execute("COMMIT")
    _xadd_all(
        redis_url,
        [
            (
                f"reminder:{reminder_id}",
                json.dumps(
                    {
                        "user_id": memories[memory_id][0],
                        "message_type": "reminder",
                        "content": {
                            "reminder_id": reminder_id,
                            "memory_id": memory_id,
                            "memory_content": memories[memory_id][1],
                            "fire_at": fire_at,
                        },
                    },
                    ensure_ascii=False,
                ),
            )
            for reminder_id, memory_id, fire_at, _ in claimed
        ],
    )


def fire_one_at_a_time(database: str, redis_url: str) -> None:
    """The hand-written cron script: for each due reminder, publish, update, insert, audit, commit."""
    import redis

    client = redis.Redis.from_url(redis_url)
    connection = sqlite3.connect(database, isolation_level=None)
    due = connection.execute(
        "SELECT r.id, r.memory_id, m.owner_user_id, m.content, r.fire_at, r.recurrence_minutes"
        " FROM reminders r JOIN memories m ON m.id = r.memory_id WHERE r.fired = 0 AND r.fire_at <= ?",
        (NOW,),
    ).fetchall()
    for reminder_id, memory_id, user_id, content, fire_at, minutes in due:
        message = {
            "user_id": user_id,
            "message_type": "reminder",
            "content": {
                "reminder_id": reminder_id,
                "memory_id": memory_id,
                "memory_content": content,
                "fire_at": fire_at,
            },
        }
        client.xadd(STREAM, {"data": json.dumps(message, ensure_ascii=False), "msg_id": f"reminder:{reminder_id}"})
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("UPDATE reminders SET fired = 1 WHERE id = ? AND fired = 0", (reminder_id,))
        if minutes:
            new_id = str(uuid.uuid4())
            connection.execute(
                "INSERT INTO reminders (id, memory_id, owner_user_id, fire_at, recurrence_minutes, fired)"
                " VALUES (?, ?, ?, ?, ?, 0)",
                (new_id, memory_id, user_id, _next(fire_at, minutes), minutes),
            )
            connection.execute(
                "INSERT INTO audit_log (entity_type, entity_id, action, actor, details, created_at)"
                " VALUES ('reminder', ?, 'created', ?, '{\"source\": \"recurrence\"}', ?)",
                (new_id, ACTOR, NOW),
            )
        connection.execute(
            "INSERT INTO audit_log (entity_type, entity_id, action, actor, details, created_at)"
            " VALUES ('reminder', ?, 'fired', ?, NULL, ?)",
            (reminder_id, ACTOR, NOW),
        )
        connection.execute("COMMIT")


def expire_pending(database: str, media_dir: str) -> None:
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("BEGIN IMMEDIATE")
    expired = connection.execute(
        "DELETE FROM memories WHERE status = 'pending' AND pending_expires_at <= ? RETURNING id, media_local_path",
        (NOW,),
    ).fetchall()
    connection.execute(
        "DELETE FROM memories_fts WHERE memory_id IN (SELECT value FROM json_each(?))",
        (json.dumps([memory_id for memory_id, _ in expired]),),
    )
    connection.executemany(
        "INSERT INTO audit_log (entity_type, entity_id, action, actor, details, created_at) VALUES ('memory', ?, 'expired', ?, NULL, ?)",
        ((memory_id, ACTOR, NOW) for memory_id, _ in expired),
    )
    connection.execute("COMMIT")
    for _, path in expired:
        if path:
            Path(media_dir, path).unlink(missing_ok=True)


def expire_tags(database: str) -> None:
    cutoff = "2026-11-15T09:30:00.000Z"
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    expired = connection.execute(
        "DELETE FROM memory_tags WHERE status = 'suggested' AND suggested_at <= ? RETURNING memory_id, tag", (cutoff,)
    ).fetchall()
    connection.executemany(
        "INSERT INTO audit_log (entity_type, entity_id, action, actor, details, created_at) VALUES ('memory', ?, 'expired', ?, ?, ?)",
        (
            (memory_id, ACTOR, json.dumps({"tag": tag, "reason": "suggested_tag_expiry"}), NOW)
            for memory_id, tag in expired
        ),
    )
    connection.execute("COMMIT")


def requeue_events(database: str, redis_url: str) -> None:
    cutoff = "2026-11-21T09:30:00.000Z"
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    requeued = connection.execute(
        "UPDATE events SET pending_since = ? WHERE status = 'pending' AND pending_since <= ?"
        " AND owner_user_id IN (SELECT telegram_user_id FROM users) RETURNING id, owner_user_id, description, event_date",
        (NOW, cutoff),
    ).fetchall()
    connection.executemany(
        "INSERT INTO audit_log (entity_type, entity_id, action, actor, details, created_at) VALUES ('event', ?, 'requeued', ?, NULL, ?)",
        ((event_id, ACTOR, NOW) for event_id, _, _, _ in requeued),
    )
    connection.execute("COMMIT")
    _xadd_all(
        redis_url,
        [
            (
                f"event_reprompt:{event_id}:{NOW}",
                json.dumps(
                    {
                        "user_id": user_id,
                        "message_type": "event_reprompt",
                        "content": {"event_id": event_id, "description": description, "event_date": event_date},
                    },
                    ensure_ascii=False,
                ),
            )
            for event_id, user_id, description, event_date in requeued
        ],
    )


def retention(database: str) -> None:
    """One DELETE of the old audit rows that are not `fired`, and its audit row."""
    cutoff = "2026-05-26T09:30:00.000Z"  # 180 days before now
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    deleted = connection.execute(
        "DELETE FROM audit_log WHERE created_at <= ? AND action != 'fired'", (cutoff,)
    ).rowcount
    connection.execute(
        "INSERT INTO audit_log (entity_type, entity_id, action, actor, details, created_at)"
        " VALUES ('retention', 'old-audit', 'deleted', ?, ?, ?)",
        (ACTOR, json.dumps({"rows": deleted}), NOW),
    )
    connection.execute("COMMIT")


def idle(database: str) -> None:
    """A bare script asking the four "anything due?" questions through indexes."""
    connection = sqlite3.connect(database)
    questions = [
        ("SELECT 1 FROM reminders WHERE fired = 0 AND fire_at <= ? LIMIT 1", NOW),
        ("SELECT 1 FROM memories WHERE status = 'pending' AND pending_expires_at <= ? LIMIT 1", NOW),
        (
            "SELECT 1 FROM memory_tags WHERE status = 'suggested' AND suggested_at <= ? LIMIT 1",
            "2026-11-15T09:30:00.000Z",
        ),
        ("SELECT 1 FROM events WHERE status = 'pending' AND pending_since <= ? LIMIT 1", "2026-11-21T09:30:00.000Z"),
    ]
    for sql, cutoff in questions:
        connection.execute(sql, (cutoff,)).fetchall()


if __name__ == "__main__":
    name, *arguments = sys.argv[1:]
    globals()[name.replace("-", "_")](*arguments)
    os._exit(0)
