"""The command line: parse, call the runner, exit. No SQL here."""

from __future__ import annotations

import inspect
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from maintctl import __version__, actions
from maintctl.config import ConfigError, Flags
from maintctl.db import Stopped
from maintctl.options import (
    BACKUP,
    COMMON,
    LIMITS,
    REPEAT,
    DbOption,
    DryRunOption,
    JsonOption,
    MediaDirOption,
    NowOption,
    QuietOption,
    RedisUrlOption,
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Housekeeping for the Core app's SQLite database, one idempotent pass per run (made for cron).",
)


def _fail(message: str) -> int:
    """Print a usage or configuration error; return its exit status."""
    print(f"maintctl: error: {message}", file=sys.stderr)
    return 2  # runner.EXIT_USAGE, without importing the runner for --help


def _run(names: tuple[str, ...], flags: Flags, scheduled: bool) -> int:
    from maintctl import config, lock, report, runner

    try:
        settings = config.load(flags)
        outcome = runner.run(list(names), settings, scheduled)
    except ConfigError as error:
        return _fail(str(error))
    except lock.Busy as busy:
        if not flags.quiet:
            print(f"maintctl: {busy}; this run did nothing", file=sys.stderr)
        return runner.EXIT_LOCKED
    except Stopped:
        return runner.EXIT_TERMINATED  # while waiting for the lock: nothing was begun
    report.show(outcome)
    return outcome.exit_code


def _acting_command(names: tuple[str, ...], options: dict, scheduled: bool = False):
    """Return a command that runs the named actions, taking the given options
    (name: (annotated type, default)) as Flags."""

    def command(**given) -> None:
        raise typer.Exit(_run(names, Flags(**given), scheduled))

    command.__signature__ = inspect.Signature(
        [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
            for name, (annotation, default) in options.items()
        ]
    )
    return command


for _name in actions.HOUSEKEEPING + ("prune",):
    app.command(_name, help=actions.SUMMARIES[_name])(_acting_command((_name,), COMMON | LIMITS))
app.command("backup", help=actions.SUMMARIES["backup"])(_acting_command(("backup",), COMMON | BACKUP))
app.command(
    "run-all",
    help="Run every action whose schedule says it is due, in turn: "
    + ", ".join(actions.ORDER)
    + ". Paused ones are skipped; one action's failure does not stop the others.",
)(_acting_command(actions.ORDER, COMMON | LIMITS | REPEAT | BACKUP, scheduled=True))


@app.command("init-db")
def init_db(
    db: DbOption = None,
    media_dir: MediaDirOption = None,
    now: NowOption = None,
    sample: Annotated[
        bool, typer.Option("--sample", help="Also add demo data (and its media files) with work for every action.")
    ] = False,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Create the app's tables where missing, and maintctl's own tables and indexes.
    Safe on a populated database: it never drops or rewrites data."""
    from maintctl import config, schema
    from maintctl import db as database
    from maintctl import sample as demo

    try:
        settings = config.load(Flags(db=db, media_dir=media_dir, now=now, json=json_output, quiet=quiet))
        connection = database.create_database(settings.db)
        try:
            created = schema.init_db(connection)
            added = demo.add_sample(connection, settings) if sample else None
        finally:
            connection.close()
    except ConfigError as error:
        raise typer.Exit(_fail(str(error)))
    except (OSError, database.sqlite3.Error) as error:
        raise typer.Exit(_fail(f"{settings.db}: {error}"))
    if quiet:
        return
    if json_output:
        print(json.dumps({"database": str(settings.db), "created": created, "sample": added}, indent=2))
        return
    print(
        f"{settings.db}: created {', '.join(created)}"
        if created
        else f"{settings.db}: schema complete, nothing to create"
    )
    if added is not None:
        rows = ", ".join(f"{count} {table}" for table, count in added.items())
        print(f"added demo data: {rows}; media files in {settings.media_dir / 'demo'}")


ActionArgument = Annotated[str, typer.Argument(metavar="ACTION", help="One of: " + ", ".join(actions.ORDER) + ".")]


@contextmanager
def _opened(flags: Flags, read_only: bool):
    """Yield the settings and a connection for a command that asks or tells
    the database something; errors become a one-line message and exit 2 (or
    1 for a database error)."""
    from maintctl import config
    from maintctl import db as database

    try:
        settings = config.load(flags)
        connection = database.open_database(settings.db, read_only=read_only, busy_timeout=settings.busy_timeout)
    except ConfigError as error:
        raise typer.Exit(_fail(str(error))) from None
    try:
        yield settings, connection
    except database.sqlite3.Error as error:
        print(f"maintctl: error: {settings.db}: {error}", file=sys.stderr)
        raise typer.Exit(1) from None
    except ValueError as error:  # a schedule that cannot be kept, say
        raise typer.Exit(_fail(str(error))) from None
    finally:
        connection.close()


def _known(action: str) -> str:
    if action not in actions.ORDER:
        raise typer.Exit(_fail(f"{action!r} is not an action (one of: {', '.join(actions.ORDER)})"))
    return action


@app.command("history")
def history_command(
    db: DbOption = None,
    action: Annotated[str | None, typer.Option("--action", metavar="ACTION", help="Only this action's runs.")] = None,
    limit: Annotated[int, typer.Option("--limit", metavar="N", help="How many runs, newest first.", min=1)] = 20,
    json_output: JsonOption = False,
) -> None:
    """The recent runs, newest first: per action, when, how long, status, counts, error."""
    from maintctl import history, views

    if action is not None:
        _known(action)
    with _opened(Flags(db=db), read_only=True) as (_, connection):
        views.history(history.recent(connection, action, limit), json_output)


@app.command("stats")
def stats_command(
    db: DbOption = None,
    since: Annotated[str, typer.Option("--since", metavar="DURATION", help="The period to look back over.")] = "7d",
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Per action over a period: runs, success rate, average and p95 duration, items, last success and
    failure; how late reminders fired."""
    from maintctl import inspection, views
    from maintctl.config import parse_duration

    try:
        period = parse_duration(since)
    except ValueError as error:
        raise typer.Exit(_fail(f"--since: {error}")) from None
    with _opened(Flags(db=db, now=now), read_only=True) as (settings, connection):
        views.stats(inspection.stats(connection, settings, period), json_output)


@app.command("status")
def status_command(db: DbOption = None, now: NowOption = None, json_output: JsonOption = False) -> None:
    """Per action: paused, schedule, last run and success, items due now; notifications waiting; the lock.
    Exits 1 when something needs attention (a failing action, notifications stuck past MAINTCTL_STUCK_AFTER)."""
    from maintctl import inspection, views

    with _opened(Flags(db=db, now=now), read_only=True) as (settings, connection):
        document = inspection.status(connection, settings)
    views.status(document, json_output)
    raise typer.Exit(1 if document["attention"] else 0)


@app.command("doctor")
def doctor_command(
    db: DbOption = None,
    redis_url: RedisUrlOption = None,
    media_dir: MediaDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check the installation: configuration, database (quick_check, tables, indexes), directories, Redis.
    One line per check; exits 1 when any fails."""
    from maintctl import config, doctor, views

    try:
        settings = config.load(Flags(db=db, redis_url=redis_url, media_dir=media_dir))
    except ConfigError as error:
        raise typer.Exit(_fail(str(error))) from None
    checks = doctor.run(settings)
    views.doctor(checks, json_output)
    raise typer.Exit(1 if any(check.state == "fail" for check in checks) else 0)


@app.command("pause")
def pause_command(
    action: ActionArgument,
    reason: Annotated[str | None, typer.Option("--reason", help="Why; shown by status and run-all.")] = None,
    db: DbOption = None,
    now: NowOption = None,
) -> None:
    """Pause an action: run-all skips it (status skipped, with the reason); naming it still runs it."""
    from maintctl import schedules

    with _opened(Flags(db=db, now=now), read_only=False) as (settings, connection):
        newly = schedules.pause(connection, _known(action), reason, settings.now)
    print(f"{action}: paused" if newly else f"{action}: was paused already; reason updated")


@app.command("resume")
def resume_command(action: ActionArgument, db: DbOption = None) -> None:
    """Resume a paused action."""
    from maintctl import schedules

    with _opened(Flags(db=db), read_only=False) as (_, connection):
        resumed = schedules.resume(connection, _known(action))
    print(f"{action}: resumed" if resumed else f"{action}: was not paused")


@app.command("schedule")
def schedule_command(
    action: ActionArgument,
    every: Annotated[
        str | None, typer.Option("--every", metavar="DURATION", help="Run it this often (such as 1h).")
    ] = None,
    cron: Annotated[
        str | None, typer.Option("--cron", metavar="EXPR", help="Run it at these times (such as '0 3 * * *').")
    ] = None,
    tz: Annotated[
        str, typer.Option("--tz", metavar="ZONE", help="The time zone of --cron (such as Europe/Berlin).")
    ] = "UTC",
    default: Annotated[bool, typer.Option("--default", help="Back to the default schedule.")] = False,
    db: DbOption = None,
    now: NowOption = None,
) -> None:
    """Show or set when run-all runs an action. Defaults: the housekeeping actions every run, backup and prune
    every day."""
    from maintctl import schedules
    from maintctl.config import parse_duration

    if default and (every is not None or cron is not None):
        raise typer.Exit(_fail("--default cannot go with --every or --cron"))
    if tz != "UTC" and cron is None:
        raise typer.Exit(_fail("--tz goes with --cron"))
    try:
        interval = parse_duration(every) if every is not None else None
    except ValueError as error:
        raise typer.Exit(_fail(f"--every: {error}")) from None
    changing = every is not None or cron is not None or default
    with _opened(Flags(db=db, now=now), read_only=not changing) as (settings, connection):
        if changing:
            schedules.set_schedule(connection, _known(action), interval, cron, tz, settings.now)
        schedule = schedules.load_all(connection, (_known(action),))[action]
    print(f"{action}: {schedule.describe()}" + (" (paused)" if schedule.paused else ""))


@app.command("restore")
def restore_command(
    backup: Annotated[Path, typer.Argument(metavar="BACKUP", help="The backup file to put back.", show_default=False)],
    db: DbOption = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Restore even another database's backup, or while another process has the database open."
        ),
    ] = False,
    dry_run: DryRunOption = False,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Put a backup back in the database's place; the replaced file is kept as <db>.replaced-<UTC time>.
    Stop the app first. Refused (exit 2) for a bad backup, another database's, or a database in use; exit 75 while
    a maintctl run holds the lock."""
    from maintctl import config, lock, restore, runner

    try:
        settings = config.load(Flags(db=db, dry_run=dry_run, json=json_output, quiet=quiet))
        outcome = restore.restore(settings, backup, force)
    except (ConfigError, restore.Refused) as error:
        raise typer.Exit(_fail(str(error))) from None
    except lock.Busy as busy:
        if not quiet:
            print(f"maintctl: {busy}; nothing was restored", file=sys.stderr)
        raise typer.Exit(runner.EXIT_LOCKED) from None
    except (restore.RestoreFailed, OSError, restore.sqlite3.Error) as error:
        print(f"maintctl: error: {error}", file=sys.stderr)
        raise typer.Exit(runner.EXIT_FAILED) from None
    for warning in outcome.warnings:
        print(f"maintctl: warning: {warning}", file=sys.stderr)
    if json_output:
        print(json.dumps(outcome.as_json(), indent=2))
    elif not quiet:
        print(outcome.describe())


def _version(value: bool) -> None:
    if value:
        print(f"maintctl {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    pass


def main() -> None:
    app()
