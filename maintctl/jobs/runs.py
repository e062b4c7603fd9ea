"""The runs of the app's jobs, kept in maintctl_job_runs: one row per
occurrence enqueued or skipped, and per run asked for by hand.

A run goes pending (its message queued in the outbox, in the same
transaction as the row) → running (the message is on the stream) → success
or failed (the worker's result, or no result within the job's timeout); an
occurrence that comes while the previous run has no result is skipped. The
table's unique key (job, scheduled_for, by_hand) is what makes an occurrence
one run, however many passes try it at once: the second insert is ignored,
and with it the second message.

Every time a run records is read from the pass's clock (--now, where given):
enqueued_at is the now of the pass that delivered its message, a timeout is
judged against the now of a later pass. How long the worker took is measured
on Redis's clock alone, from the message's stream entry to the result's (their
ids), and finished_at is enqueued_at plus that, never after the now of the pass
that reads the result.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from maintctl import json_text, timestamps
from maintctl.store.db import table_exists

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS maintctl_job_runs (
    id TEXT PRIMARY KEY,
    job TEXT NOT NULL,
    scheduled_for TEXT NOT NULL,
    by_hand INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    skipped_occurrences INTEGER NOT NULL DEFAULT 0,
    queued_at TEXT NOT NULL,
    enqueued_at TEXT,
    finished_at TEXT,
    duration_ms INTEGER,
    result TEXT,
    error TEXT,
    entry_id TEXT,
    UNIQUE (job, scheduled_for, by_hand)
)"""

# The runs waiting for a result: what every pass asks about, however long the history.
INDEXES = (
    (
        "CREATE INDEX IF NOT EXISTS maintctl_job_runs_open ON maintctl_job_runs (job)"
        " WHERE status IN ('pending', 'running')"
    ),
)

MSG_PREFIX = "job:"  # the msg_id of a run's message is `job:<run id>`
OPEN = ("pending", "running")
FINISHED = ("success", "failed")


def entry_time(entry_id: str) -> datetime:
    """Given a stream entry's id (milliseconds-sequence), return when Redis added it."""
    milliseconds = int(entry_id.split("-", 1)[0])
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=milliseconds)


# A run's time as maintctl writes it; one spoiled by hand is passed over.
_CANONICAL_GLOB = "[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9]Z"


def last_scheduled(connection: sqlite3.Connection, job: str, since: datetime, now: datetime) -> datetime | None:
    """Return the job's latest occurrence, run or skipped, from `since` (when
    the job was added: an earlier job of that name is not this one's) to now
    (one dated later, by a later --now or a clock since put back, is not
    taken for the last). Runs by hand are not occurrences."""
    if not table_exists(connection, "maintctl_job_runs"):
        return None
    (latest,) = connection.execute(
        "SELECT max(scheduled_for) FROM maintctl_job_runs WHERE job = ? AND by_hand = 0"
        " AND scheduled_for BETWEEN ? AND ? AND scheduled_for GLOB ?",
        (job, timestamps.format_instant(since), timestamps.format_instant(now), _CANONICAL_GLOB),
    ).fetchone()
    try:
        return timestamps.from_canonical(latest) if latest else None
    except ValueError:  # an impossible date written by hand
        return None


def open_run(connection: sqlite3.Connection, job: str) -> str | None:
    """Return the id of the job's run that waits for its result, None where none does."""
    row = connection.execute(
        "SELECT id FROM maintctl_job_runs WHERE job = ? AND status IN ('pending', 'running') LIMIT 1", (job,)
    ).fetchone()
    return row[0] if row else None


def insert(
    connection: sqlite3.Connection,
    run_id: str,
    job: str,
    scheduled_for: datetime,
    status: str,
    skipped_occurrences: int,
    by_hand: bool,
    now: datetime,
) -> bool:
    """Inside the caller's transaction, record a run; return False where
    that occurrence has its run already (another pass made it)."""
    return bool(
        connection.execute(
            "INSERT OR IGNORE INTO maintctl_job_runs (id, job, scheduled_for, by_hand, status, skipped_occurrences,"
            " queued_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                job,
                timestamps.format_instant(scheduled_for),
                int(by_hand),
                status,
                skipped_occurrences,
                timestamps.format_instant(now),
            ),
        ).rowcount
    )


def add_entry_column(connection: sqlite3.Connection) -> None:
    """Inside the caller's transaction, give a runs table made before runs
    kept their message's stream entry id (entry_id) that column."""
    columns = {row[1] for row in connection.execute("PRAGMA table_info(maintctl_job_runs)")}
    if columns and "entry_id" not in columns:
        connection.execute("ALTER TABLE maintctl_job_runs ADD COLUMN entry_id TEXT")


def stream_of(msg_id: str, settings) -> str | None:
    """Given a queued message's id, return the jobs' stream for a run's message (None for any other)."""
    return settings.job_stream if msg_id.startswith(MSG_PREFIX) else None


def mark_enqueued(connection: sqlite3.Connection, delivered: Iterable[tuple[str, str]], now: datetime) -> None:
    """Inside the caller's transaction, given (msg_id, stream entry id) pairs
    of messages now on their streams, mark the runs among them running,
    enqueued at the pass's now."""
    delivered = [
        (msg_id.removeprefix(MSG_PREFIX), entry) for msg_id, entry in delivered if msg_id.startswith(MSG_PREFIX)
    ]
    if not delivered:
        return
    add_entry_column(connection)
    connection.executemany(
        "UPDATE maintctl_job_runs SET status = 'running', enqueued_at = ?, entry_id = ? WHERE id = ? AND status = 'pending'",
        ((timestamps.format_instant(now), entry, run_id) for run_id, entry in delivered),
    )


def overdue(connection: sqlite3.Connection, now: datetime) -> list[tuple[str, str, float]]:
    """Return the running runs whose job's timeout has passed: (run id, job, timeout in seconds)."""
    return connection.execute(
        "SELECT run.id, run.job, coalesce(job.timeout_seconds, 3600) AS timeout FROM maintctl_job_runs run"
        " LEFT JOIN maintctl_jobs job ON job.name = run.job"
        " WHERE run.status IN ('pending', 'running') AND run.enqueued_at IS NOT NULL"
        " AND coalesce(julianday(run.enqueued_at) + timeout / 86400.0 <= julianday(?), 1)",
        (timestamps.format_instant(now),),
    ).fetchall()


def time_out(connection: sqlite3.Connection, run_id: str, error: str, now: datetime) -> bool:
    """Inside the caller's transaction, fail a run that had no result in time; False where it had one meanwhile."""
    return bool(
        connection.execute(
            "UPDATE maintctl_job_runs SET status = 'failed', error = ?, finished_at = ?,"
            " duration_ms = max(0, CAST(round((julianday(?) - julianday(enqueued_at)) * 86400000) AS INTEGER))"
            " WHERE id = ? AND status IN ('pending', 'running')",
            (error, timestamps.format_instant(now), timestamps.format_instant(now), run_id),
        ).rowcount
    )


def status_of(connection: sqlite3.Connection, run_id: str) -> str | None:
    """Return the run's status, None where there is no such run."""
    row = connection.execute("SELECT status FROM maintctl_job_runs WHERE id = ?", (run_id,)).fetchone()
    return row[0] if row else None


def finish(
    connection: sqlite3.Connection, run_id: str, status: str, result, error: str | None, entry: str, now
) -> bool:
    """Inside the caller's transaction, record a worker's result (from the
    stream entry `entry`, read in the pass at `now`) for a run that waits for
    one (in a runs table with its entry_id: see add_entry_column); False
    where the run had its outcome already."""
    row = connection.execute(
        "SELECT coalesce(enqueued_at, queued_at), entry_id FROM maintctl_job_runs"
        " WHERE id = ? AND status IN ('pending', 'running')",
        (run_id,),
    ).fetchone()
    if row is None:
        return False
    enqueued, took = _took(row[0], row[1], entry, now)
    finished_at = timestamps.shift(enqueued, took) if enqueued else now
    return bool(
        connection.execute(
            "UPDATE maintctl_job_runs SET status = ?, result = ?, error = ?, finished_at = ?, duration_ms = ?,"
            " enqueued_at = coalesce(enqueued_at, queued_at) WHERE id = ? AND status IN ('pending', 'running')",
            (
                status,
                json_text.encode(result) if result is not None else None,
                error,
                timestamps.format_instant(finished_at),
                round(took.total_seconds() * 1000) if enqueued else None,
                run_id,
            ),
        ).rowcount
    )


def _took(enqueued_text, message_entry, result_entry: str, now: datetime) -> tuple[datetime | None, timedelta]:
    """Given when a run was enqueued (the pass's clock), its message's stream
    entry id (None where not known) and its result's, return when it was
    enqueued (None where the row's value names no instant) and how long the
    worker took: on Redis's clock from the one entry to the other (where the
    message's entry is not known, from enqueued_at), at least nothing and at
    most what the pass's clock has seen pass since it was enqueued."""
    try:
        enqueued = timestamps.parse_instant(enqueued_text)
    except (ValueError, TypeError):
        return None, timedelta(0)
    result_at, message_at = _entry_time_or_none(result_entry), _entry_time_or_none(message_entry)
    if result_at and message_at:
        took = result_at - message_at
    else:
        took = (result_at or now) - enqueued
    return enqueued, max(timedelta(0), min(took, now - enqueued))


def _entry_time_or_none(entry_id) -> datetime | None:
    try:
        return entry_time(entry_id)
    except (ValueError, TypeError, AttributeError, OverflowError):  # not an entry id (a row spoiled by hand)
        return None
