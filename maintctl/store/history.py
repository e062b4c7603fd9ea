"""Run history: one maintctl_runs row per action per run (dry runs excepted),
and the questions asked of it: the recent runs, the last run and last success
of each action, and statistics over a period.

A row is written when its action first begins in the run (status running),
its counts are brought up to date in the transaction of each batch it commits,
and it is finished when the run ends. A run killed on the way (SIGKILL, the
OOM killer, a power cut) leaves its rows running with what it committed: they
read as interrupted once their process is gone or a later run of the action
has begun (runs of a database take turns at its lock). Nothing is written
for the run before it commits something: a run with nothing to do writes its
history once, at its end, and a damaged database is not written at all."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from maintctl import __version__, json_text, timestamps, utf8
from maintctl.store import openers
from maintctl.store.db import table_exists, transaction

if TYPE_CHECKING:
    from maintctl.results import ActionResult, Report

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
    status: str  # ok | failed | skipped | running | interrupted
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


def _values(run: Run) -> tuple:
    return tuple(
        json_text.encode(run.counts) if name == "counts" else utf8.bindable(getattr(run, name)) for name in COLUMNS
    )


_INSERT = f"INSERT INTO maintctl_runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_UPDATE = f"UPDATE maintctl_runs SET ({', '.join(COLUMNS)}) = ({', '.join('?' * len(COLUMNS))}) WHERE id = ?"


def record(connection: sqlite3.Connection, runs: list[Run], rows: dict[str, int] | None = None) -> None:
    """Write the runs' rows, in one transaction (even while the run is being
    stopped: a stopped run is recorded too): those kept as they ran (their
    row ids in `rows`, by action) finished, the others added."""
    rows = rows or {}
    with transaction(connection, heed_stop=False):
        connection.execute(TABLE_SQL)
        for run in runs:
            if run.action not in rows or not connection.execute(_UPDATE, (*_values(run), rows[run.action])).rowcount:
                connection.execute(_INSERT, _values(run))


_INTERRUPTED = "its process ended before the run did (killed?); the counts are what it committed"


def progress_hook(report: Report, name: str, this_pass: ActionResult, clock: float):
    """Return what keeps the action's history row, inside each transaction
    in which it commits a batch: made running at the first, then brought up
    to date with all the run has done (its earlier passes included) and how
    long it has taken, from `clock` (time.monotonic() when this pass began it)."""
    before = report.result_for(name)  # what its earlier passes in this run did
    started = before.started if before and before.started else this_pass.started

    def committing(connection: sqlite3.Connection, batch_counts: dict[str, int]) -> None:
        counts = dict(before.counts) if before else {}
        for done in (this_pass.counts, batch_counts):
            for kind, count in done.items():
                counts[kind] = counts.get(kind, 0) + count
        seconds = (before.duration if before else 0.0) + time.monotonic() - clock
        run = new_run(report.run_id, name, started, seconds, "running", None, counts, None)
        _rows_in(report, connection)
        row = report.history_rows.get(name)
        if row is None or not connection.execute(_UPDATE, (*_values(run), row)).rowcount:
            connection.execute(TABLE_SQL)
            report.history_rows[name] = connection.execute(_INSERT, _values(run)).lastrowid

    return committing


def _rows_in(report: Report, connection: sqlite3.Connection) -> None:
    """Forget the run's history rows where they were written into another file than the connection's (a
    window that followed its path to a new file writes its rows anew there)."""
    if report.history_in is not connection:
        report.history_rows.clear()
        report.history_in = connection


# A row whose start cannot be read (written by hand, say) is never taken for an
# action's last run: its schedule goes by the last one that can be read.
_CANONICAL_GLOB = "[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9]Z"


def _run(row: tuple) -> Run:
    """Given a maintctl_runs row (and whether a later run of its action has
    begun), return its Run (counts that cannot be read are none; a running
    one whose process is gone, or that a later run followed, interrupted)."""
    values, superseded = dict(zip(COLUMNS, row)), row[len(COLUMNS)]
    try:
        counts = json.loads(values["counts"])
    except (TypeError, ValueError):
        counts = {}
    values["counts"] = counts if isinstance(counts, dict) else {}
    if values["status"] == "running" and (superseded or not _alive(values["host"], values["pid"])):
        values["status"], values["reason"] = "interrupted", _INTERRUPTED
    return Run(**values)


def _alive(host, pid) -> bool:
    """Given the host and pid of a run, return whether its process may still be running (on another host: yes)."""
    if host != os.uname().nodename:
        return True
    return openers.running(pid)


_SELECT = (
    f"SELECT {', '.join(COLUMNS)}, CASE WHEN status = 'running' THEN EXISTS (SELECT 1 FROM maintctl_runs AS later"
    " WHERE later.action = maintctl_runs.action AND later.id > maintctl_runs.id) END FROM maintctl_runs"
)


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
    _rows_in(report, connection)
    try:
        record(connection, runs, report.history_rows)
    except sqlite3.Error as error:
        report.run_warnings.append(f"run history not recorded: {error}")


def _damaged(error: str | None) -> bool:
    return error is not None and ("malformed" in error or "not a database" in error)
