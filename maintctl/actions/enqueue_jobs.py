"""enqueue-jobs: one pass over the app's recurring jobs (jobs/definitions.py).

1. The workers' results that arrived since the last pass are read into their
   runs, each once (jobs/results.py).
2. Runs with no result within their job's timeout fail: only once the results
   have been read, so that a result that waits unread (Redis away) never
   becomes a timeout.
3. Each enabled job that is due gets a run: its row and its message, in one
   transaction, the message delivered after it like a notification (same
   outbox, same guarantee). An occurrence that comes while the previous run
   still waits for its result is recorded as skipped, and not enqueued.

Redis that cannot be read leaves the results on the stream for the next pass
and fails the action after the rest is done. A dry run reads the results too
(reading writes nothing), so that it plans what the pass would do.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import timedelta

from maintctl import json_text, timestamps
from maintctl.actions.base.kinds import Deadline, OwnPass
from maintctl.actions.base.upcoming import Outlook
from maintctl.config.settings import ConfigError, Settings
from maintctl.cron import ScheduleError, duration_text
from maintctl.jobs import definitions as jobs
from maintctl.jobs import results as job_results
from maintctl.jobs import runs as job_runs
from maintctl.jobs import status as job_status
from maintctl.jobs.job import Job
from maintctl.results import ActionResult
from maintctl.store import identity, outbox
from maintctl.store.db import ActionError, table_exists, transaction


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
        if self.kind == "result":
            return f"record run {self.run_id} of {self.job}: {self.outcome}"
        return self.warning or "nothing"


@dataclass
class Pass:
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problem: str | None = None  # why the results could not be read


def preview(connection: sqlite3.Connection, settings: Settings) -> list[Step]:
    """Given a dry run's settings, return what the pass would do (reading the results that arrived)."""
    done = _pass(connection, settings)
    if done.problem:
        raise ActionError(done.problem)
    return done.steps


def run(connection: sqlite3.Connection, settings: Settings, result: ActionResult, deadline: Deadline) -> None:
    """Do the pass and count what it did into result, even where the results could not be read (the rest
    was done; the action then fails, saying why)."""
    done = _pass(connection, settings)
    result.add(tally(done.steps), done.steps)
    result.notes.extend(done.notes)
    if done.problem:
        raise ActionError(done.problem)


def _pass(connection: sqlite3.Connection, settings: Settings) -> Pass:
    """Do the pass (in a dry run: say what it would do)."""
    if settings.run_job is not None:
        _forced_job(connection, settings.run_job)
    done = Pass()
    if not table_exists(connection, "maintctl_jobs") and not table_exists(connection, "maintctl_job_runs"):
        return done
    if not settings.dry_run:
        with transaction(connection):
            connection.execute(jobs.TABLE_SQL)
            connection.execute(job_runs.TABLE_SQL)
            job_runs.add_entry_column(connection)  # once a pass, before any result is read into its run
    finished = _read_results(connection, settings, done)
    if finished is not None:  # the results were read: what has none by now timed out
        done.steps += _time_out(connection, settings, finished)
    ended = finished or set()
    ended |= {step.run_id for step in done.steps if step.kind == "timed_out"}
    for job in jobs.load_all(connection):
        if settings.run_job is not None and job.name != settings.run_job:
            continue
        done.steps += _enqueue(connection, job, settings, ended)
    return done


def _forced_job(connection: sqlite3.Connection, name: str) -> None:
    try:
        job = jobs.named(connection, name)
    except jobs.JobError as error:
        raise ConfigError(str(error)) from None
    if job.broken:
        raise ConfigError(f"job {name}: {job.broken}")


def _read_results(connection: sqlite3.Connection, settings: Settings, done: Pass) -> set[str] | None:
    """Read the results that arrived; return the runs they finish, None where they could not be read."""
    if not _any_open(connection):
        return set()
    if settings.redis_url is None:
        return None  # they wait on the stream; no run times out meanwhile
    try:
        reading = job_results.read(connection, settings)
    except outbox.DeliveryError as error:
        done.problem = f"the workers' results could not be read, they wait on {settings.job_results}: {error}"
        return None
    done.steps += [Step("result", job, run_id, outcome=status) for run_id, job, status in reading.recorded]
    done.steps += [Step("ignored", "?", None, warning=warning) for warning in reading.warnings]
    if reading.unlisted:
        done.steps.append(
            Step("ignored", "?", None, warning=f"and {reading.unlisted} more entries that are not results")
        )
    if reading.foreign:
        done.notes.append(
            f"{reading.foreign} results for runs this database does not have (another database's, sharing"
            f" {settings.job_results}?) skipped"
        )
    if reading.repeated:
        done.notes.append(f"{reading.repeated} results for runs that had their outcome already ignored")
    return {run_id for run_id, _, _ in reading.recorded}


def _any_open(connection: sqlite3.Connection) -> bool:
    return bool(
        table_exists(connection, "maintctl_job_runs")
        and connection.execute("SELECT 1 FROM maintctl_job_runs WHERE status IN ('pending', 'running')").fetchone()
    )


def _time_out(connection: sqlite3.Connection, settings: Settings, finished: set[str]) -> list[Step]:
    if not table_exists(connection, "maintctl_job_runs"):
        return []
    steps = []
    overdue = [run for run in job_runs.overdue(connection, settings.now) if run[0] not in finished]
    if not overdue:
        return []
    with _writing(connection, settings):
        for run_id, job, timeout in overdue:
            error = f"no result within {duration_text(timedelta(seconds=timeout))}"
            if settings.dry_run or job_runs.time_out(connection, run_id, error, settings.now):
                steps.append(Step("timed_out", job, run_id, warning=f"{job}: run {run_id} failed: {error}"))
    return steps


def _enqueue(connection: sqlite3.Connection, job: Job, settings: Settings, ended: set) -> list[Step]:
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
                due = job.occurrence(
                    job_runs.last_scheduled(connection, job.name, job.added_at, settings.now), settings.now
                )
            except ScheduleError as error:
                return [Step("ignored", job.name, None, warning=f"{job.name}: its schedule cannot be kept: {error}")]
            if due is None:
                return []
            scheduled_for, skipped = due
        run_id = identity.new_uuid()
        waiting = _open_run(connection, job.name)
        kind = "skipped" if waiting and waiting not in ended and not forced else "enqueued"
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
        ):  # that occurrence has its run (another pass made it, or a clock put back comes round to it again)
            exists = f"{job.name}: a run by hand for {step.scheduled_for} exists already; this one was not made"
            return [Step("ignored", job.name, None, warning=exists)] if forced else []
        if kind == "enqueued":
            outbox.queue(connection, [(job_runs.MSG_PREFIX + run_id, json_text.encode(_message(job, step)))], settings)
    return [step]


def _message(job: Job, step: Step) -> dict:
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
    """Return how many enabled jobs are due now (or held back by a definition that cannot be read)."""
    due = 0
    for job in jobs.load_all(connection):
        try:
            next_run = job_status.next_run(connection, job, settings.now)
            due += job.enabled and next_run is not None and next_run <= settings.now
        except ScheduleError:
            due += 1
    return due


def outlook(connection: sqlite3.Connection, settings: Settings) -> Outlook:
    """Return when the soonest enabled job is next due (for run-all --for to wake then)."""
    times = []
    for job in jobs.load_all(connection):
        try:
            if job.enabled:
                times.append(job_status.next_run(connection, job, settings.now))
        except ScheduleError:
            continue
    return Outlook(min((time for time in times if time is not None), default=None))


ACTION = OwnPass(
    preview=preview,
    run=run,
    tally=tally,
    count_due=count_due,
    outlook=outlook,
    stats=job_status.action_stats,
    own_tables=(jobs.TABLE_SQL, job_runs.TABLE_SQL),
    index_sql=job_runs.INDEXES,
)
