"""What `job list`, status, stats and the metrics say of each of the app's
jobs: its schedule, next run, last run and outcome, and its runs over a period."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from maintctl import timestamps
from maintctl.config.settings import Settings
from maintctl.cron import ScheduleError
from maintctl.jobs import definitions as jobs
from maintctl.jobs import history as job_history
from maintctl.jobs import runs as job_runs
from maintctl.jobs.job import Job


def next_run(connection: sqlite3.Connection, job: Job, now: datetime) -> datetime | None:
    """Return when the job is next due, from its latest occurrence (now or before: due now; None: never).
    Raise ScheduleError where it cannot be kept."""
    return job.next_run(job_runs.last_scheduled(connection, job.name, job.added_at, now))


def _next_run(connection: sqlite3.Connection, job: Job, now: datetime) -> str | None:
    if not job.enabled:
        return None
    try:
        due = next_run(connection, job, now)
    except ScheduleError:
        return None
    return timestamps.format_instant(max(due, now)) if due else None


def listing(connection: sqlite3.Connection, now: datetime) -> list[dict]:
    """Return each job's definition, next run, last run and last finished run."""
    described = []
    for job in jobs.load_all(connection):
        last = job_history.latest(connection, job.name)
        finished = job_history.latest(connection, job.name, job_runs.FINISHED)
        success = job_history.latest(connection, job.name, ("success",))
        described.append(
            {
                **job.as_json(),
                "next_run": _next_run(connection, job, now),
                "last_run": last.as_json() if last else None,
                "last_outcome": finished.status if finished else None,
                "last_success": success.as_json()["finished_at"] if success else None,
                "last_duration_ms": finished.as_json()["duration_ms"] if finished else None,
                "last_error": finished.as_json()["error"] if finished else None,
                "failures_in_a_row": job_history.failures_in_a_row(connection, job.name),
            }
        )
    return described


def attention(listed: list[dict]) -> list[str]:
    """Given the listing, return a line for each job whose last finished run failed."""
    failed = [
        f"job {job['name']}: its last run failed: {job['last_error'] or 'no reason given'}"
        for job in listed
        if job["last_outcome"] == "failed"
    ]
    return failed + [f"job {job['name']}: {job['problem']}" for job in listed if job["problem"]]


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of the values (None for none)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def stats(connection: sqlite3.Connection, start: datetime) -> list[dict]:
    """Per job, its runs scheduled since `start`: how many, success rate, average and p95 duration."""
    described = []
    for job in jobs.load_all(connection):
        runs = job_history.finished_since(connection, job.name, start)
        finished = [run for run in runs if run.status in job_runs.FINISHED]
        durations = [run.duration_ms for run in finished if isinstance(run.duration_ms, int)]
        successes = sum(1 for run in finished if run.status == "success")
        described.append(
            {
                "job": job.name,
                "runs": len(finished),
                "skipped": len(runs) - len(finished),
                "success_rate": round(successes / len(finished), 4) if finished else None,
                "avg_duration_ms": round(sum(durations) / len(durations)) if durations else None,
                "p95_duration_ms": percentile(durations, 0.95),
            }
        )
    return described


def action_stats(connection: sqlite3.Connection, settings: Settings, start) -> tuple[dict, list[str]]:
    """What stats says of enqueue-jobs beyond its runs (kinds.Action.stats): per job, its runs since start."""
    described = stats(connection, start)
    lines = [
        f"job {row['job']}: {row['runs']} runs"
        + (f", {row['success_rate']:.0%} successful" if row["success_rate"] is not None else "")
        + (
            f", avg {row['avg_duration_ms']} ms, p95 {row['p95_duration_ms']} ms"
            if row["avg_duration_ms"] is not None
            else ""
        )
        + (f", {row['skipped']} skipped" if row["skipped"] else "")
        for row in described
    ]
    return ({"jobs": described} if described else {}), lines
