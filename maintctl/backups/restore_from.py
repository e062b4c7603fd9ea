"""restore from a destination: the copy named (a copy's URL, or an encrypted
copy's file), or this database's newest finished copy at or before a time, is
fetched into a private temporary directory, checked against its manifest,
decrypted with MAINTCTL_BACKUP_IDENTITY, and then restored exactly as a
local backup file is (restore.py: its checks, PRAGMA integrity_check, its
refusals, --force, --wait, the replaced file kept). The temporary directory
is removed however the restore ends. A dry run names the copy it would
fetch, and fetches nothing."""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from maintctl import files, timestamps
from maintctl.backups import copies, encryption, fetching, located, restore
from maintctl.backups.copies import Copy
from maintctl.backups.destinations import DestinationError
from maintctl.backups.replacement import aside_names
from maintctl.backups.transfer import Transfer
from maintctl.config.settings import ConfigError, Settings
from maintctl.store import identity
from maintctl.store.db import ActionError


@dataclass(frozen=True)
class Asked:
    """What the command line asked: the source, the time (None: the newest), --force, and whether a bar may show."""

    source: located.Source
    at: datetime | None
    force: bool
    bar: bool


def restore_from(settings: Settings, asked: Asked) -> restore.Outcome:
    """Given the settings and what was asked, fetch the copy, check it and
    restore it; return what was done (in a dry run, what would be). Raises
    as restore.restore does, Refused where there is no such copy or it is
    not what its manifest says, and DestinationError where it cannot be
    fetched."""
    destination = asked.source.destination
    copy = _chosen(settings, asked)
    source = f"{destination.shown}: {copy.name}"
    if not _exists(settings.db):
        return _made_anew(settings, asked, copy, source)
    if settings.dry_run:
        replaced = next(aside_names(settings.db, settings.now))
        return restore.Outcome(settings.db, Path(copy.name), replaced, True, source=source)
    keys = encryption.identities(settings.backup_identity) if copy.encrypted else None
    with fetching.workspace(settings.db.resolve().parent) as directory:
        with Transfer(f"fetching {copy.name}", copy.size, asked.bar) as moved:
            try:
                fetched = fetching.fetch(destination, destination.shown, copy, directory, keys, moved)
            except fetching.NotVerified as error:
                raise restore.Refused(f"{error}; nothing was restored") from None
        try:
            outcome = restore.restore(settings, fetched.plain, asked.force)
        except restore.Refused as refused:
            raise restore.Refused(str(refused).replace(str(fetched.plain), source)) from None
    outcome.backup, outcome.source = Path(copy.name), source
    outcome.warnings = [warning.replace(str(fetched.plain), source) for warning in outcome.warnings]
    return outcome


def _exists(database: Path) -> bool:
    return database.exists() or database.is_symlink()


def _made_anew(settings: Settings, asked: Asked, copy: Copy, source: str) -> restore.Outcome:
    """Where no database is at the path (a host lost, a new one set up):
    fetch and check the copy, then put it there, create-only (a database
    made there meanwhile is never replaced). There is nothing to keep aside,
    and no run can hold a database that is not there."""
    folder = settings.db.parent
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such directory for the database (make it, then restore)")
    stale = [path for suffix in ("-wal", "-journal", "-shm") if _exists(path := Path(f"{settings.db}{suffix}"))]
    if stale:  # SQLite would read them into the restored database as its own
        raise ConfigError(
            f"{stale[0]}: is there without its database; move it away (it would be read into the restored one)"
        )
    outcome = restore.Outcome(settings.db, Path(copy.name), None, settings.dry_run, source=source)
    if settings.dry_run:
        return outcome
    destination = asked.source.destination
    keys = encryption.identities(settings.backup_identity) if copy.encrypted else None
    with fetching.workspace(folder.resolve()) as directory:
        with Transfer(f"fetching {copy.name}", copy.size, asked.bar) as moved:
            try:
                fetched = fetching.fetch(destination, destination.shown, copy, directory, keys, moved)
            except fetching.NotVerified as error:
                raise restore.Refused(f"{error}; nothing was restored") from None
        problems = fetching.integrity_problems(fetched.plain)
        if problems:
            raise restore.Refused(
                f"{source}: fails PRAGMA integrity_check ({'; '.join(problems[:3])}); nothing was restored"
            )
        try:
            os.link(fetched.plain, settings.db)
        except FileExistsError:
            raise restore.Refused(f"{settings.db}: a database was made there meanwhile; nothing was restored") from None
        files.sync(folder)
    connection = sqlite3.connect(f"{settings.db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        outcome.database_id = identity.read(connection)
    finally:
        connection.close()
    return outcome


def _chosen(settings: Settings, asked: Asked) -> Copy:
    """Return the copy to restore: the one named, or this database's newest at or before the time asked."""
    destination, named = asked.source.destination, asked.source.copy_name
    if named is not None:
        match = re.fullmatch(r"(.*-)" + copies.STAMP + r"(?:-\d+)?\.sqlite3(?:\.age)?", named)
        found = copies.listing(destination, match[1]).copies if match else []
        copy = next((copy for copy in found if copy.name == named), None)
        if copy is None:
            raise restore.Refused(f"{destination.shown}: {named}: no such finished copy (a copy and its manifest)")
        return copy
    database_id = _database_id(settings.db) if _exists(settings.db) else _only_id(destination, settings.db)
    found = copies.listing(destination, located.begins(settings.db, database_id)).copies
    copy = located.newest_at_or_before(found, asked.at, settings.now)
    if copy is None:
        when = f" at or before {timestamps.format_instant(asked.at)}" if asked.at else ""
        raise restore.Refused(
            f"{destination.shown}: no copy of {settings.db.name} (id {identity.short(database_id)}){when}"
            + _others(destination, settings.db, database_id)
        )
    return copy


def _database_id(database: Path) -> str:
    """Return the database's id, read without writing a byte; raise ConfigError where it has none or cannot be read."""
    if not database.is_file():
        raise ConfigError(f"{database}: no such database (create it with maintctl init-db, then restore into it)")
    connection = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    try:
        database_id = identity.read(connection)
    except (sqlite3.Error, ActionError) as error:
        raise ConfigError(f"{database}: its id cannot be read ({error}): name the copy to restore") from None
    finally:
        connection.close()
    if database_id is None:
        raise ConfigError(f"{database}: has no id, so its copies cannot be told: name the copy to restore")
    return database_id


def _only_id(destination, database: Path) -> str:
    """Where no database is at the path yet: return the id of the one database
    of this file name that has copies at the destination; raise Refused where
    none has, or several have (the copy must then be named)."""
    ids = _ids(destination, database)
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise restore.Refused(f"{destination.shown}: no copy of {database.name}")
    raise restore.Refused(
        f"{destination.shown}: copies of {len(ids)} databases named {database.name} ({', '.join(ids)}): name the"
        " copy to restore (DESTINATION/NAME)"
    )


def _ids(destination, database: Path) -> list[str]:
    """Return the short ids of the databases of this file name with copies at the destination."""
    try:
        names = destination.sizes(f"{database.name}-")
    except DestinationError:
        return []
    pattern = re.escape(database.name) + r"-([0-9a-f]+)-" + copies.STAMP
    return sorted({match[1] for name in names if (match := re.match(pattern, name))})


def _others(destination, database: Path, database_id: str) -> str:
    """Return what the message adds where copies of another database of this file name are there (a database
    made anew after the host was lost has an id of its own): their ids, and how to restore one."""
    ids = [found for found in _ids(destination, database) if found != identity.short(database_id)]
    if not ids:
        return ""
    return (
        f"; there are copies of {database.name} with other ids ({', '.join(ids)}): name the copy"
        " (DESTINATION/NAME) and give --force to restore another database's copy"
    )
