"""The workers' results, read from the results stream into the runs of the
app's jobs, each once.

Where reading got to is kept in the database (maintctl_meta), in the
transaction that records the results it read: a pass killed at any instant
reads again exactly what it had not recorded, and the runs and the position
never disagree (a consumer group would keep the position in Redis, apart from
the runs it moves on). A dry run reads the same entries and records nothing.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

from maintctl import job_runs, outbox
from maintctl.config import Settings
from maintctl.db import table_exists, transaction

READ_COUNT = 1000  # entries read per transaction
WARNINGS_LISTED = 100  # entries that are not results are named up to this many per pass; the rest are counted


@dataclass
class Reading:
    recorded: list[tuple[str, str, str]] = field(default_factory=list)  # (run id, job, status) of each result taken
    foreign: int = 0  # results for runs this database does not have (another's, sharing the stream?)
    repeated: int = 0  # results for runs that had their outcome already
    warnings: list[str] = field(default_factory=list)
    unlisted: int = 0  # entries that are not results, beyond those named


def read(connection: sqlite3.Connection, settings: Settings) -> Reading:
    """Read the results that arrived since the last pass into their runs (a
    dry run: say which it would), a transaction per READ_COUNT entries.
    Raise DeliveryError where Redis cannot be read."""
    import redis

    client = outbox.redis_client(settings)
    reading = Reading()
    start = position(connection, settings.job_results)
    taken: set[str] = set()
    try:
        while connection.may_go_on():
            entries = client.xrange(settings.job_results, min=f"({start}", count=READ_COUNT)
            if not entries:
                break
            if settings.dry_run:
                for entry_id, fields in entries:
                    _take(connection, entry_id.decode(), fields, settings, reading, taken)
            else:
                with transaction(connection):
                    for entry_id, fields in entries:
                        _take(connection, entry_id.decode(), fields, settings, reading, taken)
                    keep_position(connection, settings.job_results, entries[-1][0].decode())
            start = entries[-1][0].decode()
            if len(entries) < READ_COUNT:
                break
    except (redis.RedisError, OSError, ValueError, UnicodeError) as error:
        raise outbox.DeliveryError(outbox.describe_error(error, settings)) from None
    finally:
        client.close()
    return reading


def _take(
    connection: sqlite3.Connection, entry_id: str, fields: dict, settings: Settings, reading: Reading, taken: set
) -> None:
    """Given one entry of the results stream, record it in its run (in a dry run, note that it would be)."""
    try:
        run_id, status, result, error = _result(fields)
    except ValueError as problem:
        if len(reading.warnings) < WARNINGS_LISTED:
            reading.warnings.append(f"{settings.job_results} entry {entry_id}: not a result ({problem}); skipped")
        else:
            reading.unlisted += 1
        return
    had = job_runs.status_of(connection, run_id)
    if had is None:
        reading.foreign += 1
    elif had not in job_runs.OPEN or run_id in taken:
        reading.repeated += 1
    elif settings.dry_run or job_runs.finish(connection, run_id, status, result, error, job_runs.entry_time(entry_id)):
        taken.add(run_id)
        (job,) = connection.execute("SELECT job FROM maintctl_job_runs WHERE id = ?", (run_id,)).fetchone()
        reading.recorded.append((run_id, job, status))


def _result(fields: dict) -> tuple[str, str, object, str | None]:
    """Given a results entry's fields, return its run id, status, result and
    error; raise ValueError saying why it is not a result as the contract has it."""
    data = fields.get(b"data")
    if data is None:
        raise ValueError("no data field")
    try:
        document = json.loads(data.decode())
    except UnicodeDecodeError:
        raise ValueError("data is not UTF-8") from None
    except RecursionError:
        raise ValueError("data is nested too deeply") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"data is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise ValueError("data is not a JSON object")  # noqa: TRY004
    run_id, status, error = document.get("job_run_id"), document.get("status"), document.get("error")
    if not isinstance(run_id, str):
        raise ValueError("job_run_id is missing or not text")
    if status not in ("success", "failed"):
        raise ValueError("status is not success or failed")
    if error is not None and not isinstance(error, str):
        raise ValueError("error is not text")
    return run_id, status, document.get("result"), error


def _position_key(stream: str) -> str:
    return f"results_read:{stream}"


def position(connection: sqlite3.Connection, stream: str) -> str:
    """Return the id of the last entry of the results stream read into the runs ('0-0': none yet)."""
    if not table_exists(connection, "maintctl_meta"):
        return "0-0"
    row = connection.execute("SELECT value FROM maintctl_meta WHERE key = ?", (_position_key(stream),)).fetchone()
    return row[0] if row else "0-0"


def keep_position(connection: sqlite3.Connection, stream: str, entry_id: str) -> None:
    """Inside the transaction that records the results, keep where reading got to."""
    from maintctl import identity

    connection.execute(identity.TABLE_SQL)
    connection.execute(
        "INSERT INTO maintctl_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (_position_key(stream), entry_id),
    )
