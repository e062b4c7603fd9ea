"""backup: a consistent online copy of the database, taken with SQLite's
backup API while the app goes on writing, checked with PRAGMA
integrity_check before it counts, written under a temporary name and renamed;
named by the database file's name, the short form of its id (see identity)
and the UTC time (`core.db-3f2a9c1e-20261122T030000Z.sqlite3`) in the backup
directory (--to, MAINTCTL_BACKUP_DIR; default backups/ beside the database).
The newest --keep (MAINTCTL_BACKUP_KEEP, default 7) of this database's copies
are kept, the new one always among them: rotation matches its id, never
another database's copies, and counts copies named with a time after now as
the oldest. Older ones are deleted only once the new one has been checked,
so a failed backup never costs a good one. --with-media also copies the
media directory.

Runs that write one database's copies into one directory (copies of one
database on several hosts, say) share a lock file there,
`.<db name>-<short id>.lock`: each holds it shared while it writes, and only
a run that gets it alone removes what killed runs left, or rotates.

A copy is no more readable than what it copies: the database's copy (and
its partial file and journal) gets the database file's permission bits, the
media copy those of the media directory and its files, and a backup
directory that is missing is made 0700.
"""

from __future__ import annotations

import itertools
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from maintctl import files
from maintctl.actions.base.kinds import Single
from maintctl.config.settings import Settings
from maintctl.media import copying as media_copy
from maintctl.store import identity
from maintctl.store.db import ActionError, Connection, integrity_problems


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

# The UTC time in a backup's name; earlier versions wrote a year before 1000
# with fewer digits (999 for 0999), and those copies are rotated too.
STAMP = r"(\d{5,8})T(\d{6})Z"


@dataclass(frozen=True, slots=True)
class Copy:
    """One of this database's backups in the backup directory."""

    path: Path
    stamp: str  # the UTC time in its name, as files.stamp writes it
    number: int  # 1, or n for a name ending -n: the nth copy taken in that second


def _prefix(settings: Settings, database_id: str | None) -> str:
    """Given the database's id (None: not given yet), return how the names of its backups begin."""
    return f"{settings.db.name}-{identity.short(database_id) if database_id else NEW_ID}-"


def _pattern(prefix: str) -> re.Pattern:
    return re.compile(re.escape(prefix) + STAMP + r"(?:-(\d+))?\.sqlite3")


def _old_pattern(settings: Settings) -> re.Pattern:
    """The names of earlier versions' backups, `<db stem>-<UTC time>.sqlite3`,
    which do not tell one database's copies from another's."""
    return re.compile(re.escape(settings.db.stem) + "-" + STAMP + r"(?:-\d+)?\.sqlite3")


def _lock_file(settings: Settings, prefix: str) -> Path:
    """Given how this database's backup names begin, return the lock file
    that the runs writing its copies into the backup directory share (with
    the database file's bits, and its owner's read and write)."""
    return settings.backup_dir / f".{prefix.removesuffix('-')}.lock"


def _names(settings: Settings, prefix: str, copies: list[Copy]) -> Iterator[Path]:
    """Given this database's copies, yield the names the new one may take:
    `<prefix><UTC time>.sqlite3`, numbered -2, -3, ... after any copy of the
    same second, where nothing is yet (no copy, media copy or partial file)."""
    stamp = files.stamp(settings.now)
    first = 1 + max((copy.number for copy in copies if copy.stamp == stamp), default=0)
    for number in itertools.count(first):
        target = settings.backup_dir / f"{prefix}{stamp}{f'-{number}' if number > 1 else ''}.sqlite3"
        beside = (target, _partial(target), _media_copy(target), _partial(_media_copy(target)))
        if not any(path.exists() or path.is_symlink() for path in beside):
            yield target


def _claim(settings: Settings, prefix: str, copies: list[Copy]) -> Path:
    """Given this database's copies, return the name of the new one, its
    partial file created (with the database file's bits): the claim that
    keeps another run, of this host or another, from taking the same name."""
    for target in _names(settings, prefix, copies):
        try:
            files.create_private(_partial(target), files.permissions(settings.db))
            return target
        except FileExistsError:
            continue  # taken meanwhile by a run of another database of this name and id
    raise AssertionError("the names never end")


def _media_copy(backup: Path) -> Path:
    """Given a backup file, return where its copy of the media directory goes."""
    return backup.with_suffix(".media")


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def existing(settings: Settings, prefix: str) -> list[Copy]:
    """Given how this database's backup names begin, return its backups in
    the backup directory in the order rotation deletes them: first those
    named with a time after now (a --now given for a test, a clock since put
    right), earliest first, so that they never outlive the copies taken
    since; then the others, oldest first."""
    if not settings.backup_dir.is_dir():
        return []
    pattern, now = _pattern(prefix), files.stamp(settings.now)
    copies = [
        Copy(path, f"{match[1].zfill(8)}T{match[2]}Z", int(match[3] or 1))
        for path in settings.backup_dir.iterdir()
        if (match := pattern.fullmatch(path.name))
    ]
    return sorted(copies, key=lambda copy: (copy.stamp <= now, copy.stamp, copy.number))


def perform(connection: Connection, settings: Settings) -> list[Step]:
    """Take the backup (in a dry run: say what it would be) and drop this
    database's ones past --keep, never the new one; return the steps. The
    database is given its id first where it has none (not in a dry run)."""
    if settings.dry_run:
        prefix = _prefix(settings, identity.read(connection))
        copies = existing(settings, prefix)
        target = next(_names(settings, prefix, copies))
        return [Step("written", target, settings.db.stat().st_size), *_past_keep(copies, settings, target)]
    settings.backup_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    prefix = _prefix(settings, identity.assign(connection))
    with files.SharedLock(_lock_file(settings, prefix), files.permissions(settings.db) | 0o600) as lock:
        if lock.alone():
            _remove_leftovers(settings, prefix)
        try:
            lock.share(connection.busy_timeout, connection.may_go_on)
        except files.LockTimeout as error:
            raise BackupFailed(f"{error} (MAINTCTL_BUSY_TIMEOUT)") from None
        target = _claim(settings, prefix, existing(settings, prefix))
        warning = _write(connection, settings, target)
        written = Step("written", target, target.stat().st_size, warning)
        return [written, *(_rotate(settings, prefix, target) if lock.alone() else [])]


def _rotate(settings: Settings, prefix: str, written: Path) -> list[Step]:
    """Given the new copy, delete this database's copies past --keep (and
    their media copies); return the deletions."""
    deleted = _past_keep(existing(settings, prefix), settings, written)
    for step in deleted:
        files.discard(step.path)
        files.discard(_media_copy(step.path))
    return deleted


def _write(connection: Connection, settings: Settings, target: Path) -> str | None:
    """Given the name claimed for the new copy, write it (and the media
    copy) under partial names, then rename them into place; return what the
    media copy left out. Where anything fails, remove what was written."""
    partial, partial_media = _partial(target), _partial(_media_copy(target))
    try:
        _copy_database(connection, partial)
        warning = None
        if settings.backup_media:
            warning = media_copy.copy(settings.media_dir, partial_media)
            os.replace(partial_media, _media_copy(target))
        files.sync(partial)
        os.replace(partial, target)
        files.sync(settings.backup_dir)
        return warning
    except BaseException:
        files.discard(partial)
        files.discard(partial_media)
        files.discard(_media_copy(target))
        raise


def notes(connection: Connection, settings: Settings) -> list[str]:
    """Return what the run should say beside its counts: that a dry run
    would give the database its id, how many of its copies are named with a
    time after now, and how many backups in the old naming are left alone."""
    said, directory = [], files.printable(settings.backup_dir)
    database_id = identity.read(connection)
    if settings.dry_run and database_id is None:
        said.append("the database has no id yet: the backup would give it one, and name its copies by it")
    now = files.stamp(settings.now)
    ahead = [copy for copy in existing(settings, _prefix(settings, database_id)) if copy.stamp > now]
    if ahead:
        are, them = ("are", "them") if len(ahead) > 1 else ("is", "it")
        said.append(
            f"{len(ahead)} of this database's backups in {directory} {are} named with a time after now"
            f" (the latest {max(copy.stamp for copy in ahead)}: a --now, or a clock since put right); rotation"
            f" counts {them} older than every other copy, to go first"
        )
    if settings.backup_dir.is_dir():
        pattern = _old_pattern(settings)
        old = sum(1 for path in settings.backup_dir.iterdir() if pattern.fullmatch(path.name))
        if old:
            said.append(
                f"{old} backup{'s' if old > 1 else ''} in the old naming ({files.printable(settings.db.stem)}-<UTC"
                f" time>.sqlite3) in {directory} {'are' if old > 1 else 'is'} no longer rotated (another database's"
                " copies are named alike); delete them by hand when no longer needed"
            )
    return said


def _copy_database(connection: Connection, partial: Path) -> None:
    """Given the partial file (created empty, with the database file's bits),
    copy the database into it and check the copy."""
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


def _past_keep(copies: list[Copy], settings: Settings, written: Path) -> list[Step]:
    """Given this database's copies in rotation order and the new one,
    return the deletions that leave --keep, the new one among them."""
    others = [copy.path for copy in copies if copy.path != written]
    old = others[: max(0, len(others) - settings.backup_keep + 1)]
    return [Step("deleted", path, path.stat().st_size if path.exists() else 0) for path in old]


def _remove_leftovers(settings: Settings, prefix: str) -> None:
    """Remove what a killed backup of this database left (no other run
    writing one holds the shared lock): its partial files, and a media copy
    whose database copy never came."""
    for path in settings.backup_dir.iterdir():
        partial = path.name.startswith(f".{prefix}") and path.name.endswith(".partial")
        orphan_media = path.name.startswith(prefix) and path.suffix == ".media"
        if partial or (orphan_media and not path.with_suffix(".sqlite3").exists()):
            files.discard(path)


def tally(steps: list[Step]) -> dict[str, int]:
    return {kind: sum(1 for step in steps if step.kind == kind) for kind in ("written", "deleted")}


ACTION = Single(perform=perform, tally=tally, notes=notes)
