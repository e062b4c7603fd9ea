"""backup: a consistent online copy of the database, taken with SQLite's
backup API while the app goes on writing, checked with PRAGMA
integrity_check before it counts, written under a temporary name and renamed;
named by the database file's name, the short form of its id (see identity)
and the UTC time (`core.db-3f2a9c1e-20261122T030000Z.sqlite3`) in the backup
directory (--to, MAINTCTL_BACKUP_DIR; default backups/ beside the database).
The newest --keep (MAINTCTL_BACKUP_KEEP, default 7) of this database's copies
are kept: rotation matches its id, never another database's copies. Older
ones are deleted only once the new one has been checked, so a failed backup
never costs a good one. --with-media also copies the media directory.

A copy is no more readable than what it copies: the database's copy (and
its partial file and journal) gets the database file's permission bits, the
media copy those of the media directory and its files, and a backup
directory that is missing is made 0700.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from maintctl import files, identity
from maintctl.config import Settings
from maintctl.db import ActionError, Connection, integrity_problems

NAME = "backup"
REQUIRES: dict[str, tuple[str, ...]] = {}
INDEXES = ()
COUNTS = ("written", "deleted")
NOTIFIES = False
OWN_TABLES = ()


class BackupFailed(ActionError):
    """The copy could not be made or did not check out; older backups are untouched."""


@dataclass(slots=True)
class Step:
    kind: str  # written | deleted
    path: Path
    size: int
    warning: str | None = None

    def planned(self) -> dict:
        return {"id": self.path.name, "step": self.kind, "path": str(self.path), "bytes": self.size}

    def describe(self) -> str:
        verb = {"written": "write", "deleted": "delete"}[self.kind]
        return f"{verb} {self.path} ({self.size:,} bytes)"


# Shown in a dry run in place of the id that the first backup would give.
NEW_ID = "<new-id>"


def _prefix(settings: Settings, database_id: str | None) -> str:
    """Given the database's id (None: not given yet), return how the names of its backups begin."""
    return f"{settings.db.name}-{identity.short(database_id) if database_id else NEW_ID}-"


def _pattern(prefix: str) -> re.Pattern:
    return re.compile(re.escape(prefix) + r"(\d{8}T\d{6}Z)(?:-(\d+))?\.sqlite3")


def _old_pattern(settings: Settings) -> re.Pattern:
    """The names of earlier versions' backups, `<db stem>-<UTC time>.sqlite3`,
    which do not tell one database's copies from another's."""
    return re.compile(re.escape(settings.db.stem) + r"-\d{8}T\d{6}Z(?:-\d+)?\.sqlite3")


def _name(settings: Settings, prefix: str) -> str:
    stamp = settings.now.strftime("%Y%m%dT%H%M%SZ")
    name, number = f"{prefix}{stamp}.sqlite3", 1
    while (settings.backup_dir / name).exists():
        number += 1
        name = f"{prefix}{stamp}-{number}.sqlite3"
    return name


def _media_copy(backup: Path) -> Path:
    """Given a backup file, return where its copy of the media directory goes."""
    return backup.with_suffix(".media")


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def existing(settings: Settings, prefix: str) -> list[Path]:
    """Given how this database's backup names begin, return its backups in
    the backup directory, oldest first."""
    if not settings.backup_dir.is_dir():
        return []
    pattern = _pattern(prefix)
    found = [(match, path) for path in settings.backup_dir.iterdir() if (match := pattern.fullmatch(path.name))]
    return [path for match, path in sorted(found, key=lambda pair: (pair[0][1], int(pair[0][2] or 1)))]


def perform(connection: Connection, settings: Settings) -> list[Step]:
    """Take the backup (in a dry run: say what it would be) and drop this
    database's ones past --keep; return the steps. The database is given its
    id first where it has none (not in a dry run)."""
    if settings.dry_run:
        prefix = _prefix(settings, identity.read(connection))
        target = settings.backup_dir / _name(settings, prefix)
        size = settings.db.stat().st_size
        return [Step("written", target, size), *_past_keep(existing(settings, prefix) + [target], settings)]
    settings.backup_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    prefix = _prefix(settings, identity.assign(connection))
    target = settings.backup_dir / _name(settings, prefix)
    _remove_partials(settings, prefix)
    partial, partial_media = _partial(target), _partial(_media_copy(target))
    try:
        _copy_database(connection, partial, files.permissions(settings.db))
        if settings.backup_media:
            _copy_media(settings, partial_media)
            os.replace(partial_media, _media_copy(target))
        files.sync(partial)
        os.replace(partial, target)
        files.sync(settings.backup_dir)
    except BaseException:
        files.discard(partial)
        files.discard(partial_media)
        files.discard(_media_copy(target))
        raise
    written = Step("written", target, target.stat().st_size)
    deleted = _past_keep(existing(settings, prefix), settings)
    for step in deleted:
        files.discard(step.path)
        files.discard(_media_copy(step.path))
    return [written, *deleted]


def notes(connection: Connection, settings: Settings) -> list[str]:
    """Return what the run should say beside its counts: that a dry run
    would give the database its id, and how many backups in the old naming
    are left alone."""
    said = []
    if settings.dry_run and identity.read(connection) is None:
        said.append("the database has no id yet: the backup would give it one, and name its copies by it")
    if settings.backup_dir.is_dir():
        pattern = _old_pattern(settings)
        old = sum(1 for path in settings.backup_dir.iterdir() if pattern.fullmatch(path.name))
        if old:
            said.append(
                f"{old} backup{'s' if old > 1 else ''} in the old naming ({settings.db.stem}-<UTC time>.sqlite3)"
                f" in {settings.backup_dir} {'are' if old > 1 else 'is'} no longer rotated (another database's"
                " copies are named alike); delete them by hand when no longer needed"
            )
    return said


def _copy_database(connection: Connection, partial: Path, mode: int) -> None:
    """Given the partial file's path and the database file's permission bits,
    copy the database into it and check the copy."""
    files.create_private(partial, mode)
    copy = sqlite3.connect(partial)
    deadline = time.monotonic() + connection.busy_timeout

    def waiting(status: int, remaining: int, pages: int) -> None:
        # Called between tries while the app holds a lock that keeps the
        # copy from starting: hear SIGTERM, give up at the busy timeout.
        if status in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            connection.may_go_on()
            if time.monotonic() >= deadline:
                raise BackupFailed(
                    f"database is locked: another process kept the copy from starting for"
                    f" {connection.busy_timeout:g} s (MAINTCTL_BUSY_TIMEOUT)"
                )

    try:
        # One step: a copy taken in several would begin again each time the
        # app writes meanwhile, and might never end.
        connection.backup(copy, progress=waiting, sleep=0.05)
        problems_found = integrity_problems(copy)
    finally:
        copy.close()
    if problems_found:
        raise BackupFailed(f"the copy failed PRAGMA integrity_check: {'; '.join(problems_found[:3])}")


def _copy_media(settings: Settings, destination: Path) -> None:
    if not settings.media_dir.is_dir():
        raise BackupFailed(f"{settings.media_dir}: the media directory does not exist (drop --with-media?)")
    # Made 0700 first, so that nothing in it can be read while it is being
    # written; the copy then takes each file's and directory's own bits.
    destination.mkdir(mode=0o700)
    shutil.copytree(settings.media_dir, destination, symlinks=True, dirs_exist_ok=True)


def _past_keep(backups: list[Path], settings: Settings) -> list[Step]:
    old = backups[: max(0, len(backups) - settings.backup_keep)]
    return [Step("deleted", path, path.stat().st_size if path.exists() else 0) for path in old]


def _remove_partials(settings: Settings, prefix: str) -> None:
    """Remove what a killed backup of this database left (the lock says no
    other run is writing one): its partial files, and a media copy whose
    database copy never came."""
    for path in settings.backup_dir.iterdir():
        partial = path.name.startswith(f".{prefix}") and path.name.endswith(".partial")
        orphan_media = path.name.startswith(prefix) and path.suffix == ".media"
        if partial or (orphan_media and not path.with_suffix(".sqlite3").exists()):
            files.discard(path)


def tally(steps: list[Step]) -> dict[str, int]:
    return {kind: sum(1 for step in steps if step.kind == kind) for kind in COUNTS}


def problems(connection: sqlite3.Connection, settings: Settings) -> list[str]:
    return []
