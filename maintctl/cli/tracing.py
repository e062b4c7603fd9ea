"""`maintctl trace …`: where one reminder, event re-prompt or job run is, from
its row to the app's reader. Reads only: the database read-only, no lock, no
history; the stream and its groups as they are."""

from __future__ import annotations

from typing import Annotated

import typer

from maintctl.cli.app import app, fail, opened
from maintctl.cli.options import DbOption, JsonOption, NowOption, QuietOption, RedisUrlOption
from maintctl.config.flags import Flags

trace_app = typer.Typer(
    no_args_is_help=True,
    help="Follow one item from the database to its reader: its row, audit rows, notification (queued, delivered,"
    " stream entry) and each consumer group (handed it, pending, acknowledged). Exits 1 when it is stuck past"
    " MAINTCTL_STUCK_AFTER, 2 when there is no such item.",
)
app.add_typer(trace_app, name="trace")

IdArgument = Annotated[str, typer.Argument(metavar="ID", help="The item's id.", show_default=False)]


def _trace(kind: str, item_id: str, db, redis_url, now, json_output: bool, quiet: bool) -> None:
    from maintctl.show import trace as view
    from maintctl.tracing.trace import NoSuchItem, trace

    with opened(Flags(db=db, redis_url=redis_url, now=now, json=json_output), read_only=True) as (settings, connection):
        try:
            found = trace(connection, settings, kind, item_id)
        except NoSuchItem as error:
            raise typer.Exit(fail(f"{settings.db}: {error}", json_output)) from None
    view.trace(found.document, found.stuck, json_output, quiet)
    raise typer.Exit(found.exit_code)


def _command(kind: str):
    """Return the command that traces one item of this kind."""

    def command(
        item_id: IdArgument,
        db: DbOption = None,
        redis_url: RedisUrlOption = None,
        now: NowOption = None,
        json_output: JsonOption = False,
        quiet: QuietOption = False,
    ) -> None:
        _trace(kind, item_id, db, redis_url, now, json_output, quiet)

    return command


for _kind, _summary in (
    ("reminder", "A reminder: its row, audit rows, successor (a recurring one's next), notification and readers."),
    ("event", "An event: its row, audit rows, newest re-prompt and its readers."),
    (
        "job-run",
        "A run of one of the app's jobs: its row, its message on the jobs' stream and its readers, its result.",
    ),
):
    trace_app.command(_kind, help=_summary)(_command(_kind))
