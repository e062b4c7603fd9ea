"""restore: put a backup back in the database's place, keeping the replaced
file aside, so that a crash at any instant leaves at the database's path
either the old database or the restored one, never a mix.

check the backup (a SQLite file that passes integrity_check, with the app's
tables) → take the database's lock (exit 75 where a run holds it) → make sure
no other process has the database open → open the old database once, so that
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

import itertools
import os
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from maintctl import files, identity, lock, openers
from maintctl.config import ConfigError, Settings
from maintctl.db import APP_TABLE_NAMES, ActionError, integrity_problems, table_exists

# The app's tables (see the contract); a backup without one of them is not a backup of its database.
APP_TABLES = (*APP_TABLE_NAMES, "memories_fts")
COMPANIONS = ("-wal", "-journal", "-shm")  # the files SQLite keeps beside a database


class Refused(Exception):
    """The restore must not be done; nothing was changed. The message says why, in one line."""


class RestoreFailed(Exception):
    """The restore could not be done (a full disk, say); the database is as it was."""


@dataclass
class Outcome:
    database: Path
    backup: Path
    replaced: Path  # where the old database is (or would be) kept
    dry_run: bool
    database_id: str | None = None  # the restored database's id
    warnings: list[str] = field(default_factory=list)  # what --force went past

    def as_json(self) -> dict:
        return {
            "database": str(self.database),
            "backup": str(self.backup),
            "replaced": str(self.replaced),
            "database_id": self.database_id,
            "dry_run": self.dry_run,
            "warnings": self.warnings,
        }

    def describe(self) -> str:
        if self.dry_run:
            return (
                f"would restore {self.database} from {self.backup}, keeping the replaced database at"
                f" {self.replaced}; nothing was changed"
            )
        return f"restored {self.database} from {self.backup}; the replaced database is kept at {self.replaced}"


def restore(settings: Settings, backup: Path, force: bool) -> Outcome:
    """Given the settings (the database, dry run or not), the backup file and
    whether --force was given, restore the backup (in a dry run: check all
    and say what would be done) and return what was done. Raises Refused,
    ConfigError, or lock.Busy where another run holds the database's lock."""
    missing = "no such database (to restore to a new path, copy the backup there)"
    _check_kind(settings.db, "a database file", missing, ConfigError)
    database = settings.db.resolve() if settings.db.is_symlink() else settings.db  # replaced where it lies
    backup_id = check_backup(backup, database)
    outcome = Outcome(database, backup, next(_aside_names(database, settings.now)), settings.dry_run)
    lock_file = settings.lock_file or lock.default_path(settings.db)
    if settings.dry_run:
        lock.check_free(settings.db, lock_file)
        _check_database(backup_id, settle=False, force=force, outcome=outcome)
        return outcome
    with lock.held(settings.db, lock_file):
        _check_database(backup_id, settle=True, force=force, outcome=outcome)
        _replace(outcome, settings.now, backup_id)
    return outcome


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
        beside = _companion(backup.resolve(), suffix)
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


def _aside_names(database: Path, now: datetime) -> Iterator[Path]:
    """Given the database and now, yield the free names to keep it aside
    under: `<db>.replaced-<UTC time>`, then with -2, -3, ..."""
    stamp = files.stamp(now)
    for number in itertools.count(1):
        path = database.with_name(f"{database.name}.replaced-{stamp}" + (f"-{number}" if number > 1 else ""))
        if not path.exists():
            yield path


def _go_past(reason: str, force: bool, outcome: Outcome) -> None:
    """Given why the restore must not be done, refuse it; with --force, note it and go on."""
    if not force:
        raise Refused(f"{reason}; nothing was restored (--force restores it anyway)")
    outcome.warnings.append(f"--force: {reason}")


def _check_database(backup_id: str | None, settle: bool, force: bool, outcome: Outcome) -> None:
    """Given the backup's id, refuse (with --force, note) a database that
    another process has open, that cannot be read, or that the backup cannot
    be told to be of: where the backup has an id, the database must have the
    same. Set the id that the restored database is to have: the database's."""
    database = outcome.database
    holding = openers.holders([database, *(_companion(database, suffix) for suffix in COMPANIONS)])
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
    elif _companion(database, "-wal").exists():
        if not _companion(database, "-shm").exists():
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


def _companion(database: Path, suffix: str) -> Path:
    return database.with_name(database.name + suffix)


def _replace(outcome: Outcome, now: datetime, backup_id: str | None) -> None:
    """Given the checked plan and the backup's id, copy the backup beside the
    database (with the id the plan says), keep the old file aside and rename
    the copy into its place."""
    database = outcome.database
    temporary = database.with_name(f".{database.name}.restoring")
    for leftover in (temporary, *(_companion(temporary, suffix) for suffix in COMPANIONS)):
        files.discard(leftover)  # of a restore that was killed (the lock says none is under way)
    old = database.stat()
    try:
        _copy(outcome.backup, temporary, old, outcome.database_id, backup_id)
        outcome.replaced = _keep_aside(database, _aside_names(database, now), old)
        for suffix in ("-wal", "-journal"):
            leftover = _companion(database, suffix)
            if leftover.exists() and leftover.stat().st_size > 0:  # only where --force went past
                os.replace(leftover, _companion(outcome.replaced, suffix))
        for suffix in COMPANIONS:
            _companion(database, suffix).unlink(missing_ok=True)
        os.replace(temporary, database)
    except (OSError, sqlite3.Error) as error:
        reason = f"{error.strerror} ({error.filename})" if isinstance(error, OSError) and error.filename else error
        raise RestoreFailed(f"restore failed: {reason}; {database} is as it was") from None
    finally:
        files.discard(temporary)
    files.sync(database.parent)


def _copy(backup: Path, temporary: Path, old: os.stat_result, database_id: str | None, backup_id: str | None) -> None:
    """Given the backup and the old database file's stat, write the backup's
    pages to the temporary file, with the old file's permission bits (and
    owner, as root), give it the database's id where the backup has another
    (or none), and sync it."""
    files.create_private(temporary, old.st_mode & 0o777)
    if os.geteuid() == 0:
        os.chown(temporary, old.st_uid, old.st_gid)
    source = sqlite3.connect(f"{backup.resolve().as_uri()}?immutable=1", uri=True)
    copy = sqlite3.connect(temporary, isolation_level=None)
    try:
        source.backup(copy)
        if database_id != backup_id:
            copy.execute("BEGIN IMMEDIATE")
            identity.replace(copy, database_id)
            copy.execute("COMMIT")
    finally:
        copy.close()
        source.close()
    files.sync(temporary)


def _keep_aside(database: Path, names: Iterator[Path], old: os.stat_result) -> Path:
    """Given the database, the free names to keep it under and its stat,
    hard-link it under the first (where links cannot be made, copy it), never
    over an existing file; return where it was kept."""
    for path in names:
        try:
            os.link(database, path)
            return path
        except FileExistsError:
            continue
        except OSError:  # a filesystem without hard links
            try:
                files.create_private(path, old.st_mode & 0o777)
            except FileExistsError:
                continue
            shutil.copyfile(database, path)
            files.sync(path)
            return path
    raise AssertionError("the names never end")
