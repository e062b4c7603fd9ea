"""`maintctl job …`: the app's recurring jobs, defined, listed, paused and
run by hand (enqueue-jobs, in the registry, runs them on their schedules)."""

from __future__ import annotations

from typing import Annotated

import typer

from maintctl.cli.acting import run_actions
from maintctl.cli.app import app, fail, opened
from maintctl.cli.options import (
    CronOption,
    DbOption,
    DryRunOption,
    JsonOption,
    MediaDirOption,
    NowOption,
    QuietOption,
    RedisUrlOption,
    ScheduleEveryOption,
    TzOption,
    VerboseOption,
    WaitOption,
)
from maintctl.cli.scheduling import say
from maintctl.config.flags import Flags

job_app = typer.Typer(
    no_args_is_help=True,
    help="The app's recurring jobs: maintctl enqueues their runs on the stream its workers read (MAINTCTL_JOB_STREAM,"
    " default tasks) and reads their results back (MAINTCTL_JOB_RESULTS, default tasks:results).",
)
app.add_typer(job_app, name="job")

NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="The job's name.", show_default=False)]


@job_app.command("add")
def add_command(
    name: NameArgument,
    job_type: Annotated[
        str, typer.Option("--type", metavar="TYPE", help="What the workers do (such as profile_maintenance).")
    ],
    every: ScheduleEveryOption = None,
    cron: CronOption = None,
    tz: TzOption = "UTC",
    bot: Annotated[str, typer.Option("--bot", metavar="ID", help="The bot it is for; * is every bot.")] = "*",
    config: Annotated[
        str, typer.Option("--config", metavar="JSON", help="A JSON object handed to the worker with each run.")
    ] = "{}",
    timeout: Annotated[
        str, typer.Option("--timeout", metavar="DURATION", help="A run with no result by then has failed.")
    ] = "1h",
    db: DbOption = None,
    now: NowOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Define a job; it is due at once, then as its schedule says."""
    from maintctl.jobs import definitions as jobs
    from maintctl.timestamps import parse_duration

    durations = {}
    for option, text in (("--every", every), ("--timeout", timeout)):
        try:
            durations[option] = parse_duration(text) if text is not None else None
        except ValueError as error:
            raise typer.Exit(fail(f"{option}: {error}", json_output)) from None
    with opened(Flags(db=db, now=now, json=json_output), read_only=False) as (settings, connection):
        try:
            checked = jobs.check_definition(name, job_type, durations["--every"], cron, tz, config, settings.now)
            jobs.add(
                connection,
                name,
                job_type,
                every=durations["--every"],
                cron=cron,
                tz=tz,
                bot=bot,
                config=checked,
                timeout=durations["--timeout"],
                now=settings.now,
            )
        except jobs.JobError as error:
            raise typer.Exit(fail(str(error), json_output)) from None
        job = jobs.named(connection, name)
    say(f"job {name} added: {job.describe()}, due now", {"added": job.as_json()}, json_output, quiet)


@job_app.command("list")
def list_command(
    db: DbOption = None, now: NowOption = None, json_output: JsonOption = False, quiet: QuietOption = False
) -> None:
    """The jobs: schedule, next run, last run and its outcome."""
    from maintctl.jobs import status as job_status
    from maintctl.show import views

    with opened(Flags(db=db, now=now, json=json_output), read_only=True) as (settings, connection):
        listed = job_status.listing(connection, settings.now)
    if quiet:
        return
    if listed or json_output:
        views.jobs(listed, json_output)
    else:
        print("no jobs (maintctl job add NAME --type TYPE --every 1h adds one)")


def _change(name: str, db, now, json_output: bool, quiet: bool, change: str) -> None:
    from maintctl.jobs import definitions as jobs

    with opened(Flags(db=db, now=now, json=json_output), read_only=False) as (settings, connection):
        try:
            withdrawn = None
            if change == "removed":
                withdrawn = jobs.remove(connection, name, settings.now)
                done = True
            else:
                done = jobs.set_enabled(connection, name, change == "resumed", settings.now)
        except jobs.JobError as error:
            raise typer.Exit(fail(str(error), json_output)) from None
    text = f"job {name} {change}" if done else f"job {name} was {change} already"
    document = {"job": name, change: True, "changed": done}
    if withdrawn is not None:
        text += f"; {withdrawn} run{'s' if withdrawn > 1 else ''} not yet sent withdrawn" if withdrawn else ""
        document["withdrawn"] = withdrawn
    say(text, document, json_output, quiet)


@job_app.command("remove")
def remove_command(
    name: NameArgument,
    db: DbOption = None,
    now: NowOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Forget a job; its runs stay in its history (until prune), those without a result failed."""
    _change(name, db, now, json_output, quiet, "removed")


@job_app.command("pause")
def pause_command(
    name: NameArgument,
    db: DbOption = None,
    now: NowOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Pause a job: enqueue-jobs enqueues none of its runs (job run still does)."""
    _change(name, db, now, json_output, quiet, "paused")


@job_app.command("resume")
def resume_command(
    name: NameArgument,
    db: DbOption = None,
    now: NowOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Resume a paused job; its missed occurrences are coalesced into one run."""
    _change(name, db, now, json_output, quiet, "resumed")


@job_app.command("run")
def run_command(
    name: NameArgument,
    db: DbOption = None,
    redis_url: RedisUrlOption = None,
    media_dir: MediaDirOption = None,
    now: NowOption = None,
    dry_run: DryRunOption = False,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    wait: WaitOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Enqueue one run of the job now, whatever its schedule or a pause says (an enqueue-jobs pass for it alone)."""
    flags = Flags(
        db=db,
        redis_url=redis_url,
        media_dir=media_dir,
        now=now,
        dry_run=dry_run,
        json=json_output,
        quiet=quiet,
        wait=wait,
        verbose=verbose,
        run_job=name,
    )
    raise typer.Exit(run_actions(("enqueue-jobs",), flags, scheduled=False))
