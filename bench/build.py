"""Databases as the Core app would write them: its schema (through `maintctl init-db`),
canonical timestamps, a tenth of the due reminders recurring."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
USERS = 1000


def stamp(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


def past(index: int, span: timedelta) -> str:
    """A canonical instant before NOW, spread over span."""
    return _past(index % 997, span)


def future(index: int) -> str:
    return _future(index % 525_600)


@cache
def _past(step: int, span: timedelta) -> str:
    return stamp(NOW - timedelta(seconds=1) - span * (step / 997))


@cache
def _future(step: int) -> str:
    return stamp(NOW + timedelta(minutes=1 + step))


def _init_db(path: Path) -> None:
    subprocess.run([sys.executable, "-m", "maintctl", "init-db", "--db", str(path), "--quiet"], check=True)


def _database(path: Path) -> sqlite3.Connection:
    """The schema by init-db, its indexes dropped until the rows are in (building them after is faster)."""
    _init_db(path)
    connection = sqlite3.connect(path, isolation_level=None)
    for (index,) in connection.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'index' AND name LIKE 'maintctl_%'"
    ).fetchall():
        connection.execute(f"DROP INDEX {index}")
    connection.execute("PRAGMA journal_mode = OFF")
    connection.execute("PRAGMA synchronous = OFF")
    connection.execute("BEGIN")
    connection.executemany("INSERT INTO users (telegram_user_id) VALUES (?)", ((1000 + user,) for user in range(USERS)))
    return connection


def _finish(connection: sqlite3.Connection, path: Path) -> None:
    connection.execute("COMMIT")
    connection.execute("PRAGMA journal_mode = DELETE")
    connection.close()
    _init_db(path)


def _memories(
    connection: sqlite3.Connection, count: int, status="confirmed", expires=None, media=None, offset=0, indexed=True
):
    rows = [
        (
            f"m{offset + index}",
            1000 + index % USERS,
            f"memory {offset + index}: buy milk, call mum, the usual",
            status,
            expires(index) if expires else None,
            media(index) if media else None,
        )
        for index in range(count)
    ]
    connection.executemany(
        "INSERT INTO memories (id, owner_user_id, content, status, pending_expires_at, media_local_path)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    if indexed:
        connection.executemany(
            "INSERT INTO memories_fts (memory_id, content) VALUES (?, ?)", ((r[0], r[2]) for r in rows)
        )


def reminders(path: Path, due: int, later: int) -> None:
    """`due` reminders due (a tenth recurring hourly), `later` not yet, each with its memory."""
    connection = _database(path)
    _memories(connection, due + later)
    connection.executemany(
        "INSERT INTO reminders (id, memory_id, owner_user_id, fire_at, recurrence_minutes, fired) VALUES (?, ?, ?, ?, ?, 0)",
        (
            (
                f"r{index}",
                f"m{index}",
                1000 + index % USERS,
                past(index, timedelta(hours=1)) if index < due else future(index),
                60 if index < due and index % 10 == 0 else None,
            )
            for index in range(due + later)
        ),
    )
    _finish(connection, path)


def pending(path: Path, expired: int, later: int) -> None:
    """`expired` pending uploads past their deadline, each with a file (made by media_files), `later` still pending."""
    connection = _database(path)
    _memories(connection, expired, "pending", lambda i: past(i, timedelta(days=1)), lambda i: f"u/{i % 100}/{i}.jpg")
    _memories(connection, later, "pending", future, offset=expired)
    _finish(connection, path)


def media_files(directory: Path, expired: int) -> None:
    for bucket in range(100):
        (directory / "u" / str(bucket)).mkdir(parents=True, exist_ok=True)
    for index in range(expired):
        descriptor = os.open(f"{directory}/u/{index % 100}/{index}.jpg", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(descriptor, b"jpeg")
        os.close(descriptor)


def tags(path: Path, stale: int, fresh: int) -> None:
    connection = _database(path)
    _memories(connection, stale + fresh)
    connection.executemany(
        "INSERT INTO memory_tags (memory_id, tag, status, suggested_at) VALUES (?, 'idea', 'suggested', ?)",
        (
            (
                f"m{index}",
                past(index, timedelta(days=3))
                if index >= stale
                else stamp(NOW - timedelta(days=8, seconds=index % 997)),
            )
            for index in range(stale + fresh)
        ),
    )
    _finish(connection, path)


def events(path: Path, stale: int, fresh: int) -> None:
    connection = _database(path)
    connection.executemany(
        "INSERT INTO events (id, owner_user_id, description, event_date, status, pending_since) VALUES (?, ?, ?, ?, 'pending', ?)",
        (
            (
                f"e{index}",
                1000 + index % USERS,
                f"event {index}: dentist",
                "2026-12-01",
                stamp(NOW - timedelta(hours=25, seconds=index % 997))
                if index < stale
                else past(index, timedelta(hours=12)),
            )
            for index in range(stale + fresh)
        ),
    )
    _finish(connection, path)


def idle(path: Path, size: int) -> None:
    """`size` reminders and `size` memories, nothing due anywhere (the search
    index left empty: no idle question reads it)."""
    connection = _database(path)
    _memories(connection, size, indexed=False)
    connection.executemany(
        "INSERT INTO reminders (id, memory_id, owner_user_id, fire_at, recurrence_minutes, fired) VALUES (?, ?, ?, ?, NULL, ?)",
        (
            (
                f"r{index}",
                f"m{index}",
                1000 + index % USERS,
                future(index) if index % 2 else past(index, timedelta(days=30)),
                index % 2 == 0,
            )
            for index in range(size)
        ),
    )
    _finish(connection, path)


def audit(path: Path, old: int, young: int) -> None:
    """The app's audit_log with `old` rows from 200 days ago (a tenth of them
    `fired`, which the benchmark's rule keeps) and `young` from the last
    days, as a year of a busy app leaves it."""
    connection = _database(path)
    connection.executemany(
        "INSERT INTO audit_log (entity_type, entity_id, action, actor, details, created_at) VALUES (?, ?, ?, ?, NULL, ?)",
        (
            (
                "reminder",
                f"r{index}",
                "fired" if index % 10 == 0 else "created",
                "app",
                stamp(NOW - timedelta(days=200, seconds=index % 86_400))
                if index < old
                else past(index, timedelta(days=3)),
            )
            for index in range(old + young)
        ),
    )
    _finish(connection, path)
