"""One pass over the actions of a run: for each, in order, decide whether it
runs (stopped, paused, not due by its schedule) → check the tables it needs
→ plan and show (a dry run) or do it → after commit → deliver the
notifications it queued; and add its result to the run's. One action's
failure never stops the others: each becomes the action's error, in one line."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime

from maintctl import timestamps
from maintctl.actions import registry
from maintctl.actions.base.kinds import Action
from maintctl.config.settings import ConfigError, Settings
from maintctl.cron import ScheduleError
from maintctl.jobs import runs as job_runs
from maintctl.results import ActionResult, Notifications, Report
from maintctl.store import history, outbox, schedules
from maintctl.store.db import ActionError, PartlyDone, Replaced, Stopped, check_schema


def one_pass(
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
    last = last_start(connection, report, schedule.action)
    try:
        if schedule.due(last, settings.now):
            return None
        due_from = schedule.next_after(last, settings.now)
    except ScheduleError as error:
        return f"its schedule cannot be kept: {error}", True
    return f"not due: {schedule.describe()}, due from {_format(due_from)}", False


def last_start(connection: sqlite3.Connection, report: Report, name: str) -> datetime | None:
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
