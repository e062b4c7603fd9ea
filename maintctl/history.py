"""Run history: one maintctl_runs row per action per run (dry runs excepted),
and the questions asked of it: the recent runs, the last run and last success
of each action, and statistics over a period."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from maintctl import __version__, json_text, timestamps
from maintctl.db import table_exists, transaction

if TYPE_CHECKING:
    from maintctl.results import Report

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS maintctl_runs (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    action TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT NOT NULL,
    duration_seconds REAL NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    counts TEXT NOT NULL,
    error TEXT,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    version TEXT NOT NULL
)"""

INDEXES = ("CREATE INDEX IF NOT EXISTS maintctl_runs_action ON maintctl_runs (action, id)",)

COLUMNS = (
    "run_id",
    "action",
    "started_at",
    "ended_at",
    "duration_seconds",
    "status",
    "reason",
    "counts",
    "error",
    "host",
    "pid",
    "version",
)


@dataclass
class Run:
    """One action's part in one run, as recorded."""

    run_id: str
    action: str
    started_at: str
    ended_at: str
    duration_seconds: float
    status: str  # ok | failed | skipped
    reason: str | None
    counts: dict[str, int]
    error: str | None
    host: str
    pid: int
    version: str

    @property
    def started(self) -> datetime:
        """When it began (the epoch where its row cannot be read: see _CANONICAL_GLOB)."""
        try:
            return timestamps.from_canonical(self.started_at)
        except (TypeError, ValueError):
            return datetime(1970, 1, 1, tzinfo=UTC)

    def as_json(self) -> dict:
        return {name: getattr(self, name) for name in COLUMNS}


def new_run(
    run_id: str,
    action: str,
    started: datetime,
    duration: float,
    status: str,
    reason: str | None,
    counts: dict[str, int],
    error: str | None,
) -> Run:
    """Given what an action did in this process, return its history row."""
    return Run(
        run_id=run_id,
        action=action,
        started_at=timestamps.format_instant(started),
        ended_at=timestamps.format_instant(timestamps.shift(started, timedelta(seconds=duration))),
        duration_seconds=round(duration, 3),
        status=status,
        reason=reason,
        counts=counts,
        error=error,
        host=os.uname().nodename,  # the host name (socket.gethostname() says the same, at an import's cost)
        pid=os.getpid(),
        version=__version__,
    )


def record(connection: sqlite3.Connection, runs: list[Run]) -> None:
    """Write the runs' rows, in one transaction (even while the run is being
    stopped: a stopped run is recorded too)."""
    with transaction(connection, heed_stop=False):
        connection.execute(TABLE_SQL)
        connection.executemany(
            f"INSERT INTO maintctl_runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
            (
                tuple(
                    json_text.encode(run.counts) if name == "counts" else json_text.storable(getattr(run, name))
                    for name in COLUMNS
                )
                for run in runs
            ),
        )


# A row whose start cannot be read (written by hand, say) is never taken for an
# action's last run: its schedule goes by the last one that can be read.
_CANONICAL_GLOB = "[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9]Z"


def _run(row: tuple) -> Run:
    """Given a maintctl_runs row, return its Run (counts that cannot be read are none)."""
    values = dict(zip(COLUMNS, row))
    try:
        counts = json.loads(values["counts"])
    except (TypeError, ValueError):
        counts = {}
    values["counts"] = counts if isinstance(counts, dict) else {}
    return Run(**values)


_SELECT = f"SELECT {', '.join(COLUMNS)} FROM maintctl_runs"


def recent(connection: sqlite3.Connection, action: str | None, limit: int) -> list[Run]:
    """Return up to `limit` runs (of one action, or of all), newest first."""
    if not table_exists(connection, "maintctl_runs"):
        return []
    if action is None:
        rows = connection.execute(f"{_SELECT} ORDER BY id DESC LIMIT ?", (limit,))
    else:
        rows = connection.execute(f"{_SELECT} WHERE action = ? ORDER BY id DESC LIMIT ?", (action, limit))
    return [_run(row) for row in rows]


def last(connection: sqlite3.Connection, action: str, statuses: tuple[str, ...] = ("ok", "failed")) -> Run | None:
    """Return the action's newest run with one of the statuses, or None."""
    if not table_exists(connection, "maintctl_runs"):
        return None
    marks = ", ".join("?" * len(statuses))
    rows = connection.execute(
        f"{_SELECT} WHERE action = ? AND +status IN ({marks}) AND started_at GLOB ? ORDER BY id DESC LIMIT 1",
        (action, *statuses, _CANONICAL_GLOB),
    ).fetchall()
    return _run(rows[0]) if rows else None


def since(connection: sqlite3.Connection, start: datetime) -> list[Run]:
    """Return the runs that started at or after `start`, oldest first."""
    if not table_exists(connection, "maintctl_runs"):
        return []
    rows = connection.execute(f"{_SELECT} WHERE started_at >= ? ORDER BY id", (timestamps.format_instant(start),))
    return [_run(row) for row in rows]


def record_report(connection: sqlite3.Connection, report: Report) -> None:
    """Write the run's history rows; a failure to is a warning, never the run's failure."""
    runs = [
        new_run(
            report.run_id,
            result.action,
            result.started or report.settings.now,
            result.duration,
            result.status,
            reason=result.reason or ("; ".join(result.notes) or None),
            counts=result.counts,
            error=result.error,
        )
        for result in report.actions
        if result.recorded
    ]
    damaged = next((result.error for result in report.actions if _damaged(result.error)), None)
    if damaged:
        report.run_warnings.append("run history not recorded: the database is damaged, and is left as it is")
        return
    if connection.stop.is_set():  # a stopped run waits a moment for the lock, not the whole busy timeout
        connection.busy_timeout = min(connection.busy_timeout, 1.0)
    try:
        record(connection, runs)
    except sqlite3.Error as error:
        report.run_warnings.append(f"run history not recorded: {error}")


def _damaged(error: str | None) -> bool:
    return error is not None and ("malformed" in error or "not a database" in error)
