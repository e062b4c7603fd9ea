"""A checked backup put in the database's place, so that a crash at any
instant leaves at the database's path either the old database or the
restored one: the backup copied to a temporary file beside it (with the old
file's permission bits, owner and id), synced; the old file hard-linked
aside; what is left of its -wal or -journal set aside with it, its -shm
removed; the copy renamed onto the database's path; the directory synced.
restore.py decides whether it may be done."""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from maintctl import files
from maintctl.store import identity

COMPANIONS = ("-wal", "-journal", "-shm")  # the files SQLite keeps beside a database


class RestoreFailed(Exception):
    """The restore could not be done (a full disk, say); the database is as it was."""


def aside_names(database: Path, now: datetime) -> Iterator[Path]:
    """Given the database and now, yield the free names to keep it aside
    under: `<db>.replaced-<UTC time>`, then with -2, -3, ..."""
    stamp = files.stamp(now)
    for number in itertools.count(1):
        path = database.with_name(f"{database.name}.replaced-{stamp}" + (f"-{number}" if number > 1 else ""))
        if not path.exists():
            yield path


def companion(database: Path, suffix: str) -> Path:
    return database.with_name(database.name + suffix)


def put_in_place(database: Path, backup: Path, now: datetime, database_id: str | None, backup_id: str | None) -> Path:
    """Given the database, the checked backup, now, the id the restored
    database is to have and the backup's, copy the backup beside the database
    (with that id), keep the old file aside and rename the copy into its
    place; return where the old file was kept. Raise RestoreFailed, the
    database as it was, where that cannot be done."""
    temporary = database.with_name(f".{database.name}.restoring")
    for leftover in (temporary, *(companion(temporary, suffix) for suffix in COMPANIONS)):
        files.discard(leftover)  # of a restore that was killed (the lock says none is under way)
    old = database.stat()
    try:
        _copy(backup, temporary, old, database_id, backup_id)
        replaced = _keep_aside(database, aside_names(database, now), old)
        for suffix in ("-wal", "-journal"):
            leftover = companion(database, suffix)
            if leftover.exists() and leftover.stat().st_size > 0:  # only where --force went past
                os.replace(leftover, companion(replaced, suffix))
        for suffix in COMPANIONS:
            companion(database, suffix).unlink(missing_ok=True)
        os.replace(temporary, database)
    except (OSError, sqlite3.Error) as error:
        reason = f"{error.strerror} ({error.filename})" if isinstance(error, OSError) and error.filename else error
        raise RestoreFailed(f"restore failed: {reason}; {database} is as it was") from None
    finally:
        files.discard(temporary)
    files.sync(database.parent)
    return replaced


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
