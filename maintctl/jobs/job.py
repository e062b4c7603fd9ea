"""A job of the app's as maintctl reads its definition (jobs/definitions.py
keeps them), and when it is due.

A new job is due at once. Then `every D` is due at its previous scheduled
time plus D, `cron` at the expression's next time in its zone (read as
maintctl's action schedules are, daylight-saving changes included). The
occurrences missed while nothing ran are coalesced: one run, scheduled for
the latest of them, says how many it stands for beyond itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from maintctl import timestamps
from maintctl.cron import ScheduleError, duration_text, next_cron_time, previous_cron_time

MOST_COUNTED = 100_000  # missed cron times counted one by one at most (about a second); beyond, the count is that


@dataclass(frozen=True)
class Job:
    name: str
    type: str
    bot: str
    config: dict
    every: timedelta | None
    cron: str | None
    tz: str
    timeout: timedelta
    enabled: bool
    added_at: datetime
    broken: str | None = None  # why its row (written by hand, say) cannot be read: it is held back, with the reason

    def describe(self) -> str:
        if self.broken:
            return "unreadable"
        if self.cron:
            return f"cron {self.cron!r} ({self.tz})"
        return f"every {duration_text(self.every)}"

    def following(self, scheduled: datetime) -> datetime | None:
        """Given an occurrence, return the next (None: never again)."""
        if self.cron:
            return next_cron_time(self.cron, self.tz, scheduled)
        return timestamps.shift(scheduled, self.every)

    def next_run(self, last_scheduled: datetime | None) -> datetime | None:
        """Given its latest occurrence run or skipped (None: none yet),
        return when the job is next due (None: never again). A new job is due
        from when it was added. Raise ScheduleError where it cannot be kept."""
        if self.broken:
            raise ScheduleError(self.broken)
        return self.added_at if last_scheduled is None else self.following(last_scheduled)

    def occurrence(self, last_scheduled: datetime | None, now: datetime) -> tuple[datetime, int] | None:
        """Given its latest occurrence run or skipped, return the one due now
        (the latest of those that have come since) and how many before it it
        stands for; None where none is due."""
        due = self.next_run(last_scheduled)
        if due is None or due > now:
            return None
        if self.every:
            steps = int((now - due) / self.every)
            return timestamps.shift(due, self.every * steps), steps
        skipped = 0
        while skipped < MOST_COUNTED and (later := self.following(due)) is not None and later <= now:
            due, skipped = later, skipped + 1
        if skipped == MOST_COUNTED:  # a minutely job stopped for months: the last time, found backwards
            due = previous_cron_time(self.cron, self.tz, now) or due
        return due, skipped

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "type": self.type,
            "bot": self.bot,
            "config": self.config,
            "enabled": self.enabled,
            "schedule": self.describe(),
            "timeout": duration_text(self.timeout),
            "problem": self.broken,
        }
