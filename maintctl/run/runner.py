"""One run: open → lock → passes (for each action: decide → plan → (show |
apply in batches → after commit) → deliver notifications) → record history →
metrics and pings → report. Exceptions become exit codes here only."""

from __future__ import annotations

import signal
import sqlite3
import time
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

from maintctl import timestamps
from maintctl.actions import registry
from maintctl.actions.base.kinds import Action
from maintctl.config.settings import ConfigError, Settings
from maintctl.cron import ScheduleError
from maintctl.jobs import runs as job_runs
from maintctl.monitoring import hooks
from maintctl.results import ActionResult, Notifications, Report
from maintctl.run.followed import Followed
from maintctl.run.window import Slots, Window
from maintctl.store import history, identity, lock, outbox, schedules
from maintctl.store.db import ActionError, PartlyDone, Replaced, Stop, Stopped, check_schema, open_database


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
                _one_pass(connection, names, settings, scheduled, report, None)
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
        _one_pass(database.connection, due, pass_settings, scheduled, report, deadline)
        report.passes += 1
        if not settings.run_for or stop.is_set():
            break
        if cadence is None and settings.run_every is None:
            end = min(asked + settings.run_for, deadline or float("inf"))
            cadence = Window(
                database, names, settings, end, lambda name: _last_start(database.connection, report, name)
            )
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


def _one_pass(
    connection: sqlite3.Connection,
    names: list[str],
    settings: Settings,
    scheduled: bool,
    report: Report,
    deadline: float | None,
) -> None:
    kept = _schedules(connection, names, report)
    for name in names:
        entry = registry.entry(name)
        this_pass = ActionResult(name, dict.fromkeys(entry.counts, 0), started=settings.now)
        skip = _reason_to_skip(connection, kept[name], settings, scheduled, report)
        if skip is None and kept[name].paused:
            this_pass.notes.append(f"{_paused_text(kept[name])}; run anyway, as it was named")
        if skip is not None:
            this_pass.status, this_pass.reason, this_pass.recorded = "skipped", skip[0], skip[1]
        else:
            clock = time.monotonic()
            if report.run_id is not None:
                this_pass.on_commit = history.progress_hook(report, name, this_pass, clock)
            _run_action(connection, entry.load(), settings, this_pass, deadline)
            this_pass.duration = time.monotonic() - clock
            if entry.notifies:
                report.notifications.involved = True
                if settings.dry_run:
                    report.notifications.would_queue += this_pass.counts.get(entry.queues, 0)
                else:
                    _deliver(connection, settings, report.notifications)
        _merge(report, this_pass)


def _schedules(connection: sqlite3.Connection, names: list[str], report: Report) -> dict[str, schedules.Schedule]:
    try:
        return schedules.load_all(connection, registry.defaults(names))
    except (sqlite3.Error, ValueError) as error:
        report.run_warnings.append(f"schedules could not be read ({error}); every action runs")
        return {name: schedules.Schedule(name) for name in names}


def _reason_to_skip(
    connection: sqlite3.Connection,
    schedule: schedules.Schedule,
    settings: Settings,
    scheduled: bool,
    report: Report,
) -> tuple[str, bool] | None:
    """Return why the action is not run in this pass, and whether that goes
    into its history; None to run it."""
    if connection.stop.is_set():
        return f"stopped by {connection.stop.by} before it began", True
    if not scheduled:
        return None
    if schedule.paused:
        return _paused_text(schedule), True
    skip_unless = registry.entry(schedule.action).skip_unless
    if skip_unless and (nothing := skip_unless(settings)):
        return nothing, False
    if schedule.every is None and schedule.cron is None and not schedule.broken:
        return None  # every run: no need to ask when it last ran
    last = _last_start(connection, report, schedule.action)
    try:
        if schedule.due(last, settings.now):
            return None
        due_from = schedule.next_after(last, settings.now)
    except ScheduleError as error:
        return f"its schedule cannot be kept: {error}", True
    return f"not due: {schedule.describe()}, due from {_format(due_from)}", False


def _last_start(connection: sqlite3.Connection, report: Report, name: str) -> datetime | None:
    """Return when the action last began: in this run, or as its history says (None: never)."""
    ran = report.result_for(name)
    if ran and ran.status != "skipped":
        return ran.started
    last = history.last(connection, name)
    return last.started if last else None


def _paused_text(schedule: schedules.Schedule) -> str:
    text = f"paused since {schedule.paused_at}"
    return text + (f": {schedule.paused_reason}" if schedule.paused_reason else "")


def _format(instant: datetime | None) -> str:
    return timestamps.format_instant(instant) if instant else "now"


def _merge(report: Report, this_pass: ActionResult) -> None:
    """Add one pass's result to the run's result for that action."""
    total = report.result_for(this_pass.action)
    if total is None:
        report.actions.append(this_pass)
        return
    if total.status == "skipped" and this_pass.status != "skipped":
        total.status, total.reason, total.started, total.recorded = "ok", None, this_pass.started, True
    if this_pass.status == "failed":
        total.status, total.error = "failed", total.error or this_pass.error
        total.usage = total.usage or this_pass.usage
    for name, count in this_pass.counts.items():
        total.counts[name] = total.counts.get(name, 0) + count
    total.duration += this_pass.duration
    total.warnings.extend(warning for warning in this_pass.warnings if warning not in total.warnings)
    total.notes.extend(note for note in this_pass.notes if note not in total.notes)


def _run_action(
    connection: sqlite3.Connection,
    action: Action,
    settings: Settings,
    result: ActionResult,
    deadline: float | None,
) -> None:
    try:
        check_schema(connection, action.requires)
        if settings.dry_run:
            result.planned = action.preview(connection, settings)
            result.add(action.tally(result.planned), result.planned)
        else:
            action.run(connection, settings, result, deadline)
        # Asked after the work: what is still due then is only what cannot be done
        # (a scan of the whole backlog before it would cost as much as planning it).
        result.warnings.extend(action.problems(connection, settings))
        result.notes.extend(action.notes(connection, settings))
    except Replaced as replaced:  # a window goes on with the file there now
        result.notes.append(str(replaced))
    except Stopped:
        result.notes.append(
            f"stopped by {connection.stop.by}: the batches done are kept, the rest is left for the next run"
        )
    except PartlyDone as partly:  # what was done (planned, in a dry run) is counted and shown; the action failed
        if settings.dry_run:
            result.planned = partly.done
        result.add(action.tally(partly.done), partly.done)
        result.status, result.error = "failed", str(partly)
    except ConfigError as error:  # its own configuration (a rules file) is wrong: exit 2, the others run
        result.status, result.error, result.usage = "failed", str(error), True
    except Exception as error:  # noqa: BLE001 - one action's failure, a bug included, never stops the others
        result.status, result.error = "failed", _describe(error)
    if not settings.dry_run and not connection.stop.is_set():
        try:
            counts, warnings = action.after_commit(connection, settings)
            result.counts.update(counts)
            result.warnings.extend(warnings)
        except Stopped:
            pass  # what is left stays queued for the next run
        except Exception as error:  # noqa: BLE001 - reported as the action's failure
            result.status, result.error = "failed", result.error or _describe(error)


def _deliver(connection: sqlite3.Connection, settings: Settings, notifications: Notifications) -> None:
    if settings.redis_url is None or notifications.error:
        return  # not configured, or already failed in this run: they stay queued
    try:
        delivery = outbox.deliver(
            connection,
            settings,
            route=lambda msg_id: job_runs.stream_of(msg_id, settings),
            delivered=lambda connection, sent: job_runs.mark_enqueued(connection, sent, settings.now),
        )
    except Stopped:
        return  # they stay queued for the next run
    except Exception as error:  # noqa: BLE001 - Redis, the database, or a bug: they stay queued, the rest runs
        notifications.error = _describe(error)
        return
    notifications.delivered += delivery.delivered
    notifications.already_sent += delivery.already_sent
    for stream, count in delivery.streams.items():
        notifications.streams[stream] = notifications.streams.get(stream, 0) + count


def _undelivered(connection: sqlite3.Connection) -> int:
    try:
        return outbox.undelivered_count(connection)
    except sqlite3.Error:
        return 0


def _describe(error: Exception) -> str:
    """Given an exception, return one line for the operator (never a traceback)."""
    if isinstance(error, (ActionError, outbox.DeliveryError)):
        return str(error)
    if isinstance(error, sqlite3.Error):
        return f"database error: {error}"
    if isinstance(error, OSError):
        return f"{error.strerror or error} ({error.filename})" if error.filename else str(error)
    from maintctl.config.urls import redact_text

    return redact_text(f"unexpected {type(error).__name__}: {error}")
