"""One run: open → lock → passes (passes.py: for each action decide → plan →
(show | apply in batches → after commit) → deliver notifications), again
while a window of run-all --for is open (window.py) → record history →
metrics and pings → report."""

from __future__ import annotations

import signal
import sqlite3
import time
from dataclasses import replace
from datetime import timedelta
from functools import partial

from maintctl import timestamps
from maintctl.actions import registry
from maintctl.config.settings import Settings
from maintctl.monitoring import hooks
from maintctl.results import Report
from maintctl.run.followed import Followed
from maintctl.run.passes import last_start, one_pass
from maintctl.run.window import Slots, Window
from maintctl.store import history, identity, lock, outbox
from maintctl.store.db import Stop, open_database


def run(names: list[str], settings: Settings, scheduled: bool = False, stop: Stop | None = None) -> Report:
    """Given the actions to run, in order, run each (each isolated from the
    others' failures) and return what happened. `scheduled` (run-all) heeds
    pauses and schedules; an action named on its own runs even when paused.
    Raises ConfigError when the database cannot be used at all, lock.Busy
    when another run holds it (a dry run changes nothing, and takes no lock).
    `stop`, where given, is the run's (set already: nothing begins), so that
    a signal heard before this run set its own handler still stops it."""
    stop = stop if stop is not None else Stop()

    def asked_to_stop(number: int, _) -> None:
        stop.by = signal.Signals(number).name
        stop.set()

    # SIGTERM (systemd, a container stopping) and SIGINT (Ctrl-C) alike: the batch in hand is finished, nothing more begins.
    previous = {number: signal.signal(number, asked_to_stop) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        opener = partial(
            open_database,
            settings.db,
            read_only=settings.dry_run,
            busy_timeout=settings.busy_timeout,
            stop=stop,
            create_nothing=settings.dry_run,
        )
        connection = opener()
        if settings.dry_run:
            try:
                report = Report(settings)
                one_pass(connection, names, settings, scheduled, report, None)
                report.passes = 1
                report.notifications.queued = _undelivered(connection)
                return report
            finally:
                connection.close()
        # Checked, and opened again once the lock is held: a run waiting for it keeps no file open (followed.py).
        connection.close()
        if settings.run_for:  # imported before the lock is waited for: a hand-over's first pass begins at once
            for name in names:
                registry.entry(name).load()
        lock_file = settings.lock_file or lock.default_path(settings.db)
        asked = time.monotonic()
        with lock.held(settings.db, lock_file, settings.lock_wait, stop) as held_by_another:
            waited = time.monotonic() - asked
            if held_by_another:  # the first pass's now is when the lock was had (the hand-over of run-all --for)
                settings = replace(
                    settings,
                    now=timestamps.shift(settings.now, timedelta(seconds=waited)),
                    now_taken=settings.now_taken + waited,
                )
            database = Followed(settings.db, opener)
            try:
                return _run_locked(database, names, settings, scheduled, asked)
            finally:
                database.close()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _run_locked(database: Followed, names: list[str], settings: Settings, scheduled: bool, asked: float) -> Report:
    """Run the passes, holding the lock (asked for at `asked`, on time.monotonic()'s clock: a window of
    run-all --for ends D after the invocation began, whatever it waited for the lock, so that the next
    one, started by cron, takes over then). A window follows its path to the file it names (followed.py)
    and records its history there."""
    report = Report(settings, run_id=identity.new_uuid())
    stop = database.connection.stop
    told = hooks.configured(settings)
    for hook in told:
        report.run_warnings.extend(hook.started(report))
    began = time.monotonic()
    deadline = began + settings.max_seconds if settings.max_seconds else None
    cadence: Window | Slots | None = None  # run-all --for: when the next pass begins
    due = names
    while True:
        elapsed = timedelta(seconds=time.monotonic() - settings.now_taken)
        pass_settings = replace(settings, now=timestamps.shift(settings.now, elapsed)) if report.passes else settings
        one_pass(database.connection, due, pass_settings, scheduled, report, deadline)
        report.passes += 1
        if not settings.run_for or stop.is_set():
            break
        if cadence is None and settings.run_every is None:
            end = min(asked + settings.run_for, deadline or float("inf"))
            cadence = Window(database, names, settings, end, lambda name: last_start(database.connection, report, name))
        elif cadence is None:
            cadence = Slots(database, names, began, settings.run_for, settings.run_every, deadline)
        due = cadence.wait(due, pass_settings.now)
        if due is None:
            break
    report.slots_skipped = cadence.skipped if isinstance(cadence, Slots) else 0
    report.stopped = stop.by if stop.is_set() else None
    if settings.run_for and database.moved():
        database.follow()  # the history goes into the file the path names at the end
    report.run_warnings.extend(database.warnings)
    connection = database.connection
    if connection is None:
        report.database_error = f"{database.problem}; the window's history is not recorded"
    else:
        report.notifications.queued = _undelivered(connection)
        history.record_report(connection, report)
    for hook in told:
        report.run_warnings.extend(hook.finished(connection, report))
    return report


def _undelivered(connection: sqlite3.Connection) -> int:
    try:
        return outbox.undelivered_count(connection)
    except sqlite3.Error:
        return 0
