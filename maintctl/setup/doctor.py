"""doctor: is this installation ready? One check per line, for first installs
and CI smoke runs: the configuration as resolved (secrets masked), the
database (opens, PRAGMA quick_check, the tables, columns and indexes the
actions need), the media and backup directories, the lock file, Redis."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from maintctl.actions import registry
from maintctl.config.settings import ConfigError, Settings
from maintctl.store import history, lock, outbox
from maintctl.store.db import SchemaError, check_schema, open_database


@dataclass
class Check:
    name: str
    state: str  # ok | warn | fail | info
    detail: str


def run(settings: Settings) -> list[Check]:
    """Return the checks, in order (nothing is changed)."""
    checks = _configuration(settings)
    try:
        connection = open_database(settings.db, read_only=True, busy_timeout=settings.busy_timeout)
    except ConfigError as error:
        checks.append(Check("database", "fail", str(error)))
    else:
        try:
            checks.append(Check("database", "ok", f"{settings.db} opens"))
            checks.extend(_database(connection))
        finally:
            connection.close()
    checks.extend(_directories(settings))
    checks.append(_redis(settings))
    return checks


def _configuration(settings: Settings) -> list[Check]:
    from maintctl.monitoring import pings

    shown = {
        "database": settings.db,
        "redis": settings.redis_display,
        "stream": settings.stream,
        "media directory": settings.media_dir,
        "backup destinations": _destinations_shown(settings),
        "lock file": settings.lock_file or lock.default_path(settings.db),
        "ping URL": pings.without_key(settings.ping_url) if settings.ping_url else "(not set)",
        "metrics file": settings.metrics_file or "(not set)",
        "batch size": settings.batch_size,
        "hold": f"{settings.hold:g} s",
        "busy timeout": f"{settings.busy_timeout:g} s",
        "tag expiry": settings.tag_expiry,
        "re-prompt after": settings.reprompt_after,
    }
    return [Check(f"config: {name}", "info", str(value)) for name, value in shown.items()]


def _destinations_shown(settings: Settings) -> str:
    """Given the settings, return the backup destinations as they may be shown (a URL never with a credential:
    one that is not a destination is not shown at all)."""
    from maintctl.backups import located

    return " ".join(
        "(not a destination)" if isinstance(found, ValueError) else found.shown
        for found in located.parsed(settings.backup_to)
    )


def _database(connection: sqlite3.Connection) -> list[Check]:
    checks = []
    try:
        verdict = [row[0] for row in connection.execute("PRAGMA quick_check")]
        ok = verdict == ["ok"]
        checks.append(Check("quick_check", "ok" if ok else "fail", "ok" if ok else "; ".join(verdict[:5])))
    except sqlite3.DatabaseError as error:
        checks.append(Check("quick_check", "fail", str(error)))
    present = {name for (name,) in connection.execute("SELECT name FROM sqlite_schema WHERE type = 'index'")}
    for name in registry.ORDER:
        action = registry.entry(name).load()
        try:
            check_schema(connection, action.requires)
            checks.append(Check(f"tables for {name}", "ok", "present"))
        except SchemaError as error:
            checks.append(Check(f"tables for {name}", "fail", str(error)))
        indexes = action.indexes(connection)
        missing = [_index_name(sql) for sql in indexes if _index_name(sql) not in present]
        if missing:
            checks.append(Check(f"indexes for {name}", "fail", f"missing {', '.join(missing)}: run maintctl init-db"))
        elif indexes:
            checks.append(Check(f"indexes for {name}", "ok", "present"))
    own = [_index_name(sql) for sql in (*outbox.INDEXES, *history.INDEXES)]
    missing = [name for name in own if name not in present]
    checks.append(
        Check("maintctl's indexes", "fail", f"missing {', '.join(missing)}: run maintctl init-db")
        if missing
        else Check("maintctl's indexes", "ok", "present")
    )
    return checks


def _index_name(sql: str) -> str:
    return sql.split(" ON ")[0].split()[-1]


def _writable_directory(name: str, path: Path, create: bool) -> Check:
    try:
        return _directory_check(name, path, create)
    except OSError as error:
        return Check(name, "fail", f"{path} cannot be used ({error.strerror})")


def _directory_check(name: str, path: Path, create: bool) -> Check:
    if not path.exists():
        parent = next((parent for parent in path.parents if parent.exists()), None)
        if create and parent is not None and os.access(parent, os.W_OK | os.X_OK):
            return Check(name, "ok", f"{path} does not exist yet; it will be created")
        return Check(name, "fail", f"{path} does not exist")
    if not path.is_dir():
        return Check(name, "fail", f"{path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        return Check(name, "fail", f"{path} is not writable")
    return Check(name, "ok", f"{path} is writable")


def _directories(settings: Settings) -> list[Check]:
    lock_file = settings.lock_file or lock.default_path(settings.db)
    checks = [
        _writable_directory("media directory", settings.media_dir, create=False),
        *(
            [_writable_directory("backup directory", settings.backup_dir, create=True)]
            if settings.backup_dir is not None
            else []
        ),
        _writable_directory("lock file's directory", lock_file.parent, create=False),
    ]
    refused = lock.problem(settings.db, lock_file)
    checks.append(
        Check("lock file", "fail", f"{lock_file} {refused}") if refused else Check("lock file", "ok", str(lock_file))
    )
    if settings.metrics_file:
        from maintctl.monitoring import metrics

        kept = metrics.not_ours(settings.metrics_file)
        checks.append(
            Check("metrics file", "warn", f"{settings.metrics_file} is not written: {kept}")
            if kept
            else Check("metrics file", "ok", f"{settings.metrics_file} can be written")
        )
    return checks


def _redis(settings: Settings) -> Check:
    if settings.redis_url is None:
        return Check("redis", "warn", "no Redis URL set: notifications stay queued until one is")
    version, problem = outbox.probe(settings)
    if problem:
        return Check("redis", "fail", problem)
    major_minor = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    idempotent = "has" if major_minor >= (8, 6) else "lacks"
    return Check(
        "redis",
        "ok",
        f"{settings.redis_display} answers (Redis {version}; runs Lua scripts; {idempotent} XADD IDMP,"
        " maintctl's own Lua dedup keeps delivery once either way)",
    )
