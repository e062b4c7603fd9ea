"""Schedules' arithmetic, shared by the actions' schedules (store/schedules.py)
and the app's jobs (jobs/definitions.py): cron expressions of five fields read
in a time zone as Debian's cron reads them (through cronsim, daylight-saving
changes included), the check of a schedule, and a duration as it is written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class ScheduleError(ValueError):
    """A schedule that cannot be kept; the message says why."""


def duration_text(duration: timedelta) -> str:
    seconds = duration.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def zone(name: str):
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(f"{name!r} is not a time zone (such as UTC or Europe/Berlin)") from None


def next_cron_time(expression: str, tz: str, after: datetime) -> datetime | None:
    from cronsim import CronSim, CronSimError

    fields = len(expression.split())
    if fields != 5:
        raise ScheduleError(
            f"{expression!r} has {fields} field{'s' if fields != 1 else ''}; a cron expression has five: minute hour day month weekday"
        )
    try:
        times = CronSim(expression, after.astimezone(zone(tz)))
        return next(times).astimezone(UTC)
    except CronSimError as error:
        raise ScheduleError(f"{expression!r} is not a cron expression ({error})") from None
    except (StopIteration, OverflowError):
        return None  # never again, within the 50 years cronsim looks ahead or before year 9999 ends


def previous_cron_time(expression: str, tz: str, before: datetime) -> datetime | None:
    """Return the expression's latest time at or before `before` (None: none within the 50 years cronsim looks back)."""
    from cronsim import CronSim

    try:
        # (going backwards cronsim passes over its start: begin a second into the minute, cron's times being whole minutes)
        start = (before.replace(second=0, microsecond=0) + timedelta(seconds=1)).astimezone(zone(tz))
        return next(CronSim(expression, start, reverse=True)).astimezone(UTC)
    except (StopIteration, OverflowError):
        return None


def check_schedule(every: timedelta | None, cron: str | None, tz: str, now: datetime) -> None:
    """Raise ScheduleError where the schedule could not be kept."""
    if every is not None and cron is not None:
        raise ScheduleError("give --every or --cron, not both")
    zone(tz)
    if cron is not None:
        next_cron_time(cron, tz, now)
