"""One pass: open → for each action: plan → (show | apply in batches → after
commit) → deliver notifications → report. Exceptions become exit codes here only."""

from __future__ import annotations

import signal
import sqlite3
import threading
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from maintctl import actions, lock, outbox
from maintctl.config import Settings
from maintctl.db import SchemaError, Stopped, check_schema, open_database, transaction

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED, EXIT_TERMINATED = 0, 1, 2, 75, 143


@dataclass
class ActionResult:
    action: str
    counts: dict[str, int]
    status: str = "ok"  # ok | failed | skipped
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    planned: list[Any] | None = None  # the items, in a dry run


@dataclass
class Notifications:
    involved: bool = False  # an action that queues notifications ran
    delivered: int = 0
    already_sent: int = 0
    would_queue: int = 0  # in a dry run
    queued: int = 0  # still waiting after the run
    error: str | None = None


@dataclass
class Report:
    settings: Settings
    actions: list[ActionResult] = field(default_factory=list)
    notifications: Notifications = field(default_factory=Notifications)
    stopped: bool = False  # by SIGTERM: the batch in hand was finished or rolled back, the rest left

    @property
    def exit_code(self) -> int:
        if self.stopped:
            return EXIT_TERMINATED
        failed = any(result.status == "failed" for result in self.actions)
        return EXIT_FAILED if failed or self.notifications.error else EXIT_OK

    @property
    def warnings(self) -> list[str]:
        return [f"{result.action}: {warning}" for result in self.actions for warning in result.warnings]


def run(names: list[str], settings: Settings) -> Report:
    """Given the actions to run, in order, run each once (each isolated from
    the others' failures) and return what happened. Raises ConfigError when
    the database cannot be used at all, lock.Busy when another run holds it
    (a dry run changes nothing, and takes no lock)."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        connection = open_database(
            settings.db, read_only=settings.dry_run, busy_timeout=settings.busy_timeout, stop=stop
        )
        try:
            if settings.dry_run:
                return _run_actions(connection, names, settings)
            lock_file = settings.lock_file or lock.default_path(settings.db)
            with lock.held(settings.db, lock_file, settings.lock_wait, stop):
                return _run_actions(connection, names, settings)
        finally:
            connection.close()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_actions(connection: sqlite3.Connection, names: list[str], settings: Settings) -> Report:
    report = Report(settings)
    for name in names:
        action = actions.load(name)
        if connection.stop.is_set():
            report.actions.append(
                ActionResult(
                    name, dict.fromkeys(action.COUNTS, 0), "skipped", notes=["stopped by SIGTERM before it began"]
                )
            )
            continue
        result = _run_action(connection, action, settings)
        report.actions.append(result)
        if action.NOTIFIES:
            report.notifications.involved = True
            if settings.dry_run:
                report.notifications.would_queue += len(result.planned or ())
            else:
                _deliver(connection, settings, report.notifications)
    report.notifications.queued = _undelivered(connection)
    report.stopped = connection.stop.is_set()
    return report


def _run_action(connection: sqlite3.Connection, action: ModuleType, settings: Settings) -> ActionResult:
    result = ActionResult(action.NAME, counts=dict.fromkeys(action.COUNTS, 0))
    try:
        check_schema(connection, action.REQUIRES)
        result.warnings.extend(action.problems(connection, settings))
        if settings.dry_run:
            result.planned = action.plan(connection, settings, None)
            _add(result, action.tally(result.planned), result.planned)
        else:
            for table_sql in action.OWN_TABLES:
                connection.execute(table_sql)
            _apply_in_batches(connection, action, settings, result)
    except Stopped:
        result.notes.append("stopped by SIGTERM: the batches done are kept, the rest is left for the next run")
    except Exception as error:  # noqa: BLE001 - one action's failure, a bug included, never stops the others
        result.status, result.error = "failed", _describe(error)
    if not settings.dry_run and hasattr(action, "after_commit") and not connection.stop.is_set():
        try:
            counts, warnings = action.after_commit(connection, settings)
            result.counts.update(counts)
            result.warnings.extend(warnings)
        except Stopped:
            pass  # what is left stays queued for the next run
        except Exception as error:  # noqa: BLE001 - reported as the action's failure
            result.status, result.error = "failed", result.error or _describe(error)
    return result


def _apply_in_batches(
    connection: sqlite3.Connection, action: ModuleType, settings: Settings, result: ActionResult
) -> None:
    """Plan and apply a batch at a time, one transaction each, until nothing
    is due. A batch of which nothing could be changed (another run got there
    first) ends the pass, so that it always ends."""
    while connection.may_go_on() and (items := action.plan(connection, settings, settings.batch_size)):
        with transaction(connection):
            changed = action.apply(connection, items, settings)
        _add(result, action.tally(changed), changed)
        if len(changed) < len(items):
            result.notes.append(f"{len(items) - len(changed)} changed by another process meanwhile; left as they were")
        if not changed or len(items) < settings.batch_size:
            break


def _add(result: ActionResult, counts: dict[str, int], items: list[Any]) -> None:
    for name, count in counts.items():
        result.counts[name] = result.counts.get(name, 0) + count
    result.warnings.extend(item.warning for item in items if item.warning)


def _deliver(connection: sqlite3.Connection, settings: Settings, notifications: Notifications) -> None:
    if settings.redis_url is None or notifications.error:
        return  # not configured, or already failed in this run: they stay queued
    try:
        delivery = outbox.deliver(connection, settings)
    except Stopped:
        return  # they stay queued for the next run
    except (outbox.DeliveryError, sqlite3.Error) as error:
        notifications.error = _describe(error)
        return
    notifications.delivered += delivery.delivered
    notifications.already_sent += delivery.already_sent


def _undelivered(connection: sqlite3.Connection) -> int:
    try:
        return outbox.undelivered_count(connection)
    except sqlite3.Error:
        return 0


def _describe(error: Exception) -> str:
    """Given an exception, return one line for the operator (never a traceback)."""
    if isinstance(error, (SchemaError, outbox.DeliveryError)):
        return str(error)
    if isinstance(error, sqlite3.Error):
        return f"database error: {error}"
    if isinstance(error, OSError):
        return f"{error.strerror or error} ({error.filename})" if error.filename else str(error)
    return f"unexpected {type(error).__name__}: {error}"
