"""`run-all --for D`: when the next pass begins. Without `--every`
(Window), between passes sleep until the next thing is due, and wake early
when the app commits; with it (Slots), a pass every E.

After each pass every action says when it next has something to do: the
due-row actions the first instant a row comes due (upcoming.py, a few index
seeks), enqueue-jobs its jobs' next run, the actions with a schedule their
next due time. The window sleeps until the soonest of those, the end of the
window or a signal, looking every POLL at `PRAGMA data_version` alone (no
table is read while nothing changes): when the app commits, the due times
are asked again, so that a reminder written a moment before it is due, or
already due, fires a moment later. Then a pass runs the actions that are
due, and no others. Each look also stats the database's path: where it
names another file (a restore, a deploy), the window follows it
(followed.py) with a pass of every action on the new file.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from maintctl import timestamps
from maintctl.actions import registry
from maintctl.actions.base.upcoming import Outlook
from maintctl.config.settings import Settings
from maintctl.run.followed import Followed
from maintctl.store import schedules
from maintctl.store.db import Stopped

POLL = 0.025  # seconds between looks at PRAGMA data_version: how soon the app's commits are seen
RECHECK = 1.0  # seconds at least between passes tried again for rows a pass could not do, after a commit


class Window:
    def __init__(
        self,
        database: Followed,
        names: list[str],
        settings: Settings,
        end: float,
        last_started: Callable[[str], datetime | None],
    ):
        self.database = database
        self.names = names
        self.settings = settings
        self.end = end  # time.monotonic() when the window ends
        self.last_started = last_started  # an action's last start, this run's passes included
        self._forget()

    @property
    def connection(self) -> sqlite3.Connection:
        return self.database.connection

    def _forget(self) -> None:
        """Begin with the file the path names: nothing known of its rows."""
        try:
            self.version = self._data_version() if self.connection is not None else None
        except sqlite3.Error:  # the app holds it: the next look finds a version unlike this one
            self.version = None
        self.left: dict[str, int] = {}  # per action, the rows due that its last pass left (it cannot act on them)
        self.remaining: dict[str, int] = {}  # per action, the rows due after its last pass
        self.held: dict[str, float] = {}  # actions with rows left, to try again after a commit: since when

    def now(self) -> datetime:
        """The run's clock, to the millisecond, as a pass reads it."""
        now = timestamps.shift(self.settings.now, timedelta(seconds=time.monotonic() - self.settings.now_taken))
        return now.replace(microsecond=now.microsecond // 1000 * 1000)

    def _data_version(self) -> int:
        (version,) = self.connection.execute("PRAGMA data_version").fetchone()
        return version

    def outlooks(self, names: list[str] | None = None, at: datetime | None = None) -> dict[str, Outlook]:
        """Return, per action (of those named) that has or will have something
        to do, how much is due now (or at `at`) and from when next."""
        settings = replace(self.settings, now=at or self.now())
        kept = schedules.load_all(self.connection, registry.defaults(self.names))
        found = {}
        for name in self.names if names is None else names:
            schedule = kept[name]
            try:
                if schedule.paused or _nothing_for(name, settings):
                    continue
                if schedule.every is None and schedule.cron is None and not schedule.broken:
                    found[name] = registry.entry(name).load().outlook(self.connection, settings)
                else:
                    found[name] = Outlook(schedule.next_after(self.last_started(name), settings.now))
            except (sqlite3.Error, ValueError):
                continue  # its pass said what is wrong; the window does not wait for it
        return found

    def wait(self, ran: list[str], ran_at: datetime) -> list[str] | None:
        """Given the actions the last pass ran and its now, sleep until an
        action is due (its next instant has come, the app has written rows
        due already, or has changed what held rows back), the window ends or
        the run is asked to stop; return the actions due (in run-all's order),
        None where the window is over."""
        try:
            self._passed(ran, ran_at)
            outlooks = self.outlooks()
        except Stopped:
            return None
        except sqlite3.Error:  # the app holding the database past the busy timeout: what was known holds
            outlooks = {}
        stop = self.connection.stop
        while not stop.is_set():
            left = self.end - time.monotonic()
            if left <= 0:
                return None
            now = self.now()
            due = [name for name in self.names if name in outlooks and self._due(outlooks[name], name, now)]
            if due:
                return due
            soonest = min((outlook.next for outlook in outlooks.values() if outlook.next), default=None)
            until_due = (soonest - now).total_seconds() if soonest else left
            until_recheck = min((at + RECHECK - time.monotonic() for at in self.held.values()), default=left)
            if stop.wait(max(0.0, min(POLL, left, until_due, until_recheck))):
                return None
            if self.database.moved():  # a restore, a deploy: the path names another file
                found = self.database.follow()
                self._forget()
                if found:
                    return list(self.names)  # a pass of every action on it, as a run's first
                outlooks = {}
                continue
            if self.connection is None:
                continue  # the path names no database to use: look again in a moment
            try:
                version = self._data_version()
                if version != self.version:  # the app committed: what is due may have changed
                    self.version = version
                    outlooks = self.outlooks()
                    self._changed(outlooks)
            except Stopped:
                return None
            except sqlite3.Error:
                continue  # the app holds the database: look again in a moment
        return None

    def _passed(self, ran: list[str], ran_at: datetime) -> None:
        """After a pass of `ran` at `ran_at`: what was due then and is still
        there is what the pass cannot do (a reminder whose memory is gone) and
        is not waited for; what came due since, even by a millisecond, is due.
        A pass held back by --max-items that got on is followed by another."""
        passed = self.outlooks(ran, ran_at)
        for name in ran:
            remaining = passed[name].due if name in passed else 0
            got_on = remaining < self.remaining.get(name, remaining + 1)
            self.left[name] = 0 if (self.settings.max_items and got_on) else remaining
            self.remaining[name] = remaining
            self.held.pop(name, None)

    def _changed(self, outlooks: dict[str, Outlook]) -> None:
        """After the app committed: where rows were left that the pass could
        not do, fewer of them lowers the mark (so that a row due now shows),
        and the action is tried again (its trigger dropped, its memory made:
        what held them may be gone), at most once every RECHECK."""
        for name, outlook in outlooks.items():
            if self.left.get(name):
                self.left[name] = min(self.left[name], outlook.due)
                self.held.setdefault(name, time.monotonic())

    def _due(self, outlook: Outlook, name: str, now: datetime) -> bool:
        if outlook.next is not None and outlook.next <= now:
            return True
        if outlook.due > self.left.get(name, 0):
            return True
        return name in self.held and time.monotonic() - self.held[name] >= RECHECK


class Slots:
    """`run-all --for D --every E`: a pass every E. After a pass that overran,
    the next slot that has not begun: the slots missed are counted, never run
    back to back."""

    def __init__(
        self, database: Followed, names: list[str], began: float, length: float, every: float, deadline: float | None
    ):
        self.database, self.stop, self.names = database, database.connection.stop, names
        self.began, self.end, self.every = began, min(began + length, deadline or float("inf")), every
        self.slot = 0  # the slot the last pass began in
        self.skipped = 0

    def wait(self, ran: list[str], ran_at: datetime) -> list[str] | None:
        """Sleep until the next slot begins (with a database to use: the path
        followed where it names another file); return every action, None
        where the window is over."""
        while True:
            following = int((time.monotonic() - self.began) // self.every) + 1
            self.skipped += following - self.slot - 1
            self.slot = following
            next_start = self.began + self.slot * self.every
            if next_start >= self.end or self.stop.wait(max(0.0, next_start - time.monotonic())):
                return None
            if self.database.moved():
                self.database.follow()
            if self.database.connection is not None:
                return self.names


def _nothing_for(name: str, settings: Settings) -> bool:
    skip_unless = registry.entry(name).skip_unless
    return bool(skip_unless and skip_unless(settings))
