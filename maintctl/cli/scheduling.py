"""The commands that say when run-all runs an action: pause, resume, schedule."""

from __future__ import annotations

from typing import Annotated

import typer

from maintctl import json_text
from maintctl.actions import registry
from maintctl.cli.app import app, fail, known_action, opened
from maintctl.cli.options import CronOption, DbOption, JsonOption, NowOption, QuietOption, ScheduleEveryOption, TzOption
from maintctl.config.flags import Flags
from maintctl.json_text import one_line

ActionArgument = Annotated[str, typer.Argument(metavar="ACTION", help="One of: " + ", ".join(registry.ORDER) + ".")]


def say(text: str, document: dict, json_output: bool, quiet: bool) -> None:
    """Print the outcome: the line, or with --json the document; nothing with --quiet."""
    if not quiet:
        print(json_text.document(document) if json_output else one_line(text))


@app.command("pause")
def pause_command(
    action: ActionArgument,
    reason: Annotated[str | None, typer.Option("--reason", help="Why; shown by status and run-all.")] = None,
    db: DbOption = None,
    now: NowOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Pause an action: run-all skips it (status skipped, with the reason); naming it still runs it."""
    from maintctl.store import schedules

    known_action(action, json_output)
    with opened(Flags(db=db, now=now, json=json_output), read_only=False) as (settings, connection):
        newly = schedules.pause(connection, action, reason, settings.now)
    text = f"{action}: paused" if newly else f"{action}: was paused already; reason updated"
    say(text, {"action": action, "paused": True, "was_paused": not newly, "reason": reason}, json_output, quiet)


@app.command("resume")
def resume_command(
    action: ActionArgument, db: DbOption = None, json_output: JsonOption = False, quiet: QuietOption = False
) -> None:
    """Resume a paused action."""
    from maintctl.store import schedules

    known_action(action, json_output)
    with opened(Flags(db=db, json=json_output), read_only=False) as (_, connection):
        resumed = schedules.resume(connection, action)
    text = f"{action}: resumed" if resumed else f"{action}: was not paused"
    say(text, {"action": action, "paused": False, "was_paused": resumed}, json_output, quiet)


@app.command("schedule")
def schedule_command(
    action: ActionArgument,
    every: ScheduleEveryOption = None,
    cron: CronOption = None,
    tz: TzOption = "UTC",
    default: Annotated[bool, typer.Option("--default", help="Back to the default schedule.")] = False,
    db: DbOption = None,
    now: NowOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Show or set when run-all runs an action, and the next times it will. Defaults: the housekeeping actions
    every run, retention, prune, optimize and backup every day, verify-backups every week."""
    from maintctl import timestamps
    from maintctl.store import history, schedules
    from maintctl.timestamps import parse_duration

    known_action(action, json_output)
    if default and (every is not None or cron is not None):
        raise typer.Exit(fail("--default cannot go with --every or --cron", json_output))
    if tz != "UTC" and cron is None:
        raise typer.Exit(fail("--tz goes with --cron", json_output))
    try:
        interval = parse_duration(every) if every is not None else None
    except ValueError as error:
        raise typer.Exit(fail(f"--every: {error}", json_output)) from None
    changing = every is not None or cron is not None or default
    with opened(Flags(db=db, now=now, json=json_output), read_only=not changing) as (settings, connection):
        if changing:
            schedules.set_schedule(connection, action, interval, cron, tz, settings.now)
        schedule = schedules.load_all(connection, registry.defaults((action,)))[action]
        last = history.last(connection, action)
        upcoming = [
            timestamps.format_instant(instant) for instant in schedule.upcoming(last and last.started, settings.now)
        ]
    text = f"{action}: {schedule.describe()}" + (" (paused)" if schedule.paused else "")
    if upcoming:
        text += f"; next: {', '.join(upcoming)}"
    document = {"action": action, "schedule": schedule.describe(), "paused": schedule.paused, "next": upcoming}
    say(text, document, json_output, quiet)
