"""The command line: parse, call the runner, exit. No SQL here."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from maintctl import __version__, actions
from maintctl.config import ConfigError, Flags
from maintctl.db import Stopped

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Housekeeping for the Core app's SQLite database, one idempotent pass per run (made for cron).",
)

DbOption = Annotated[Path | None, typer.Option("--db", help="The database file (env MAINTCTL_DB).", show_default=False)]
RedisUrlOption = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        help="Where notifications go (env MAINTCTL_REDIS_URL, then REDIS_URL); unset, they stay queued.",
        show_default=False,
    ),
]
MediaDirOption = Annotated[
    Path | None,
    typer.Option(
        "--media-dir",
        help="The media directory (env MAINTCTL_MEDIA_DIR; default media/ beside the database).",
        show_default=False,
    ),
]
NowOption = Annotated[
    str | None,
    typer.Option("--now", help="Act as if this instant were now (env MAINTCTL_NOW).", show_default=False),
]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Show what the pass would do and change nothing.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing when all went well.")]
WaitOption = Annotated[
    float | None,
    typer.Option(
        "--wait",
        metavar="SECONDS",
        help="Wait this long for another run's lock (default: exit 75 at once).",
        show_default=False,
    ),
]


def _fail(message: str) -> int:
    """Print a usage or configuration error; return its exit status."""
    print(f"maintctl: error: {message}", file=sys.stderr)
    return 2  # runner.EXIT_USAGE, without importing the runner for --help


def _run(names: tuple[str, ...], flags: Flags) -> int:
    from maintctl import config, lock, report, runner

    try:
        settings = config.load(flags)
        outcome = runner.run(list(names), settings)
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


def _acting_command(names: tuple[str, ...]):
    def command(
        db: DbOption = None,
        redis_url: RedisUrlOption = None,
        media_dir: MediaDirOption = None,
        now: NowOption = None,
        dry_run: DryRunOption = False,
        json: JsonOption = False,
        quiet: QuietOption = False,
        wait: WaitOption = None,
    ) -> None:
        raise typer.Exit(_run(names, Flags(db, redis_url, media_dir, now, dry_run, json, quiet, wait)))

    return command


for _name in actions.ORDER:
    app.command(_name, help=actions.SUMMARIES[_name])(_acting_command((_name,)))
app.command(
    "run-all",
    help="Run every action in turn: " + ", ".join(actions.ORDER) + ". One action's failure does not stop the others.",
)(_acting_command(actions.ORDER))


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
