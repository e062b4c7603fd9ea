"""backup: a consistent online copy of the database, taken with SQLite's
backup API while the app goes on writing, checked with PRAGMA
integrity_check before it counts, and written to every destination (--to,
repeated; MAINTCTL_BACKUP_TO; MAINTCTL_BACKUP_DIR; default backups/ beside
the database): a directory as a path (backups/directory), or a URL,
`file:///PATH` or `s3://BUCKET/PREFIX` (backups/uploads), where copies are
encrypted to MAINTCTL_BACKUP_RECIPIENTS (backups/encryption) and refused
without them unless MAINTCTL_BACKUP_PLAINTEXT=yes. Copies are named by the
database file's name, the short form of its id (see identity) and the UTC
time (`core.db-3f2a9c1e-20261122T030000Z.sqlite3`, `.age` appended when
encrypted), with a manifest beside each (backups/copies).

At each destination, this database's copies past the rules are deleted
(backups/keeping: the newest --keep, default 7, or by days, weeks and
months), never another database's, and only once the new copy is written,
so that a failed backup never costs a good one; MAINTCTL_BACKUP_PRUNE=off
deletes nothing. One destination failing fails the action, naming it and
why, while the others are still written. --with-media copies the media
directory beside the copies in plain directories.
"""

from __future__ import annotations

from maintctl.actions.base.kinds import Single
from maintctl.backups import copies, directory, writing
from maintctl.backups.checked import BackupFailed
from maintctl.backups.destinations import Folder
from maintctl.backups.steps import Step, tally
from maintctl.config.settings import Settings
from maintctl.store import identity
from maintctl.store.db import Connection

__all__ = ["ACTION", "BackupFailed", "perform"]

# Shown in a dry run in place of the id that the first backup would give.
NEW_ID = "<new-id>"


def _begins(settings: Settings, database_id: str | None) -> str:
    """Given the database's id (None: not given yet), return how the names of its copies begin."""
    return copies.prefix(settings.db.name, identity.short(database_id) if database_id else NEW_ID)


def perform(connection: Connection, settings: Settings) -> list[Step]:
    """Take the backup to every destination (in a dry run: say what it would
    be) and drop this database's copies past the rules there, never the new
    one; return the steps. The database is given its id first where it has
    none (not in a dry run). Raises ConfigError where a destination or the
    keys cannot be used (nothing is then written), PartlyDone where a
    destination failed while others were written."""
    to = writing.destinations(settings)
    keys = writing.recipients(settings, to)
    directory.check_media(settings)
    if settings.dry_run:
        return writing.plan(settings, _begins(settings, identity.read(connection)), to, bool(keys))
    database_id = identity.assign(connection)
    bar = not (settings.quiet or settings.json)
    return writing.write(connection, settings, _begins(settings, database_id), database_id, to, keys, bar)


def notes(connection: Connection, settings: Settings) -> list[str]:
    """Return what the run should say beside its counts: that a dry run
    would give the database its id; at each plain directory, how many of its
    copies are named with a time after now and how many backups in the old
    naming are left alone; that the media copy went to plain directories
    only; that MAINTCTL_BACKUP_PRUNE=off deleted nothing."""
    said = []
    database_id = identity.read(connection)
    if settings.dry_run and database_id is None:
        said.append("the database has no id yet: the backup would give it one, and name its copies by it")
    to = writing.destinations(settings)
    for destination in to:
        if isinstance(destination, Folder) and destination.plain:
            said += directory.notes(destination, settings, _begins(settings, database_id))
    urls = [destination.shown for destination in to if not destination.plain]
    if settings.backup_media and urls:
        said.append(
            f"--with-media: the media directory is copied into plain directories only, not to {', '.join(urls)}"
        )
    if not settings.backup_prune:
        said.append("MAINTCTL_BACKUP_PRUNE=off: no copy deleted (the store's lifecycle rules expire them)")
    return said


ACTION = Single(perform=perform, tally=tally, notes=notes)
