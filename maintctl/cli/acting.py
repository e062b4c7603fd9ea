"""The commands that act: each action, run-all and init-db."""

from __future__ import annotations

import inspect
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from maintctl import json_text
from maintctl.actions import registry
from maintctl.cli.app import app, fail
from maintctl.cli.options import (
    BACKUP,
    COMMON,
    DESTINATIONS,
    LIMITS,
    REPEAT,
    DbOption,
    DryRunOption,
    JsonOption,
    MediaDirOption,
    NowOption,
    QuietOption,
    WaitOption,
)
from maintctl.config.flags import Flags
from maintctl.config.settings import ConfigError
from maintctl.json_text import one_line
from maintctl.results import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_LOCKED, EXIT_TERMINATED
from maintctl.store.db import Locked


def run_actions(names: tuple[str, ...], flags: Flags, scheduled: bool) -> int:
    from maintctl.run import fleet
    from maintctl.show import report

    try:
        many = fleet.is_fleet(flags)
    except ConfigError as error:  # the environment's file, say
        return fail(str(error), flags.json, dry_run=flags.dry_run, actions=[])
    if many:
        return _run_fleet(list(names), flags, scheduled)
    flags = replace(flags, db=Path(flags.dbs[0]) if flags.dbs else flags.db, dbs=())
    done = fleet.attempt(list(names), flags, scheduled)
    if done.report is not None:
        report.show(done.report)
        return done.report.exit_code
    if done.label == "" and flags.quiet:  # another run held the lock, a signal, a replica: nothing wrong
        return done.code
    return fail(done.message, flags.json, done.code, done.label, dry_run=flags.dry_run, actions=[])


def _run_fleet(names: list[str], flags: Flags, scheduled: bool) -> int:
    """Run on each database the flags name; print one document (or each database's lines) and return the
    fleet's exit status."""
    from maintctl.run import fleet

    try:
        paths = fleet.databases(flags)
    except ConfigError as error:
        return fail(str(error), flags.json, databases=[])
    outcomes, warnings = fleet.run(names, flags, paths, scheduled)
    code = fleet.exit_code(outcomes)
    if flags.json and not (flags.quiet and code == 0):
        entries = [{"database": outcome.database, "exit": outcome.code, **outcome.document} for outcome in outcomes]
        print(json_text.document({"databases": entries, "exit": code}))
    for outcome in outcomes:
        if outcome.out and not flags.json:
            print(one_line(f"== {outcome.database} (exit {outcome.code})"))
            for line in outcome.out:
                print(one_line(line))
        for line in outcome.err:  # each line names its database
            print(one_line(line.replace("maintctl: ", f"maintctl: {outcome.database}: ", 1)), file=sys.stderr)
    for warning in warnings:
        print(f"maintctl: warning: {one_line(warning)}", file=sys.stderr)
    return code


def _acting_command(names: tuple[str, ...], options: dict, scheduled: bool = False):
    """Return a command that runs the named actions, taking the given options
    (name: (annotated type, default)) as Flags."""

    def command(**given) -> None:
        if given.get("backup_to") is not None:
            given["backup_to"] = tuple(given["backup_to"])
        raise typer.Exit(run_actions(names, Flags(**given), scheduled))

    command.__signature__ = inspect.Signature(
        [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
            for name, (annotation, default) in options.items()
        ]
    )
    return command


_GROUPS = {"limits": LIMITS, "backup": BACKUP, "destinations": DESTINATIONS}  # the option groups a registry entry names


def _options(groups: set[str]) -> dict:
    return COMMON | {name: option for group in sorted(groups) for name, option in _GROUPS[group].items()}


for _entry in registry.ACTIONS:
    app.command(_entry.name, help=_entry.summary)(_acting_command((_entry.name,), _options(set(_entry.options))))
app.command(
    "run-all",
    help="Run every action whose schedule says it is due, in turn: "
    + ", ".join(registry.ORDER)
    + ". Paused ones are skipped; one action's failure does not stop the others.",
)(
    _acting_command(
        registry.ORDER,
        _options({group for entry in registry.ACTIONS for group in entry.options}) | REPEAT,
        scheduled=True,
    )
)


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
    from maintctl.config import settings as config
    from maintctl.setup import sample as demo
    from maintctl.setup import schema
    from maintctl.store import db as database

    try:
        settings = config.load(Flags(db=db, media_dir=media_dir, now=now, json=json_output, quiet=quiet))
        connection = database.create_database(settings.db)
        try:
            created = schema.init_db(connection)
            added = demo.add_sample(connection, settings) if sample else None
        finally:
            connection.close()
    except ConfigError as error:
        raise typer.Exit(fail(str(error), json_output)) from None
    except Locked as error:
        raise typer.Exit(fail(str(error), json_output, EXIT_FAILED)) from None
    except (OSError, database.sqlite3.Error) as error:
        raise typer.Exit(fail(f"{settings.db}: {error}", json_output)) from None
    if quiet:
        return
    if json_output:
        print(json_text.document({"database": str(settings.db), "created": created, "sample": added}))
        return
    print(
        f"{settings.db}: created {', '.join(created)}"
        if created
        else f"{settings.db}: schema complete, nothing to create"
    )
    if added is not None:
        rows = ", ".join(f"{count} {table}" for table, count in added.items())
        print(f"added demo data: {rows}; media files in {settings.media_dir / 'demo'}")


@app.command("restore")
def restore_command(
    source: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE",
            help="The backup to put back: a copy's file, a copy's URL, or a destination (a directory, file:///PATH,"
            " s3://BUCKET/PREFIX?…) to take this database's newest copy from.",
            show_default=False,
        ),
    ],
    db: DbOption = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="TIMESTAMP",
            help="From a destination: the newest copy taken at or before this instant (default: the newest).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Restore even another database's backup, or while another process has the database open."
        ),
    ] = False,
    dry_run: DryRunOption = False,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    wait: WaitOption = None,
) -> None:
    """Put a backup back in the database's place; the replaced file is kept as <db>.replaced-<UTC time>.
    A copy at a destination is fetched, checked against its manifest and decrypted (MAINTCTL_BACKUP_IDENTITY)
    first. Stop the app first. Refused (exit 2) for a bad backup, another database's, a database in use, or no copy
    at or before --at; exit 75 while a maintctl run holds the lock (with --wait, once the wait runs out)."""
    from maintctl.backups import located, restore, restore_from
    from maintctl.backups.destinations import BadDestination, DestinationError, parse
    from maintctl.config import settings as config
    from maintctl.store import lock
    from maintctl.store.db import Stopped

    try:
        settings = config.load(Flags(db=db, dry_run=dry_run, json=json_output, quiet=quiet, wait=wait))
        where = located.source(source)
        if where.path is not None and where.path.name.endswith(".age"):  # an encrypted copy's file, as fetched by hand
            where = located.Source(destination=parse(str(where.path.parent)), copy_name=where.path.name)
        if at is not None and (where.destination is None or where.copy_name is not None):
            raise ConfigError("--at: only with a destination, which holds copies of many times (not one copy)")
        instant = _instant(at)
        if where.destination is None:
            outcome = restore.restore(settings, where.path, force)
        else:
            asked = restore_from.Asked(where, instant, force, bar=not (quiet or json_output))
            outcome = restore_from.restore_from(settings, asked)
    except (ConfigError, BadDestination, restore.Refused) as error:
        raise typer.Exit(fail(str(error), json_output)) from None
    except (lock.Busy, Stopped) as held:  # nothing wrong, and nothing changed
        code = EXIT_LOCKED if isinstance(held, lock.Busy) else EXIT_TERMINATED
        code = EXIT_INTERRUPTED if getattr(held, "signal_name", None) == "SIGINT" else code
        message = f"{held}; nothing was restored"
        raise typer.Exit(code if quiet else fail(message, json_output, code, "")) from None
    except (restore.RestoreFailed, DestinationError, OSError, restore.sqlite3.Error) as error:
        raise typer.Exit(fail(str(error), json_output, EXIT_FAILED)) from None
    for warning in outcome.warnings:
        print(f"maintctl: warning: {one_line(warning)}", file=sys.stderr)
    if quiet:
        return
    if json_output:
        print(json_text.document(outcome.as_json()))
    else:
        print(outcome.describe())


def _instant(at: str | None):
    """Given --at as written, return the instant it names (None: not given); raise ConfigError naming it."""
    if at is None:
        return None
    from maintctl.timestamps import parse_instant

    try:
        return parse_instant(at)
    except ValueError as error:
        raise ConfigError(f"--at: {error}") from None
