"""The workers' results, read from the results stream into the runs of the
app's jobs, each once.

Where reading got to is kept in the database (maintctl_meta), in the
transaction that records the results it read: a pass killed at any instant
reads again exactly what it had not recorded, and the runs and the position
never disagree (a consumer group would keep the position in Redis, apart from
the runs it moves on). A stream that holds no id as late as that position
was made anew (a Redis replaced, or its clock put right) and is read from its
start. A dry run reads the same entries and records nothing.
"""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import nullcontext
from dataclasses import dataclass, field

from maintctl import json_text
from maintctl.config.settings import Settings
from maintctl.jobs import runs as job_runs
from maintctl.store import outbox
from maintctl.store.db import table_exists, transaction

READ_COUNT = 1000  # entries read per transaction
LAST_POSSIBLE_ID = (2**64 - 1, 2**64 - 1)  # no entry of a stream can follow it
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
    Raise DeliveryError where Redis cannot be read. An entry that is not a
    result is skipped with a warning, whatever it holds: what follows it is read."""
    client = outbox.redis_client(settings)
    reading = Reading()
    taken: set[str] = set()
    try:
        start = _start(client, settings, position(connection, settings.job_results), reading)
        while connection.may_go_on() and _entry_key(start) != LAST_POSSIBLE_ID:
            entries = _entries(client, settings, start)
            if not entries:
                break
            with nullcontext() if settings.dry_run else transaction(connection):
                for entry_id, fields in entries:
                    _take(connection, entry_id, fields, settings, reading, taken)
                if not settings.dry_run:
                    keep_position(connection, settings.job_results, entries[-1][0])
            start = entries[-1][0]
            if len(entries) < READ_COUNT:
                break
    finally:
        client.close()
    return reading


def _start(client, settings: Settings, kept: str, reading: Reading) -> str:
    """Given where reading got to, return where to read from: the stream's
    start where it holds no id as late as that (it was made anew since, by a
    Redis whose clock is behind the one that wrote what was read: its
    entries would all be passed over). Raise DeliveryError naming Redis."""
    import redis

    if kept == "0-0":
        return kept
    try:
        last = client.xinfo_stream(settings.job_results)["last-generated-id"]
    except redis.ResponseError as error:
        if "no such key" in str(error).lower():
            return kept  # nothing to read yet
        raise outbox.DeliveryError(outbox.describe_error(error, settings)) from None
    except (redis.RedisError, OSError, ValueError, UnicodeError) as error:
        raise outbox.DeliveryError(outbox.describe_error(error, settings)) from None
    last = last.decode() if isinstance(last, bytes) else str(last)
    try:
        if _entry_key(last) >= _entry_key(kept):
            return kept
        why = f"{settings.job_results} holds no entry as late as {kept}, where reading got to: it was made anew"
    except ValueError:  # a position spoiled by hand
        why = f"where reading {settings.job_results} got to, {kept!r}, is not a stream entry id"
    _warn(reading, f"{why}; read from its start")
    return "0-0"


def _entry_key(entry_id: str) -> tuple[int, int]:
    """Given a stream entry id (milliseconds-sequence), return it as a pair that sorts as Redis orders ids."""
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds), int(sequence or 0)


def _entries(client, settings: Settings, start: str) -> list[tuple[str, dict]]:
    """Return the next READ_COUNT entries of the results stream after `start`; raise DeliveryError naming Redis."""
    import redis

    try:
        entries = client.xrange(settings.job_results, min=f"({start}", count=READ_COUNT)
    except (redis.RedisError, OSError, ValueError, UnicodeError) as error:
        raise outbox.DeliveryError(outbox.describe_error(error, settings)) from None
    return [(entry_id.decode(), fields) for entry_id, fields in entries]


def _take(
    connection: sqlite3.Connection, entry_id: str, fields: dict, settings: Settings, reading: Reading, taken: set
) -> None:
    """Given one entry of the results stream, record it in its run (in a dry run, note that it would be)."""
    try:
        run_id, status, result, error, repaired = _result(fields)
    except ValueError as problem:
        _warn(reading, f"{settings.job_results} entry {entry_id}: not a result ({problem}); skipped")
        return
    if repaired:
        _warn(reading, f"{settings.job_results} entry {entry_id}: {repaired}")
    had = job_runs.status_of(connection, run_id)
    if had is None:
        reading.foreign += 1
    elif had not in job_runs.OPEN or run_id in taken:
        reading.repeated += 1
    elif settings.dry_run or job_runs.finish(connection, run_id, status, result, error, entry_id, settings.now):
        taken.add(run_id)
        (job,) = connection.execute("SELECT job FROM maintctl_job_runs WHERE id = ?", (run_id,)).fetchone()
        reading.recorded.append((run_id, job, status))


def _warn(reading: Reading, warning: str) -> None:
    if len(reading.warnings) < WARNINGS_LISTED:
        reading.warnings.append(warning)
    else:
        reading.unlisted += 1


def _result(fields: dict) -> tuple[str, str, object, str | None, str | None]:
    """Given a results entry's fields, return its run id, status, result and
    error, and what was mended in them to keep them as strict JSON and text
    (None: nothing); raise ValueError saying why it is not a result as the
    contract has it."""
    data = fields.get(b"data")
    if data is None:
        raise ValueError("no data field")
    try:
        document = json.loads(data.decode())
    except UnicodeDecodeError:
        raise ValueError("data is not UTF-8") from None
    except RecursionError:
        raise ValueError("data is nested too deeply") from None
    except ValueError as error:  # not JSON, or a number past Python's limit of digits
        raise ValueError(f"data is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise ValueError("data is not a JSON object")  # noqa: TRY004
    run_id, status, error = document.get("job_run_id"), document.get("status"), document.get("error")
    if not isinstance(run_id, str) or not _is_text(run_id):
        raise ValueError("job_run_id is missing or not text")
    if status not in ("success", "failed"):
        raise ValueError("status is not success or failed")
    if error is not None and not isinstance(error, str):
        raise ValueError("error is not text")
    result, mended = document.get("result"), []
    try:
        text = json_text.encode(result)  # NaN and the infinities as null
        if json_text.has_non_finite(result):
            mended.append("NaN or an infinite number in its result stored as null (JSON has neither)")
        if not _is_text(text):
            text = _mend(text)
            mended.append("a lone surrogate (\\ud800 to \\udfff) in its result stored as U+FFFD")
        if mended:
            result = json.loads(text)
    except RecursionError:
        raise ValueError("data is nested too deeply") from None
    if error is not None and not _is_text(error):
        error = _mend(error)
        mended.append("a lone surrogate (\\ud800 to \\udfff) in its error stored as U+FFFD")
    return run_id, status, result, error, "; ".join(mended) or None


def _mend(value: str) -> str:
    """Given a str holding lone surrogates, return it with each as U+FFFD, the replacement character."""
    return re.sub("[\ud800-\udfff]", "\ufffd", value)


def _is_text(value: str) -> bool:
    """Given a str from JSON, return whether it is text (a \\ud800 escape gives a lone surrogate, which is not)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


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
    from maintctl.store import identity

    connection.execute(identity.TABLE_SQL)
    connection.execute(
        "INSERT INTO maintctl_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (_position_key(stream), entry_id),
    )
