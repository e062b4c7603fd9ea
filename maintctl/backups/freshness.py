"""How fresh this database's copies are at each destination, for status and
the metrics: the newest finished copy's time and size, read from one listing
of each destination (no manifest is read: the time is the one in the copy's
name, which is the backup's now). status asks for attention when a
destination's newest copy is older than twice the backup's schedule."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from maintctl import timestamps
from maintctl.backups import copies, located
from maintctl.backups.destinations import BadDestination, DestinationError

# The interval taken for a schedule of every run (cron's finest): copies then count as stale after two minutes.
EVERY_RUN = timedelta(minutes=1)


@dataclass(frozen=True)
class Newest:
    """A destination's newest copy of this database (name None: it has none), or why it could not be listed."""

    destination: str  # as shown, without credentials
    name: str | None = None
    created_at: datetime | None = None
    size: int | None = None
    error: str | None = None

    def as_json(self) -> dict:
        return {
            "destination": self.destination,
            "newest": self.name,
            "created_at": timestamps.format_instant(self.created_at) if self.created_at else None,
            "size": self.size,
            "error": self.error,
        }


def newest(
    written: tuple[str, ...], database: Path, database_id: str | None, now: datetime, listed=lambda destination: True
) -> list:
    """Given the destinations as written, the database and its id (None: no
    copies yet) and now, return each destination's Newest (a copy named with
    a time after now, from a clock that ran ahead, is newest only where it is
    alone: see keeping.order); `listed(destination)` says whether to list it
    (those it refuses are left out)."""
    found = []
    for destination in located.parsed(written):
        if isinstance(destination, BadDestination):
            found.append(Newest("(not a destination)", error=str(destination)))
            continue
        if not listed(destination):
            continue
        if database_id is None:
            found.append(Newest(destination.shown))
            continue
        try:
            held = copies.listing(destination, located.begins(database, database_id), read_manifests=False).copies
        except DestinationError as error:
            found.append(Newest(destination.shown, error=str(error).removeprefix(f"{destination.shown}: ")))
            continue
        last = located.newest_at_or_before(held, None, now)
        found.append(Newest(destination.shown, *((last.name, last.created_at, last.size) if last else ())))
    return found


def interval(schedule, last_started: datetime | None, now: datetime) -> timedelta:
    """Given the backup's schedule, its last start and now, return the time between its runs (for a cron
    schedule, the longest gap among its next times)."""
    if schedule.every:
        return schedule.every
    if schedule.cron:
        times = schedule.upcoming(last_started, now, 9)
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        return max(gaps, default=EVERY_RUN)
    return EVERY_RUN


def stale(found: list[Newest], allowed: timedelta, now: datetime, schedule_text: str) -> list[str]:
    """Given each destination's newest copy and the age allowed (twice the schedule's interval), return what needs
    attention: a destination that cannot be listed, holds no copy, or whose newest copy is older than allowed."""
    said = []
    for newest_copy in found:
        where = newest_copy.destination
        if newest_copy.error:
            said.append(f"backups at {where}: {newest_copy.error}")
        elif newest_copy.name is None:
            said.append(f"backups at {where}: no copy of this database")
        elif now - newest_copy.created_at > allowed:
            age = _age((now - newest_copy.created_at).total_seconds())
            said.append(
                f"backups at {where}: the newest copy, {newest_copy.name}, is {age} old (more than twice the"
                f" backup's schedule, {schedule_text})"
            )
    return said


def _age(seconds: float) -> str:
    """Given an age in seconds, return it as people read it (such as 2d 3h)."""
    minutes, hours, days = int(seconds // 60) % 60, int(seconds // 3600) % 24, int(seconds // 86400)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {int(seconds) % 60}s"
