"""What the runs of the app's jobs say, for history, job list, status,
stats and metrics: the recent runs of a job, its latest (of some statuses),
those finished since a time, its failures in a row."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from maintctl import timestamps
from maintctl.store.db import table_exists

COLUMNS = (
    "id",
    "job",
    "status",
    "scheduled_for",
    "skipped_occurrences",
    "by_hand",
    "enqueued_at",
    "finished_at",
    "duration_ms",
    "result",
    "error",
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM maintctl_job_runs"


@dataclass
class Run:
    id: str
    job: str
    status: str
    scheduled_for: str
    skipped_occurrences: int
    by_hand: int
    enqueued_at: str | None
    finished_at: str | None
    duration_ms: int | None
    result: str | None
    error: str | None

    def as_json(self) -> dict:
        """Its fields as JSON can hold them, whatever a hand put in the row (bytes as escaped text)."""
        try:
            result = json.loads(self.result) if isinstance(self.result, str) else _plain(self.result)
        except (ValueError, RecursionError):
            result = self.result
        return {
            "job_run_id": _plain(self.id),
            "job": _plain(self.job),
            "status": _plain(self.status),
            "scheduled_for": _plain(self.scheduled_for),
            "skipped_occurrences": self.skipped_occurrences if isinstance(self.skipped_occurrences, int) else None,
            "by_hand": bool(self.by_hand),
            "enqueued_at": _plain(self.enqueued_at),
            "finished_at": _plain(self.finished_at),
            "duration_ms": self.duration_ms if isinstance(self.duration_ms, int) else None,
            "result": result,
            "error": _plain(self.error),
        }


def _plain(value):
    """Given a value read from a run's row, return it as JSON holds it (bytes as text, escaped where not UTF-8)."""
    if isinstance(value, bytes):
        return value.decode(errors="backslashreplace")
    return value if value is None or isinstance(value, (str, int, float)) else str(value)


def recent(connection: sqlite3.Connection, job: str, limit: int) -> list[Run]:
    """Return up to `limit` runs of the job, newest first."""
    if not table_exists(connection, "maintctl_job_runs"):
        return []
    rows = connection.execute(
        f"{_SELECT} WHERE job = ? ORDER BY scheduled_for DESC, rowid DESC LIMIT ?", (job, limit)
    ).fetchall()
    return [Run(*row) for row in rows]


def latest(connection: sqlite3.Connection, job: str, statuses: tuple[str, ...] | None = None) -> Run | None:
    """Return the job's newest run (with one of the statuses, where given)."""
    if not table_exists(connection, "maintctl_job_runs"):
        return None
    where, values = ("", ()) if statuses is None else (f" AND status IN ({', '.join('?' * len(statuses))})", statuses)
    row = connection.execute(
        f"{_SELECT} WHERE job = ?{where} ORDER BY scheduled_for DESC, rowid DESC LIMIT 1", (job, *values)
    ).fetchone()
    return Run(*row) if row else None


def finished_since(connection: sqlite3.Connection, job: str, start: datetime) -> list[Run]:
    """Return the job's finished runs scheduled at or after `start`, oldest first."""
    if not table_exists(connection, "maintctl_job_runs"):
        return []
    rows = connection.execute(
        f"{_SELECT} WHERE job = ? AND scheduled_for >= ? AND status IN ('success', 'failed', 'skipped')"
        " ORDER BY scheduled_for, rowid",
        (job, timestamps.format_instant(start)),
    ).fetchall()
    return [Run(*row) for row in rows]


def failures_in_a_row(connection: sqlite3.Connection, job: str) -> int:
    """Return how many of the job's latest finished runs failed, counting back to its last success."""
    if not table_exists(connection, "maintctl_job_runs"):
        return 0
    (count,) = connection.execute(
        "SELECT count(*) FROM maintctl_job_runs WHERE job = ? AND status = 'failed' AND scheduled_for >"
        " coalesce((SELECT max(scheduled_for) FROM maintctl_job_runs WHERE job = ? AND status = 'success'), '')",
        (job, job),
    ).fetchone()
    return count
