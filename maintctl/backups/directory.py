"""Copies in a directory named as a path (a plain destination, as backups
have always been written): plain SQLite files, no more readable than the
database, written under a partial name and renamed into place, each with its
manifest beside it since manifests came (copies from before have none).
--with-media copies the media directory beside each copy.

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
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from maintctl import files
from maintctl.backups import copies, keeping
from maintctl.backups.destinations import DestinationError, Folder
from maintctl.backups.steps import Step
from maintctl.config.settings import Settings
from maintctl.media import copying as media_copy
from maintctl.store.db import ActionError, Connection


@dataclass(frozen=True, slots=True)
class Copy:
    """One of this database's copies in a plain directory."""

    path: Path
    stamp: str  # the UTC time in its name, as files.stamp writes it
    number: int  # 1, or n for a name ending -n: the nth copy taken in that second


@dataclass(frozen=True)
class Claim:
    """A directory's claim on the new copy's name: its partial file made, the runs' lock file held shared."""

    folder: Folder
    lock: files.SharedLock
    target: Path

    @property
    def partial(self) -> Path:
        return _partial(self.target)


def check_media(settings: Settings) -> None:
    """Raise ActionError where --with-media names no media directory (before anything is written)."""
    if settings.backup_media and not settings.media_dir.is_dir():
        raise ActionError(
            f"{files.printable(settings.media_dir)}: the media directory does not exist (drop --with-media?)"
        )


def existing(folder: Folder, begins: str, now_stamp: str) -> list[Copy]:
    """Given how this database's copies' names begin, return its copies in
    the directory in the order rotation deletes them (keeping.order)."""
    if not folder.path.is_dir():
        return []
    pattern = copies.pattern(begins)
    found = [
        Copy(path, f"{match[1].zfill(8)}T{match[2]}Z", int(match[3] or 1))
        for path in folder.path.iterdir()
        if (match := pattern.fullmatch(path.name))
    ]
    return keeping.order(found, now_stamp)


def names(folder: Folder, begins: str, now_stamp: str, found: list[Copy]) -> Iterator[Path]:
    """Given this database's copies, yield the names the new one may take:
    `<begins><UTC time>.sqlite3`, numbered -2, -3, ... after any copy of the
    same second, where nothing is yet (no copy, media copy or partial file)."""
    first = 1 + max((copy.number for copy in found if copy.stamp == now_stamp), default=0)
    for number in itertools.count(first):
        target = folder.path / f"{begins}{now_stamp}{f'-{number}' if number > 1 else ''}.sqlite3"
        beside = (target, _partial(target), _media_copy(target), _partial(_media_copy(target)))
        if not any(path.exists() or path.is_symlink() for path in beside):
            yield target


def claim(stack: ExitStack, folder: Folder, settings: Settings, begins: str, connection: Connection) -> Claim:
    """Given the directory, take the lock file shared (removing what killed
    runs left where this run is alone there) and claim the new copy's name
    by creating its partial file, with the database file's bits: the claim
    that keeps another run, of this host or another, from taking it. The
    stack lets go of both. Raise DestinationError where the directory cannot
    be used."""
    try:
        folder.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = stack.enter_context(files.SharedLock(lock_file(folder, begins), files.permissions(settings.db) | 0o600))
        if lock.alone():
            _remove_leftovers(folder, begins)
        try:
            lock.share(connection.busy_timeout, connection.may_go_on)
        except files.LockTimeout as error:
            raise DestinationError(f"{folder.shown}: {error} (MAINTCTL_BUSY_TIMEOUT)") from None
        now_stamp = files.stamp(settings.now)
        for target in names(folder, begins, now_stamp, existing(folder, begins, now_stamp)):
            try:
                files.create_private(_partial(target), files.permissions(settings.db))
            except FileExistsError:
                continue  # taken meanwhile by a run of another database of this name and id
            stack.callback(files.discard, _partial(target))  # what is left of it where the pass ends early
            return Claim(folder, lock, target)
    except OSError as error:
        raise DestinationError(f"{folder.shown}: cannot be written ({error.strerror or error})") from None
    raise AssertionError("the names never end")


def fill(claim: Claim, source: Path) -> None:
    """Given a checked copy made elsewhere, copy it into the claim's partial file."""
    try:
        shutil.copyfile(source, claim.partial)
    except OSError as error:
        raise DestinationError(f"{claim.folder.shown}: the copy could not be written ({error.strerror})") from None


def finish(claim: Claim, settings: Settings, begins: str, manifest: bytes) -> list[Step]:
    """Given a claim whose partial file holds the checked copy, write the
    media copy (--with-media) and rename both into place, then the manifest;
    drop the copies past the rules where this run is alone there. Return the
    steps. Where anything fails, what was written of this copy is removed."""
    target, folder = claim.target, claim.folder
    partial, partial_media = claim.partial, _partial(_media_copy(target))
    try:
        warning = None
        if settings.backup_media:
            warning = media_copy.copy(settings.media_dir, partial_media)
            os.replace(partial_media, _media_copy(target))
        files.sync(partial)
        os.replace(partial, target)
        files.sync(folder.path)
    except BaseException as error:
        files.discard(partial)
        files.discard(partial_media)
        files.discard(_media_copy(target))
        if isinstance(error, OSError):
            raise DestinationError(f"{folder.shown}: the copy could not be written ({error.strerror})") from None
        raise
    try:
        folder.put_bytes(target.name + copies.MANIFEST, manifest)
    except DestinationError as error:  # the copy is whole and counts, as copies from before manifests do
        warning = "; ".join(filter(None, [warning, f"its manifest was not written: {error}"]))
    written = Step("written", folder.shown, target.name, target.stat().st_size, target, warning)
    if not (settings.backup_prune and claim.lock.alone()):
        return [written]
    return [written, *rotate(folder, settings, begins, target, dry_run=False)]


def rotate(folder: Folder, settings: Settings, begins: str, written: Path | None, dry_run: bool) -> list[Step]:
    """Given the new copy (None: not there yet, in a dry run), delete this
    database's copies past the rules, with their media copies and manifests
    (not in a dry run); return the deletions."""
    now_stamp = files.stamp(settings.now)
    found = existing(folder, begins, now_stamp)
    if written is None:
        found.append(Copy(Path(), now_stamp, 1 + max((c.number for c in found if c.stamp == now_stamp), default=0)))
    past = keeping.past_rules(found, keeping.Rules.of(settings), now_stamp)
    deleted = [Step("deleted", folder.shown, copy.path.name, _size(copy.path), copy.path) for copy in past]
    for copy in past if not dry_run else ():
        files.discard(copy.path.with_name(copy.path.name + copies.MANIFEST))
        files.discard(copy.path)
        files.discard(_media_copy(copy.path))
    return deleted


def lock_file(folder: Folder, begins: str) -> Path:
    """Given how this database's copies' names begin, return the lock file
    that the runs writing its copies into the directory share."""
    return folder.path / f".{begins.removesuffix('-')}.lock"


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _media_copy(backup: Path) -> Path:
    """Given a copy, return where its copy of the media directory goes."""
    return backup.with_suffix(".media")


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def _remove_leftovers(folder: Folder, begins: str) -> None:
    """Remove what a killed backup of this database left (no other run
    writing one holds the shared lock): its partial files (and the journals
    SQLite kept of them), a media copy
    whose database copy never came, a manifest whose copy is gone."""
    for path in folder.path.iterdir():
        partial = path.name.startswith(f".{begins}") and path.name.endswith((".partial", ".partial-journal"))
        orphan_media = path.name.startswith(begins) and path.suffix == ".media"
        orphan_manifest = path.name.startswith(begins) and path.name.endswith(".sqlite3" + copies.MANIFEST)
        if (
            partial
            or (orphan_media and not path.with_suffix(".sqlite3").exists())
            or (orphan_manifest and not path.with_name(path.name.removesuffix(copies.MANIFEST)).exists())
        ):
            files.discard(path)


def notes(folder: Folder, settings: Settings, begins: str) -> list[str]:
    """Return what the run says of the directory beside its counts: how many
    of the database's copies are named with a time after now, and how many
    backups in the old naming are left alone."""
    said, directory = [], files.printable(folder.path)
    now = files.stamp(settings.now)
    ahead = [copy for copy in existing(folder, begins, now) if copy.stamp > now]
    if ahead:
        are, them = ("are", "them") if len(ahead) > 1 else ("is", "it")
        said.append(
            f"{len(ahead)} of this database's backups in {directory} {are} named with a time after now"
            f" (the latest {max(copy.stamp for copy in ahead)}: a --now, or a clock since put right); rotation"
            f" counts {them} older than every other copy, to go first"
        )
    if folder.path.is_dir():
        # Earlier versions' names, `<db stem>-<UTC time>.sqlite3`, do not tell one database's copies from another's.
        pattern = re.compile(re.escape(settings.db.stem) + "-" + copies.STAMP + r"(?:-\d+)?\.sqlite3")
        old = sum(1 for path in folder.path.iterdir() if pattern.fullmatch(path.name))
        if old:
            said.append(
                f"{old} backup{'s' if old > 1 else ''} in the old naming ({files.printable(settings.db.stem)}-<UTC"
                f" time>.sqlite3) in {directory} {'are' if old > 1 else 'is'} no longer rotated (another database's"
                " copies are named alike); delete them by hand when no longer needed"
            )
    return said
