"""Pauses and schedules, kept in maintctl_schedules, and the decision whether
run-all (started by cron every minute) runs an action now.

An action with no schedule of its own runs on every run-all, except those
the registry gives an interval (daily; verify-backups weekly). `every D` is
due when its last run began D ago or more (less a little slack: cron starts
runs a second or two late); a cron
expression is due when one of its times has come since the last run (or since
the schedule was set), so a time missed while the machine was off is made up
once, at the next run. Cron times are read in the schedule's time zone, with
daylight-saving changes handled as Debian's cron does (through cronsim).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from maintctl import timestamps
from maintctl.cron import ScheduleError, check_schedule, duration_text, next_cron_time
from maintctl.store.db import table_exists, transaction

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS maintctl_schedules (
    action TEXT PRIMARY KEY,
    every_seconds REAL,
    cron TEXT,
    tz TEXT,
    set_at TEXT NOT NULL,
    paused_at TEXT,
    paused_reason TEXT
)"""

_SLACK = timedelta(seconds=60)


@dataclass(frozen=True)
class Schedule:
    action: str
    every: timedelta | None = None  # with cron None too: every run
    cron: str | None = None
    tz: str = "UTC"
    set_at: datetime | None = None  # None: the default
    paused_at: str | None = None
    paused_reason: str | None = None
    broken: str | None = None  # why the schedule kept in the database cannot be read

    @property
    def paused(self) -> bool:
        return self.paused_at is not None

    def describe(self) -> str:
        if self.broken:
            return "unreadable"
        if self.cron:
            return f"cron {self.cron!r} ({self.tz})"
        if self.every:
            return f"every {duration_text(self.every)}"
        return "every run"

    def next_after(self, reference: datetime | None, now: datetime | None = None) -> datetime | None:
        """Given the start of the last run (None: never ran), return the
        instant from which the action is due (None: due on every run). A last
        run dated after `now` (a run given a later --now, a clock since put
        right) is not taken for the last one, and a schedule set after `now`
        counts from now, so that neither holds the action back until that
        date. Raise ScheduleError where the schedule cannot be kept."""
        if self.broken:
            raise ScheduleError(self.broken)
        if now is not None and reference is not None and reference > now:
            reference = None
        if self.cron:
            start = reference or self.set_at
            start = min(start, now) if start and now else start
            return next_cron_time(self.cron, self.tz, start) if start else None
        if self.every:
            return timestamps.shift(reference, self.every - min(_SLACK, self.every / 10)) if reference else None
        return None

    def upcoming(self, last_started: datetime | None, now: datetime, count: int = 3) -> list[datetime]:
        """Given the start of the last run and now, return the next `count`
        instants from which run-all runs the action ([] for every run)."""
        due_from = self.next_after(last_started, now)
        if due_from is None and not (self.cron or self.every):
            return []
        times = [max(due_from or now, now)]
        while len(times) < count and times[-1] < timestamps.LATEST:
            following = (
                next_cron_time(self.cron, self.tz, times[-1]) if self.cron else timestamps.shift(times[-1], self.every)
            )
            if following is None:
                break
            times.append(following)
        return times

    def due(self, last_started: datetime | None, now: datetime) -> bool:
        """Given the start of the action's last run (None: never) and now,
        return whether run-all should run it now."""
        due_from = self.next_after(last_started, now)
        return due_from is None or due_from <= now


def load_all(connection: sqlite3.Connection, defaults: Mapping[str, timedelta | None]) -> dict[str, Schedule]:
    """Given the actions asked about and each one's default interval (the
    registry's: None, every run), return each one's schedule (its default
    where none is kept)."""
    kept = {}
    if table_exists(connection, "maintctl_schedules"):
        for row in connection.execute(
            "SELECT action, every_seconds, cron, tz, set_at, paused_at, paused_reason FROM maintctl_schedules"
        ):
            if row[0] in defaults:
                kept[row[0]] = _schedule(defaults[row[0]], *row)
    return {name: kept.get(name) or Schedule(name, every=every) for name, every in defaults.items()}


def _schedule(default_every, action, every, cron, tz, set_at, paused_at, reason) -> Schedule:
    """Given the action's default interval and its maintctl_schedules row,
    return its Schedule; one that cannot be read (written by hand, say) is
    kept as broken, so that only its action is held back, with the reason,
    and every other one runs."""
    base = Schedule(action, every=default_every) if every is None and cron is None else Schedule(action)
    try:
        interval = timedelta(seconds=every) if every is not None else base.every
        if interval is not None and not timedelta(0) < interval <= timestamps.LONGEST:
            raise ValueError(f"an interval of {every!r} seconds")
        set_instant = timestamps.from_canonical(set_at) if (every is not None or cron) else None
    except (TypeError, ValueError, OverflowError) as error:
        broken = f"the schedule kept for it cannot be read ({error}); set it again with maintctl schedule"
        return Schedule(action, paused_at=paused_at, paused_reason=reason, broken=broken)
    return Schedule(action, interval, cron, tz or "UTC", set_instant, paused_at, reason)


def set_schedule(
    connection: sqlite3.Connection, action: str, every: timedelta | None, cron: str | None, tz: str, now: datetime
) -> None:
    """Keep the action's schedule (both None: back to its default); a pause is kept as it was."""
    check_schedule(every, cron, tz, now)
    with transaction(connection):
        connection.execute(TABLE_SQL)
        connection.execute(
            "INSERT INTO maintctl_schedules (action, every_seconds, cron, tz, set_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (action) DO UPDATE SET every_seconds = excluded.every_seconds, cron = excluded.cron,"
            " tz = excluded.tz, set_at = excluded.set_at",
            (
                action,
                every.total_seconds() if every is not None else None,
                cron,
                tz if cron else None,
                timestamps.format_instant(now),
            ),
        )


def pause(connection: sqlite3.Connection, action: str, reason: str | None, now: datetime) -> bool:
    """Pause the action; return False where it was paused already (its reason is then replaced)."""
    with transaction(connection):
        connection.execute(TABLE_SQL)
        was_paused = connection.execute(
            "SELECT 1 FROM maintctl_schedules WHERE action = ? AND paused_at IS NOT NULL", (action,)
        ).fetchone()
        connection.execute(
            "INSERT INTO maintctl_schedules (action, set_at, paused_at, paused_reason) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (action) DO UPDATE SET paused_at = coalesce(paused_at, excluded.paused_at),"
            " paused_reason = excluded.paused_reason",
            (action, timestamps.format_instant(now), timestamps.format_instant(now), reason),
        )
    return not was_paused


def resume(connection: sqlite3.Connection, action: str) -> bool:
    """Resume the action; return False where it was not paused."""
    if not table_exists(connection, "maintctl_schedules"):
        return False
    with transaction(connection):
        cursor = connection.execute(
            "UPDATE maintctl_schedules SET paused_at = NULL, paused_reason = NULL"
            " WHERE action = ? AND paused_at IS NOT NULL",
            (action,),
        )
    return cursor.rowcount > 0
