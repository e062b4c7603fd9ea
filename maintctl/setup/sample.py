"""init-db --sample: demo data with something for every action to do."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

from maintctl.config.settings import ConfigError, Settings
from maintctl.timestamps import format_instant, shift

DEMO_USERS = (1001, 1002)


def add_sample(connection: sqlite3.Connection, settings: Settings) -> dict[str, int]:
    """Add the demo rows (again, harmlessly: they have fixed ids) and their
    media files, with times relative to now; return how many rows each table got.
    Refuses a database that has users of its own."""
    import sqlite_utils

    (others,) = connection.execute(
        f"SELECT count(*) FROM users WHERE telegram_user_id NOT IN ({', '.join(map(str, DEMO_USERS))})"
    ).fetchone()
    if others:
        raise ConfigError(f"{settings.db}: has {others} users of its own; --sample only fills a new database")
    now = settings.now

    def at(delta: timedelta) -> str:
        return format_instant(shift(now, delta))

    media = settings.media_dir / "demo"
    media.mkdir(parents=True, exist_ok=True)
    for name in ("receipt.jpg", "whiteboard.jpg"):
        (media / name).write_bytes(b"demo image\n")

    rows = {
        "users": [{"telegram_user_id": 1001, "username": "ada"}, {"telegram_user_id": 1002, "username": "grace"}],
        "memories": [
            _memory("demo-m1", 1001, "Buy oat milk on the way home", "confirmed"),
            _memory("demo-m2", 1001, "Water the balcony plants", "confirmed"),
            _memory("demo-m3", 1002, "Call mum on Sunday", "confirmed"),
            _memory(
                "demo-m4", 1002, "Receipt for the new kettle", "pending", at(-timedelta(hours=1)), "demo/receipt.jpg"
            ),
            _memory(
                "demo-m5",
                1001,
                "Whiteboard from the planning meeting",
                "pending",
                at(timedelta(hours=2)),
                "demo/whiteboard.jpg",
            ),
        ],
        "reminders": [
            # a one-off reminder five minutes late, written the way some apps write times
            _reminder("demo-r1", "demo-m1", 1001, at(-timedelta(minutes=5)).replace("T", " ")[:19], None),
            # a daily reminder not run for two days: fires once, the missed ones coalesced
            _reminder("demo-r2", "demo-m2", 1001, at(-timedelta(days=2, hours=3)), 1440),
            _reminder("demo-r3", "demo-m3", 1002, at(timedelta(days=3)), None),
        ],
        "memory_tags": [
            {"memory_id": "demo-m1", "tag": "groceries", "status": "suggested", "suggested_at": at(-timedelta(days=8))},
            {"memory_id": "demo-m2", "tag": "garden", "status": "suggested", "suggested_at": at(-timedelta(days=1))},
            {"memory_id": "demo-m3", "tag": "family", "status": "confirmed", "suggested_at": at(-timedelta(days=30))},
        ],
        "events": [
            _event("demo-e1", 1001, "Dentist appointment", at(timedelta(days=4))[:10], at(-timedelta(hours=30))),
            _event("demo-e2", 1002, "Team offsite", at(timedelta(days=10))[:10], at(-timedelta(hours=2))),
        ],
    }
    database = sqlite_utils.Database(connection)
    added = {}
    for table, table_rows in rows.items():
        before = database[table].count
        database[table].insert_all(table_rows, ignore=True)
        added[table] = database[table].count - before
    if added["memories"]:
        database["memories_fts"].insert_all(
            {"memory_id": memory["id"], "content": memory["content"]} for memory in rows["memories"]
        )
    added["maintctl_jobs"] = _add_job(connection, now)
    return added


def _add_job(connection: sqlite3.Connection, now) -> int:
    """Add the demo job of the app's workers (1; 0 where it is there already)."""
    from maintctl.jobs import definitions as jobs

    try:
        jobs.add(
            connection,
            "profile-maintenance",
            "profile_maintenance",
            every=timedelta(minutes=60),
            cron=None,
            tz="UTC",
            bot="*",
            config={"entity_id": "nick", "entity_type": "user"},
            timeout=jobs.DEFAULT_TIMEOUT,
            now=now,
        )
    except jobs.JobError:
        return 0
    return 1


def _memory(memory_id, owner, content, status, expires=None, media_path=None) -> dict:
    return {
        "id": memory_id,
        "owner_user_id": owner,
        "content": content,
        "status": status,
        "pending_expires_at": expires,
        "media_local_path": media_path,
    }


def _reminder(reminder_id, memory_id, owner, fire_at, recurrence) -> dict:
    return {
        "id": reminder_id,
        "memory_id": memory_id,
        "owner_user_id": owner,
        "fire_at": fire_at,
        "recurrence_minutes": recurrence,
        "fired": 0,
    }


def _event(event_id, owner, description, event_date: str, pending_since) -> dict:
    return {
        "id": event_id,
        "owner_user_id": owner,
        "description": description,
        "event_date": event_date,
        "status": "pending",
        "pending_since": pending_since,
    }
