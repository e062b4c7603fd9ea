"""The app's recurring jobs' definitions, kept in maintctl_jobs: checked as
they are added, read back as Jobs (jobs/job.py: when each is due), paused,
resumed and removed. A run of a job is a message for the app's workers (see
jobs/runs.py for the runs and actions/enqueue_jobs.py for the pass that
enqueues them); maintctl only schedules and tracks the work.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta

from maintctl import timestamps
from maintctl.cron import ScheduleError, check_schedule, duration_text
from maintctl.jobs import runs as job_runs
from maintctl.jobs.job import Job
from maintctl.store.db import table_exists, transaction

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS maintctl_jobs (
    name TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    bot TEXT NOT NULL,
    config TEXT NOT NULL,
    every_seconds REAL,
    cron TEXT,
    tz TEXT,
    timeout_seconds REAL NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    added_at TEXT NOT NULL,
    paused_at TEXT
)"""

DEFAULT_TIMEOUT = timedelta(hours=1)
SHORTEST = timedelta(seconds=1)  # the most often a job runs


class JobError(ValueError):
    """A definition that cannot be kept, or a name that is not a job's; the message says why."""


_LONGEST_NAME = 200


def _text(value: str, what: str) -> str:
    """Given a name, a type or a bot, return it; raise JobError where it is empty, too long or not printable."""
    if not value.strip() or not value.isprintable() or len(value) > _LONGEST_NAME:
        shown = timestamps.quoted(value)
        raise JobError(f"{what}: {shown} is not {_LONGEST_NAME} printable characters at most, not all spaces")
    return value


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON that every reader takes")


def config_object(text: str) -> dict:
    """Given a job's config as JSON text, return the object; raise ValueError
    where it is not strict JSON (NaN and Infinity are not: JavaScript and Go
    refuse them), is nested beyond reason, holds a lone surrogate or is not
    an object."""
    try:
        config = json.loads(text, parse_constant=_refuse_constant)
        json.dumps(config, ensure_ascii=False).encode()
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error})") from None  # a lone surrogate (from a \ud800 escape) cannot be sent
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except UnicodeEncodeError:
        raise ValueError("holds a lone surrogate (\\ud800 to \\udfff), which is not text") from None
    if not isinstance(config, dict):
        raise ValueError(f"a JSON object is needed ({{...}}), not {type(config).__name__}")  # noqa: TRY004
    return config


def check_definition(
    name: str, job_type: str, every: timedelta | None, cron: str | None, tz: str, config_text: str, now: datetime
) -> dict:
    """Return the job's config as an object; raise JobError naming what is wrong with the definition."""
    _text(name, "the job's name")
    _text(job_type, "--type")
    if every is None and cron is None:
        raise JobError("a job needs a schedule: give --every DURATION or --cron EXPR")
    if tz != "UTC" and cron is None:
        raise JobError("--tz goes with --cron")
    if every is not None and every < SHORTEST:
        raise JobError(f"--every: {duration_text(every)} is too often: a job runs at most once a second")
    try:
        check_schedule(every, cron, tz, now)
    except ScheduleError as error:
        raise JobError(str(error)) from None
    try:
        return config_object(config_text)
    except ValueError as error:
        raise JobError(f"--config: {error}") from None


def add(
    connection: sqlite3.Connection,
    name: str,
    job_type: str,
    *,
    every: timedelta | None,
    cron: str | None,
    tz: str,
    bot: str,
    config: dict,
    timeout: timedelta,
    now: datetime,
) -> None:
    """Keep a new job (checked with check_definition); raise JobError where the name is in use."""
    _text(bot, "--bot")
    with transaction(connection):
        connection.execute(TABLE_SQL)
        inserted = connection.execute(
            "INSERT OR IGNORE INTO maintctl_jobs (name, type, bot, config, every_seconds, cron, tz, timeout_seconds,"
            " added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                job_type,
                bot,
                json.dumps(config, ensure_ascii=False),
                every.total_seconds() if every is not None else None,
                cron,
                tz if cron else None,
                timeout.total_seconds(),
                timestamps.format_instant(now),
            ),
        ).rowcount
    if not inserted:
        raise JobError(f"a job named {name!r} exists already (maintctl job remove {name} first)")


def load_all(connection: sqlite3.Connection) -> list[Job]:
    """Return every job, in the order of their names."""
    if not table_exists(connection, "maintctl_jobs"):
        return []
    rows = connection.execute(
        "SELECT name, type, bot, config, every_seconds, cron, tz, timeout_seconds, enabled, added_at"
        " FROM maintctl_jobs ORDER BY name"
    )
    return [_job(*row) for row in rows]


def named(connection: sqlite3.Connection, name: str) -> Job:
    """Return the job of that name; raise JobError naming it where there is none."""
    job = next((job for job in load_all(connection) if job.name == name), None)
    if job is None:
        raise JobError(f"no job is named {name!r} (maintctl job list shows them)")
    return job


def _job(name, job_type, bot, config, every, cron, tz, timeout, enabled, added_at) -> Job:
    """Given a maintctl_jobs row, return its Job; one that cannot be read is
    kept as broken, so that only that job is held back, with the reason."""
    try:
        job = Job(
            name=str(name),
            type=str(job_type),
            bot=str(bot),
            config=config_object(config) if isinstance(config, str) else config_object(""),
            every=timedelta(seconds=every) if every is not None else None,
            cron=cron,
            tz=tz or "UTC",
            timeout=timedelta(seconds=timeout),
            enabled=bool(enabled),
            added_at=timestamps.parse_instant(added_at),
        )
        if job.every is not None and not SHORTEST <= job.every <= timestamps.LONGEST:
            raise ValueError(f"an interval of {every!r} seconds")
        if not timedelta(0) < job.timeout <= timestamps.LONGEST:
            raise ValueError(f"a timeout of {timeout!r} seconds")
        if (job.every is None) == (job.cron is None):
            raise ValueError("it needs one schedule, --every or --cron")
        if job.cron is not None:
            check_schedule(None, job.cron, job.tz, job.added_at)
        return job
    except (TypeError, ValueError, OverflowError, UnicodeError) as error:
        reason = f"its definition cannot be read ({error}); remove it and add it again"
        return Job(
            str(name),
            str(job_type),
            str(bot),
            {},
            None,
            None,
            "UTC",
            DEFAULT_TIMEOUT,
            bool(enabled),
            timestamps.LATEST,
            broken=reason,
        )


def remove(connection: sqlite3.Connection, name: str, now: datetime) -> int:
    """Forget the job; its runs stay in the history until prune, those that
    wait for a result failed (so that a job added again under its name does
    not wait for them), and the messages of those not yet on the stream
    withdrawn (no worker does a removed job's work). Return how many were
    withdrawn; raise JobError where there is no such job."""
    withdrawn = 0
    with transaction(connection):
        removed = (
            table_exists(connection, "maintctl_jobs")
            and connection.execute("DELETE FROM maintctl_jobs WHERE name = ?", (name,)).rowcount
        )
        if removed and table_exists(connection, "maintctl_job_runs"):
            if table_exists(connection, "maintctl_outbox"):
                withdrawn = connection.execute(
                    "DELETE FROM maintctl_outbox WHERE delivered_at IS NULL AND msg_id IN"
                    " (SELECT ? || id FROM maintctl_job_runs WHERE job = ? AND status = 'pending')",
                    (job_runs.MSG_PREFIX, name),
                ).rowcount
            connection.execute(
                "UPDATE maintctl_job_runs SET status = 'failed', error = 'the job was removed', finished_at = ?"
                " WHERE job = ? AND status IN ('pending', 'running')",
                (timestamps.format_instant(now), name),
            )
    if not removed:
        named(connection, name)  # raises, naming it
    return withdrawn


def set_enabled(connection: sqlite3.Connection, name: str, enabled: bool, now: datetime) -> bool:
    """Pause or resume the job; return False where it was so already. Raise JobError where there is none."""
    named(connection, name)
    with transaction(connection):
        changed = connection.execute(
            "UPDATE maintctl_jobs SET enabled = ?, paused_at = ? WHERE name = ? AND enabled != ?",
            (int(enabled), None if enabled else timestamps.format_instant(now), name, int(enabled)),
        ).rowcount
    return bool(changed)
