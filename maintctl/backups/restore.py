"""restore: put a backup back in the database's place, keeping the replaced
file aside, so that a crash at any instant leaves at the database's path
either the old database or the restored one, never a mix.

check the backup (a SQLite file that passes integrity_check, with the app's
tables) → take the database's lock (exit 75 where a run holds it; with --wait,
wait for it, then make sure the backup is the file that was checked) → make
sure no other process has the database open → open the old database once, so that
SQLite rolls back a hot journal, and checkpoint its WAL into the file → check
that the backup is of this database (a backup with an id, only where the
database has the same; one without, from an earlier version, cannot be told)
→ copy the backup to a temporary file beside it, with the old file's
permission bits (and owner, as root), and the old database's id, sync it →
hard-link the old file aside (`<db>.replaced-<UTC time>`) → set aside what is
left of its -wal or -journal with it, remove its -shm → rename the copy onto
the database's path → sync the directory.

Everything that refuses (a bad backup, another database's backup, the app
still running, an old database that cannot be read) does so before anything
has changed; --force goes past all but a bad backup and the lock.
"""

from __future__ import annotations

import sqlite3
import stat
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from maintctl import files, timestamps
from maintctl.backups.replacement import (
    COMPANIONS,
    RestoreFailed,  # noqa: F401 - what the command catches
    aside_names,
    companion,
    put_in_place,
)
from maintctl.config.settings import ConfigError, Settings
from maintctl.store import identity, lock, openers
from maintctl.store.db import APP_TABLE_NAMES, ActionError, integrity_problems, table_exists

# The app's tables (see the contract); a backup without one of them is not a backup of its database.
APP_TABLES = (*APP_TABLE_NAMES, "memories_fts")
# After a wait for the lock, how long a process that has the database open is given to close it: the run that
# let the lock go, or the next minute's, which opens the database before it finds the lock taken and closes it.
CLOSING = 2.0


class Refused(Exception):
    """The restore must not be done; nothing was changed. The message says why, in one line."""


@dataclass
class Outcome:
    database: Path
    backup: Path
    replaced: Path | None  # where the old database is (or would be) kept; None: there was none (a new host)
    dry_run: bool
    database_id: str | None = None  # the restored database's id
    warnings: list[str] = field(default_factory=list)  # what --force went past
    waited: float = 0.0  # seconds waited for the lock
    lock_held_by: int | None = None  # the run that held the lock when the restore asked for it
    source: str | None = None  # a copy fetched from a destination: `DESTINATION: NAME` (backup is then its name)

    def as_json(self) -> dict:
        fetched = {"source": self.source} if self.source else {}
        return {
            "database": str(self.database),
            "backup": str(self.backup),
            **fetched,
            "replaced": str(self.replaced) if self.replaced else None,
            "database_id": self.database_id,
            "dry_run": self.dry_run,
            "warnings": self.warnings,
            "waited_seconds": round(self.waited, 3),
            "lock_held_by": self.lock_held_by,
        }

    def describe(self) -> str:
        if self.replaced is None:
            done = "would be made" if self.dry_run else "is made"
            return f"{self.database} {done} from {self.source or self.backup} (there was no database there)" + (
                "; nothing was fetched or changed" if self.dry_run else ""
            )
        if self.dry_run and self.source:
            return (
                f"would fetch {self.source}, check it against its manifest, decrypt it where it is encrypted, check"
                f" it with PRAGMA integrity_check and restore {self.database} from it, keeping the replaced"
                f" database at {self.replaced}; nothing was fetched or changed"
            )
        if self.dry_run:
            held = f" once the lock is free (pid {self.lock_held_by} holds it now)" if self.lock_held_by else ""
            return (
                f"would restore {self.database} from {self.backup}{held}, keeping the replaced database at"
                f" {self.replaced}; nothing was changed"
            )
        waited = f" (after waiting {self.waited:.1f} s for the lock)" if self.waited else ""
        return (
            f"restored {self.database} from {self.source or self.backup}{waited}; the replaced database is kept at"
            f" {self.replaced}"
        )


def restore(settings: Settings, backup: Path, force: bool) -> Outcome:
    """Given the settings (the database, dry run or not), the backup file and
    whether --force was given, restore the backup (in a dry run: check all
    and say what would be done) and return what was done. Raises Refused,
    ConfigError, lock.Busy where another run holds the database's lock (past
    settings.lock_wait), or Stopped where a signal ended that wait.

    The backup is the file named, checked before the wait (a bad one is
    refused at once) and found unchanged after it (a backup run's rotation
    may have removed it meanwhile); `now`, which names the replaced file, is
    moved on by the wait."""
    missing = "no such database (to restore to a new path, copy the backup there)"
    _check_kind(settings.db, "a database file", missing, ConfigError)
    database = settings.db.resolve() if settings.db.is_symlink() else settings.db  # replaced where it lies
    backup_id = check_backup(backup, database)
    checked = _version(backup)
    outcome = Outcome(database, backup, next(aside_names(database, settings.now)), settings.dry_run)
    lock_file = settings.lock_file or lock.default_path(settings.db)
    outcome.lock_held_by = lock.holder(lock_file) if settings.lock_wait else None
    if settings.dry_run:
        if not outcome.lock_held_by:
            lock.check_free(settings.db, lock_file)
        _check_database(backup_id, settle=False, force=force, outcome=outcome)
        return outcome
    with lock.held_hearing_signals(settings.db, lock_file, settings.lock_wait) as waited:
        now = timestamps.shift(settings.now, timedelta(seconds=waited))
        if waited:
            outcome.waited, outcome.replaced = waited, next(aside_names(database, now))
            _check_kind(settings.db, "a database file", missing, ConfigError)
            if _version(backup) != checked:
                raise Refused(f"{backup}: changed or removed while the restore waited for the lock")
        _check_database(backup_id, settle=True, force=force, outcome=outcome, closing=CLOSING if waited else 0.0)
        outcome.replaced = put_in_place(outcome.database, outcome.backup, now, outcome.database_id, backup_id)
    return outcome


def _version(path: Path) -> tuple | None:
    """Given a file, return what tells this version of it from another (None where it is gone)."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns


def check_backup(backup: Path, database: Path) -> str | None:
    """Given a backup file (and the database it would replace), return its
    database id (None where it has none); raise Refused where it is not a
    whole, checked SQLite database of the app: one with a -wal or -journal
    beside it (a replaced file kept with what was left of its WAL, a partial
    file still being written) is whole only with that, and is refused. It is
    opened immutable: not a byte of it, nor a file beside it, is written."""
    _check_kind(backup, "a backup file", "no such backup file", Refused)
    if backup.samefile(database):
        raise Refused(f"{backup}: is the database itself, not a backup of it")
    for suffix in ("-wal", "-journal"):  # read immutable, the file would be taken without them
        beside = companion(backup.resolve(), suffix)
        if beside.is_file() and beside.stat().st_size > 0:
            raise Refused(
                f"{backup}: is not whole without {beside.name} beside it: put that into it first"
                f" (sqlite3 {backup} 'PRAGMA wal_checkpoint(TRUNCATE)'), then restore it"
            )
    connection = sqlite3.connect(f"{backup.resolve().as_uri()}?immutable=1", uri=True)
    try:
        problems_found = integrity_problems(connection)
        if problems_found:
            raise Refused(f"{backup}: fails PRAGMA integrity_check ({'; '.join(problems_found[:3])})")
        missing = [table for table in APP_TABLES if not table_exists(connection, table)]
        if missing:
            raise Refused(f"{backup}: not a backup of the Core app's database (no table {', '.join(missing)})")
        return identity.read(connection)
    except sqlite3.DatabaseError as error:
        unreadable = "not a database" in str(error) or "encrypted" in str(error)
        raise Refused(f"{backup}: {'not a SQLite database' if unreadable else f'cannot be read ({error})'}") from None
    except ActionError as error:
        raise Refused(f"{backup}: {error}") from None
    finally:
        connection.close()


def _check_kind(path: Path, role: str, missing: str, refusal: type[Exception]) -> None:
    """Given a path, what it is to be (a backup file), what to say where
    nothing is there and the exception that refuses it, raise that where no
    regular file is there (saying what is, or why it cannot be known)."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise refusal(f"{path}: {missing}") from None
    except OSError as error:
        raise refusal(f"{path}: cannot be read as {role} ({error.strerror})") from None
    if not stat.S_ISREG(mode):
        raise refusal(f"{path}: is {files.kind(mode)}, not {role}")


def _go_past(reason: str, force: bool, outcome: Outcome) -> None:
    """Given why the restore must not be done, refuse it; with --force, note it and go on."""
    if not force:
        raise Refused(f"{reason}; nothing was restored (--force restores it anyway)")
    outcome.warnings.append(f"--force: {reason}")


def _check_database(backup_id: str | None, settle: bool, force: bool, outcome: Outcome, closing: float = 0.0) -> None:
    """Given the backup's id, refuse (with --force, note) a database that
    another process has open (still, `closing` seconds on; in a dry run, but
    the run whose lock the restore would wait for), that cannot be read, or
    that the backup cannot be told to be of: where the backup has an id, the
    database must have the same. Set the id that the restored database is to
    have: the database's."""
    database = outcome.database
    deadline = time.monotonic() + closing
    while True:
        holding = [
            holder
            for holder in openers.holders([database, *(companion(database, suffix) for suffix in COMPANIONS)])
            if not (outcome.dry_run and holder.pid == outcome.lock_held_by)
        ]
        if not holding or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if holding:
        others = ", ".join(holder.describe() for holder in holding)
        _go_past(f"{database} is in use by another process ({others}): stop the app first", force, outcome)
    try:
        outcome.database_id = _database_id(database, settle, force, outcome)
    except (sqlite3.DatabaseError, ActionError) as error:
        _go_past(f"{database}: cannot be read ({error})", force, outcome)
        outcome.database_id = backup_id  # nothing to keep: the backup's is all there is
        return
    if backup_id is not None and backup_id != outcome.database_id:
        theirs, ours = identity.short(backup_id), outcome.database_id and identity.short(outcome.database_id)
        _go_past(
            f"{outcome.backup}: is a backup of another database (id {theirs}; {database.name}'s is {ours})"
            if ours
            else f"{outcome.backup}: may be a backup of another database (id {theirs}; {database.name} has none)",
            force,
            outcome,
        )


def _database_id(database: Path, settle: bool, force: bool, outcome: Outcome) -> str | None:
    """Given the database, return its id (None where it has none); raise
    sqlite3.DatabaseError or ActionError where it cannot be read. With
    settle, open it read-write first, so that SQLite rolls back a hot
    journal, and checkpoint its WAL into the file: nothing of the old
    database is then left to be applied to the restored one."""
    if settle:
        query = "mode=rw"
    elif companion(database, "-wal").exists():
        if not companion(database, "-shm").exists():
            raise Refused(
                f"{database}: has a -wal file but no -shm (the app stopped without closing it); SQLite would make"
                " the -shm to read it, and a dry run makes no file: restore without --dry-run, or open it once"
                " (sqlite3) and try again"
            )
        query = "mode=ro"
    else:  # a dry run reads a database without a -wal as it lies, so as to create no -wal or -shm
        query = "mode=ro&immutable=1"
    connection = sqlite3.connect(f"{database.resolve().as_uri()}?{query}", uri=True, isolation_level=None)
    try:
        connection.execute("PRAGMA schema_version").fetchone()
        if settle:
            (busy, _, _) = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:
                _go_past(f"{database} is in use by another process: its WAL could not be checkpointed", force, outcome)
        return identity.read(connection)
    finally:
        connection.close()
