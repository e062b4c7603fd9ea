"""The commands that report and change nothing: history, stats, status, doctor."""

from __future__ import annotations

from typing import Annotated

import typer

from maintctl.cli.app import app, fail, known_action, opened
from maintctl.cli.options import (
    DbOption,
    JsonOption,
    MediaDirOption,
    NowOption,
    QuietOption,
    RedisUrlOption,
    ToOption,
)
from maintctl.config.flags import Flags
from maintctl.config.settings import ConfigError


@app.command("history")
def history_command(
    db: DbOption = None,
    action: Annotated[str | None, typer.Option("--action", metavar="ACTION", help="Only this action's runs.")] = None,
    job: Annotated[
        str | None, typer.Option("--job", metavar="NAME", help="The runs of this job of the app's instead.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", help="How many runs, newest first.", min=1, max=1_000_000)
    ] = 20,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """The recent runs, newest first: per action, when, how long, status, counts, error; with --job, the job's
    runs: scheduled for, status, enqueued, finished, duration, result, error."""
    from maintctl.show import views
    from maintctl.store import history

    if action is not None:
        known_action(action, json_output)
    if action is not None and job is not None:
        raise typer.Exit(fail("--action and --job: give one", json_output))
    with opened(Flags(db=db, json=json_output), read_only=True) as (_, connection):
        if job is not None:
            runs = _job_runs(connection, job, limit, json_output)
        else:
            runs = history.recent(connection, action, limit)
    if not quiet:
        views.job_runs(runs, json_output) if job is not None else views.history(runs, json_output)


def _job_runs(connection, name: str, limit: int, json_output: bool) -> list[dict]:
    """Return the job's runs, newest first; exit 2 naming it where there is no such job and never was."""
    from maintctl.jobs import definitions as jobs
    from maintctl.jobs import history as job_history

    runs = [run.as_json() for run in job_history.recent(connection, name, limit)]
    if not runs:
        try:
            jobs.named(connection, name)
        except jobs.JobError as error:
            raise typer.Exit(fail(str(error), json_output)) from None
    return runs


@app.command("stats")
def stats_command(
    db: DbOption = None,
    since: Annotated[str, typer.Option("--since", metavar="DURATION", help="The period to look back over.")] = "7d",
    now: NowOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Per action over a period: runs, success rate, average and p95 duration, items, last success and
    failure; how late reminders fired."""
    from maintctl.show import inspection, views
    from maintctl.timestamps import parse_duration

    try:
        period = parse_duration(since)
    except ValueError as error:
        raise typer.Exit(fail(f"--since: {error}", json_output)) from None
    with opened(Flags(db=db, now=now, json=json_output), read_only=True) as (settings, connection):
        document = inspection.stats(connection, settings, period)
    if not quiet:
        views.stats(document, json_output)


@app.command("status")
def status_command(
    db: DbOption = None,
    redis_url: RedisUrlOption = None,
    to: ToOption = None,
    now: NowOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Per action: paused, schedule, last run and success, items due now; notifications waiting; the newest backup
    at each destination; the lock; whether Redis answers; each consumer group of the notifications' and the jobs'
    streams: its lag and oldest entry not acknowledged. Exits 1 when something needs attention (a failing action,
    notifications stuck past MAINTCTL_STUCK_AFTER, a stream entry unacknowledged past it: the app's reader is down,
    a destination's newest backup older than twice the backup's schedule, Redis not answering); --quiet prints
    only that."""
    from maintctl.show import inspection, views

    flags = Flags(db=db, redis_url=redis_url, now=now, json=json_output, backup_to=tuple(to or ()))
    with opened(flags, read_only=True) as (settings, connection):
        document = inspection.status(connection, settings)
    views.status(document, json_output, quiet)
    raise typer.Exit(1 if document["attention"] else 0)


@app.command("doctor")
def doctor_command(
    db: DbOption = None,
    redis_url: RedisUrlOption = None,
    media_dir: MediaDirOption = None,
    now: NowOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Check the installation: configuration, database (quick_check, tables, indexes), directories, Redis.
    One line per check (--quiet: only those that fail or warn); exits 1 when any fails."""
    from maintctl.config import settings as config
    from maintctl.setup import doctor
    from maintctl.show import views

    try:
        settings = config.load(Flags(db=db, redis_url=redis_url, media_dir=media_dir, now=now, json=json_output))
    except ConfigError as error:
        raise typer.Exit(fail(str(error), json_output)) from None
    checks = doctor.run(settings)
    views.doctor(checks, json_output, quiet)
    raise typer.Exit(1 if any(check.state == "fail" for check in checks) else 0)
