"""What status and stats tell: read-only questions about the database, its
history and its lock, answered as plain data for the views to show."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

from maintctl import timestamps
from maintctl.actions import registry
from maintctl.config.settings import Settings
from maintctl.cron import ScheduleError
from maintctl.jobs import status as job_status
from maintctl.jobs.status import percentile
from maintctl.store import history, lock, outbox, schedules, streams
from maintctl.store.db import ActionError, SchemaError, check_schema


def _due_count(connection: sqlite3.Connection, name: str, settings: Settings) -> tuple[int | None, str | None]:
    action = registry.entry(name).load()
    try:
        check_schema(connection, action.requires)
        return action.count_due(connection, settings), None
    except (SchemaError, sqlite3.Error) as error:
        return None, str(error)


def status(connection: sqlite3.Connection, settings: Settings) -> dict:
    """Return, per action, whether it is paused, its schedule, its last run
    and last success and how many items are due; the notifications waiting;
    the lock's holder; the consumer groups of the streams maintctl writes
    (where Redis answers); and `attention`: what needs an operator (status exits
    1 when that is not empty)."""
    kept = schedules.load_all(connection, registry.defaults(registry.ORDER))
    attention, rows = [], []
    for name in registry.ORDER:
        schedule = kept[name]
        last, success = history.last(connection, name), history.last(connection, name, ("ok",))
        due, problem = _due_count(connection, name, settings)
        try:
            due_from = schedule.next_after(last.started if last else None, settings.now)
        except ScheduleError as error:
            due_from, problem = None, str(error)
        if last and last.status == "failed" and not schedule.paused:
            attention.append(f"{name}: its last run failed: {last.error}")
        if problem:
            attention.append(f"{name}: {problem}")
        rows.append(
            {
                "action": name,
                "paused": schedule.paused,
                "paused_at": schedule.paused_at,
                "paused_reason": schedule.paused_reason,
                "schedule": schedule.describe(),
                "next_due": timestamps.format_instant(due_from) if due_from else None,
                "last_run": last.started_at if last else None,
                "last_status": last.status if last else None,
                "last_error": last.error if last else None,
                "last_success": success.started_at if success else None,
                "due_now": due,
            }
        )
    queued = outbox.queue_state(connection)
    age = (settings.now - queued.oldest).total_seconds() if queued.oldest else 0.0
    if queued.count and age > settings.stuck_after.total_seconds():
        attention.append(
            f"{queued.count} notifications undelivered, the oldest queued {age / 60:.0f} min ago"
            f" (more than MAINTCTL_STUCK_AFTER, {streams.duration(settings.stuck_after.total_seconds())})"
        )
    redis, readers = None, None
    if settings.redis_url is not None:
        version, problem = outbox.probe(settings)
        redis = {"url": settings.redis_display, "answers": problem is None, "version": version, "error": problem}
        if problem:
            attention.append(f"Redis does not answer: {problem}")
        else:
            readers = _readers(settings, attention)
    listed = job_status.listing(connection, settings.now)
    attention.extend(job_status.attention(listed))
    backups = _backups(connection, settings, kept["backup"])
    attention.extend(backups.pop("attention"))
    lock_file = settings.lock_file or lock.default_path(settings.db)
    return {
        "now": timestamps.format_instant(settings.now),
        "database": str(settings.db),
        "actions": rows,
        "notifications": {
            "queued": queued.count,
            "oldest_queued_at": timestamps.format_instant(queued.oldest) if queued.oldest else None,
            "oldest_age_seconds": round(max(age, 0.0), 3),
        },
        "jobs": listed,
        "backups": backups,
        "lock": {"file": str(lock_file), "held_by_pid": lock.holder(lock_file)},
        "redis": redis,
        "streams": readers,
        "attention": attention,
    }


def _readers(settings: Settings, attention: list[str]) -> list[dict] | None:
    """Return each stream maintctl writes with its consumer groups (None where Redis could not be asked), adding
    to `attention` each group whose reader is stuck past MAINTCTL_STUCK_AFTER."""

    try:
        found = streams.watched(settings)
    except streams.ReadError as error:
        attention.append(f"the streams' readers could not be read: {error}")
        return None
    attention.extend(streams.stuck(found, settings.stuck_after))
    return [stream.as_json() for stream in found]


def _backups(connection: sqlite3.Connection, settings: Settings, schedule: schedules.Schedule) -> dict:
    """Return each destination's newest copy of this database, and what needs attention: a destination that
    cannot be listed, holds no copy, or whose newest copy is older than twice the backup's schedule. Not
    judged while backup is paused, or where it has never run here (no copies are expected)."""
    from maintctl.backups import freshness
    from maintctl.store import identity

    try:
        database_id = identity.read(connection)
    except ActionError as error:
        return {"destinations": [], "judged": False, "note": None, "attention": [f"backups: {error}"]}
    found = freshness.newest(settings.backup_to, settings.db, database_id, settings.now)
    last = history.last(connection, "backup")
    note = None
    if schedule.paused:
        note = "backup is paused: the copies' age is not judged"
    elif last is None:
        note = "backup has never run here: the copies' age is not judged"
    document = {"destinations": [newest.as_json() for newest in found], "judged": note is None, "note": note}
    if note is None:
        try:
            every = freshness.interval(schedule, last.started, settings.now)
        except ScheduleError as error:
            return {**document, "attention": [f"backup: {error}"]}
        document["attention"] = freshness.stale(found, 2 * every, settings.now, schedule.describe())
    else:
        document["attention"] = [f"backups at {newest.destination}: {newest.error}" for newest in found if newest.error]
    return document


def stats(connection: sqlite3.Connection, settings: Settings, period: timedelta) -> dict:
    """Return, per action, over the period up to now: runs, success rate,
    average and 95th-percentile duration, items processed, last success and
    last failure; for fire-reminders also how late reminders fired."""
    start = timestamps.shift(settings.now, -period)
    runs = history.since(connection, start)
    rows = []
    for name in registry.ORDER:
        ran = [run for run in runs if run.action == name and run.status != "skipped"]
        ok = [run for run in ran if run.status == "ok"]
        failed = [run for run in ran if run.status == "failed"]
        durations = [run.duration_seconds for run in ran]
        items: dict[str, int] = {}
        for run in ran:
            for kind, count in run.counts.items():
                items[kind] = items.get(kind, 0) + count
        row = {
            "action": name,
            "runs": len(ran),
            "skipped": sum(1 for run in runs if run.action == name and run.status == "skipped"),
            "success_rate": round(len(ok) / len(ran), 4) if ran else None,
            "duration_avg_seconds": round(sum(durations) / len(durations), 3) if durations else None,
            "duration_p95_seconds": percentile(durations, 0.95),
            "items": items,
            "last_success": ok[-1].started_at if ok else None,
            "last_failure": failed[-1].started_at if failed else None,
            "last_error": failed[-1].error if failed else None,
        }
        fields, lines = registry.entry(name).load().stats(connection, settings, start)
        rows.append({**row, **fields, "notes": lines})
    return {
        "since": timestamps.format_instant(start),
        "now": timestamps.format_instant(settings.now),
        "actions": rows,
    }
