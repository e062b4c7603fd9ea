"""enqueue-jobs: one pass over the app's recurring jobs (jobs.py).

1. The workers' results that arrived on the results stream since the last
   pass are read into their runs, each once: where reading got to is kept in
   the database, in the transaction that records them, so that a pass killed
   at any instant reads again exactly what it had not recorded (a consumer
   group would keep it in Redis, apart from the runs it moves on).
2. Runs with no result within their job's timeout fail.
3. Each enabled job that is due gets a run: its row and its message, in one
   transaction, the message delivered after it like a notification (same
   outbox, same guarantee). An occurrence that comes while the previous run
   still waits for its result is recorded as skipped, and not enqueued.

Redis that cannot be read leaves the results on the stream for the next pass
and fails the action after the rest is done.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import timedelta

from maintctl import job_runs, job_status, jobs, json_text, outbox, schedules, timestamps
from maintctl.actions.kinds import Single
from maintctl.config import ConfigError, Settings
from maintctl.db import ActionError, table_exists, transaction

READ_COUNT = 1000  # results read per transaction


@dataclass(slots=True)
class Step:
    kind: str  # enqueued | skipped | timed_out | result | ignored
    job: str
    run_id: str | None
    scheduled_for: str | None = None
    skipped_occurrences: int = 0
    outcome: str | None = None  # a result's status
    warning: str | None = None

    def planned(self) -> dict:
        return {
            "id": self.run_id,
            "job": self.job,
            "step": self.kind,
            "scheduled_for": self.scheduled_for,
            "skipped_occurrences": self.skipped_occurrences,
        }

    def describe(self) -> str:
        coalesced = f", standing for {self.skipped_occurrences} missed before it" if self.skipped_occurrences else ""
        if self.kind == "enqueued":
            return f"enqueue a run of {self.job} scheduled for {self.scheduled_for}{coalesced}"
        if self.kind == "skipped":
            return f"skip {self.job}'s occurrence at {self.scheduled_for}: its previous run has no result yet"
        if self.kind == "timed_out":
            return f"fail run {self.run_id} of {self.job}: no result in time"
        return f"record run {self.run_id} of {self.job}: {self.outcome}"


def perform(connection: sqlite3.Connection, settings: Settings) -> list[Step]:
    steps, problem = _pass(connection, settings)
    if problem:
        raise ActionError(problem)
    return steps


def _pass(connection: sqlite3.Connection, settings: Settings) -> tuple[list[Step], str | None]:
    """Do the pass (in a dry run: say what it would do); return the steps,
    and why the results could not be read (None: they were, or none waited)."""
    if settings.run_job is not None:
        _forced_job(connection, settings.run_job)
    if not table_exists(connection, "maintctl_jobs") and not table_exists(connection, "maintctl_job_runs"):
        return [], None
    if not settings.dry_run:
        with transaction(connection):
            connection.execute(jobs.TABLE_SQL)
            connection.execute(job_runs.TABLE_SQL)
    steps, problem = [], None
    if not settings.dry_run and settings.redis_url is not None and _any_open(connection):
        try:
            steps += _read_results(connection, settings)
        except outbox.DeliveryError as error:
            problem = f"the workers' results could not be read, they wait on {settings.job_results}: {error}"
    steps += _time_out(connection, settings)
    timed_out = {step.run_id for step in steps if step.kind == "timed_out"}
    for job in jobs.load_all(connection):
        if settings.run_job is not None and job.name != settings.run_job:
            continue
        steps += _enqueue(connection, job, settings, timed_out)
    return steps, problem


def _forced_job(connection: sqlite3.Connection, name: str) -> None:
    try:
        jobs.named(connection, name)
    except jobs.JobError as error:
        raise ConfigError(str(error)) from None


def _any_open(connection: sqlite3.Connection) -> bool:
    return bool(
        table_exists(connection, "maintctl_job_runs")
        and connection.execute("SELECT 1 FROM maintctl_job_runs WHERE status IN ('pending', 'running')").fetchone()
    )


def _read_results(connection: sqlite3.Connection, settings: Settings) -> list[Step]:
    """Read the results that arrived since the last pass into their runs, a
    transaction per READ_COUNT entries; return what each did. Raise
    DeliveryError where Redis cannot be read."""
    import redis

    client = outbox.redis_client(settings)
    steps = []
    try:
        while connection.may_go_on():
            start = job_runs.position(connection, settings.job_results)
            entries = client.xrange(settings.job_results, min=f"({start}", count=READ_COUNT)
            if not entries:
                break
            with transaction(connection):
                for entry_id, fields in entries:
                    steps.append(_record(connection, entry_id.decode(), fields, settings))
                job_runs.keep_position(connection, settings.job_results, entries[-1][0].decode())
            if len(entries) < READ_COUNT:
                break
    except (redis.RedisError, OSError, ValueError, UnicodeError) as error:
        raise outbox.DeliveryError(outbox.describe_error(error, settings)) from None
    finally:
        client.close()
    return steps


def _record(connection: sqlite3.Connection, entry_id: str, fields: dict, settings: Settings) -> Step:
    """Given one entry of the results stream, record it in its run; return what it did."""
    where = f"{settings.job_results} entry {entry_id}"
    try:
        result = json.loads(fields.get(b"data", b"").decode())
        if not isinstance(result, dict):
            raise TypeError("not a JSON object")
        run_id, status = result["job_run_id"], result["status"]
        error = result.get("error")
        if not isinstance(run_id, str) or status not in ("success", "failed"):
            raise ValueError("job_run_id must be text and status success or failed")
        if error is not None and not isinstance(error, str):
            raise ValueError("error must be text")
    except (KeyError, TypeError, ValueError, UnicodeError) as problem:
        reason = f"missing {problem}" if isinstance(problem, KeyError) else str(problem)
        return Step("ignored", "?", None, warning=f"{where}: not a result ({reason}); skipped")
    finished = job_runs.entry_time(entry_id)
    if job_runs.finish(connection, run_id, status, result.get("result"), error, finished):
        job = connection.execute("SELECT job FROM maintctl_job_runs WHERE id = ?", (run_id,)).fetchone()[0]
        return Step("result", job, run_id, outcome=status)
    had = job_runs.status_of(connection, run_id)
    if had is None:
        return Step(
            "ignored",
            "?",
            run_id,
            warning=f"{where}: a result for run {run_id!r}, which is not this database's; skipped",
        )
    return Step(
        "ignored",
        "?",
        run_id,
        warning=None
        if had == status
        else f"{where}: a {status} result for run {run_id}, which was {had} already; kept as {had}",
    )


def _time_out(connection: sqlite3.Connection, settings: Settings) -> list[Step]:
    if not table_exists(connection, "maintctl_job_runs"):
        return []
    steps = []
    overdue = job_runs.overdue(connection, settings.now)
    if not overdue:
        return []
    with _writing(connection, settings):
        for run_id, job, timeout in overdue:
            error = f"no result within {schedules.duration_text(timedelta(seconds=timeout))}"
            if settings.dry_run or job_runs.time_out(connection, run_id, error, settings.now):
                steps.append(Step("timed_out", job, run_id, warning=f"{job}: run {run_id} failed: {error}"))
    return steps


def _enqueue(connection: sqlite3.Connection, job: jobs.Job, settings: Settings, timed_out: set) -> list[Step]:
    """Enqueue the job's run that is due (the forced one of `job run`), or
    record its occurrence as skipped; return the step, none where nothing is due."""
    forced = settings.run_job == job.name
    if not job.enabled and not forced:
        return []
    with _writing(connection, settings):
        if forced:
            scheduled_for, skipped = settings.now, 0
        else:
            try:
                due = job.occurrence(_last_scheduled(connection, job.name), settings.now)
            except schedules.ScheduleError as error:
                return [Step("ignored", job.name, None, warning=f"{job.name}: its schedule cannot be kept: {error}")]
            if due is None:
                return []
            scheduled_for, skipped = due
        run_id = str(uuid.uuid4())
        waiting = _open_run(connection, job.name)
        kind = "skipped" if waiting and waiting not in timed_out and not forced else "enqueued"
        step = Step(kind, job.name, run_id, timestamps.format_instant(scheduled_for), skipped)
        if settings.dry_run:
            return [step]
        if not job_runs.insert(
            connection,
            run_id,
            job.name,
            scheduled_for,
            kind.replace("enqueued", "pending"),
            skipped,
            forced,
            settings.now,
        ):
            return [
                Step("ignored", job.name, None, warning=f"{job.name}: a run for {step.scheduled_for} exists already")
            ]
        if kind == "enqueued":
            outbox.queue(connection, [(outbox.JOB_PREFIX + run_id, json_text.encode(_message(job, step)))], settings)
    return [step]


def _message(job: jobs.Job, step: Step) -> dict:
    return {
        "job": job.name,
        "job_type": job.type,
        "bot_id": job.bot,
        "config": job.config,
        "job_run_id": step.run_id,
        "scheduled_for": step.scheduled_for,
        "skipped_occurrences": step.skipped_occurrences,
    }


def _writing(connection: sqlite3.Connection, settings: Settings):
    """A transaction; in a dry run, nothing."""
    from contextlib import nullcontext

    return nullcontext() if settings.dry_run else transaction(connection)


def _last_scheduled(connection: sqlite3.Connection, name: str):
    return job_runs.last_scheduled(connection, name) if table_exists(connection, "maintctl_job_runs") else None


def _open_run(connection: sqlite3.Connection, name: str) -> str | None:
    return job_runs.open_run(connection, name) if table_exists(connection, "maintctl_job_runs") else None


def tally(steps: list[Step]) -> dict[str, int]:
    kinds = [step.kind for step in steps]
    return {
        "enqueued": kinds.count("enqueued"),
        "skipped": kinds.count("skipped"),
        "results": kinds.count("result"),
        "timed_out": kinds.count("timed_out"),
    }


def count_due(connection: sqlite3.Connection, settings: Settings) -> int:
    """Return how many enabled jobs have an occurrence due now (or one a broken schedule holds back)."""
    due = 0
    for job in jobs.load_all(connection):
        try:
            due += job.enabled and job.occurrence(_last_scheduled(connection, job.name), settings.now) is not None
        except schedules.ScheduleError:
            due += 1
    return due


@dataclass(frozen=True, kw_only=True)
class _EnqueueJobs(Single):
    """A Single whose pass counts what it did even where reading results failed (after the rest was done)."""

    def run(self, connection, settings, result, deadline) -> None:
        steps, problem = _pass(connection, settings)
        result.add(self.tally(steps), steps)
        if problem:
            raise ActionError(problem)


ACTION = _EnqueueJobs(
    perform=perform,
    tally=tally,
    count_due=count_due,
    stats=job_status.action_stats,
    own_tables=(jobs.TABLE_SQL, job_runs.TABLE_SQL),
    index_sql=job_runs.INDEXES,
)
