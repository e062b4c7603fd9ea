"""One backup pass over every destination: the checked copy is taken once
and each destination gets it; one destination failing is said, naming it
and why, and the others are still written.

The copy is taken into the first plain directory's partial file (or, where
every destination is a URL, into a scratch file beside the database), and
encrypted once for all URL destinations; the other directories get it
copied, the URL destinations uploaded, and the first directory's copy is
renamed into place last. Scratch and encrypted files are always removed;
those a killed run left beside the database (and their journals) are
removed by the next backup, whatever its destinations.
"""

from __future__ import annotations

import secrets
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

from maintctl import __version__, files
from maintctl.backups import checked, copies, directory, encryption, keeping, located, uploads
from maintctl.backups.destinations import BadDestination, Destination, DestinationError, Folder
from maintctl.backups.steps import Step
from maintctl.backups.transfer import Transfer
from maintctl.config.settings import ConfigError, Settings
from maintctl.store.db import Connection, PartlyDone


def destinations(settings: Settings) -> list[Destination]:
    """Return the destinations --to names; raise ConfigError naming one that cannot be used."""
    found = located.parsed(settings.backup_to)
    for destination in found:
        if isinstance(destination, BadDestination):
            raise ConfigError(str(destination))
    return found


def recipients(settings: Settings, to: list[Destination]) -> list:
    """Return the age recipients the copies to URL destinations are encrypted
    to (none: not encrypted); raise ConfigError where a URL destination would
    get a plain copy that MAINTCTL_BACKUP_PLAINTEXT=yes did not ask for."""
    urls = [destination.shown for destination in to if not destination.plain]
    if not urls:
        return []
    found = encryption.recipients(settings.backup_recipients)
    if not found and not settings.backup_plaintext:
        raise ConfigError(
            f"{urls[0]}: copies leaving this host are encrypted, and MAINTCTL_BACKUP_RECIPIENTS names no age"
            " recipient (age-keygen writes one); MAINTCTL_BACKUP_PLAINTEXT=yes sends them unencrypted"
        )
    return found


def rules(settings: Settings) -> keeping.Rules | None:
    """Return the rules copies are kept by (None: MAINTCTL_BACKUP_PRUNE=off, nothing deleted)."""
    return keeping.Rules.of(settings) if settings.backup_prune else None


def plan(settings: Settings, begins: str, to: list[Destination], encrypted: bool) -> list[Step]:
    """Return what a pass would do at each destination, changing nothing;
    raise PartlyDone with the others' steps where one cannot be read."""
    size, now_stamp = settings.db.stat().st_size, files.stamp(settings.now)
    steps, failures = [], []
    for destination in to:
        try:
            if isinstance(destination, Folder) and destination.plain:
                found = directory.existing(destination, begins, now_stamp)
                target = next(directory.names(destination, begins, now_stamp, found))
                steps.append(Step("written", destination.shown, target.name, size, target))
                if settings.backup_prune:
                    steps += directory.rotate(destination, settings, begins, None, dry_run=True)
            else:
                steps += uploads.plan(destination, begins, settings.now, size, encrypted, rules(settings))
        except DestinationError as error:
            failures.append(str(error))
    return _outcome(steps, failures)


def write(
    connection: Connection,
    settings: Settings,
    begins: str,
    database_id: str,
    to: list[Destination],
    keys: list,
    bar: bool = False,
) -> list[Step]:
    """Take the checked copy and write it to every destination, each upload
    shown by a bar of the bytes sent where `bar` says (a terminal); return the steps.
    Raise BackupFailed where the copy itself cannot be made (nothing is then
    written anywhere), PartlyDone where a destination failed."""
    plain = [destination for destination in to if isinstance(destination, Folder) and destination.plain]
    urls = [destination for destination in to if destination not in plain]
    steps, failures = [], []
    with ExitStack() as stack:
        claims = []
        for folder in plain:
            try:
                claims.append(directory.claim(stack, folder, settings, begins, connection))
            except DestinationError as error:
                failures.append(str(error))
        if not claims and not urls:
            return _outcome(steps, failures)
        _remove_scratch(settings.db)
        source = claims[0].partial if claims else _scratch(stack, settings.db, files.permissions(settings.db))
        checked.copy_database(connection, source)
        plain_sha256 = copies.sha256(source) if claims or not keys else None
        for claim in claims[1:]:
            try:
                directory.fill(claim, source)
                manifest = _manifest(database_id, settings.now, source, plain_sha256)
                steps += directory.finish(claim, settings, begins, manifest)
            except DestinationError as error:
                failures.append(str(error))
        if urls:
            stored, plain_sha256, stored_sha256 = _to_store(stack, source, keys, plain_sha256)
            manifest = copies.manifest(
                database_id, settings.now, stored, plain_sha256, bool(keys), __version__, stored_sha256
            )
            for destination in urls:
                try:
                    with Transfer(f"backup to {destination.shown}", stored.stat().st_size, bar) as moved:
                        steps += uploads.write(
                            destination, begins, settings.now, stored, bool(keys), manifest, rules(settings), moved
                        )
                except DestinationError as error:
                    failures.append(str(error))
        if claims:
            try:
                steps += directory.finish(
                    claims[0], settings, begins, _manifest(database_id, settings.now, source, plain_sha256)
                )
            except DestinationError as error:
                failures.append(str(error))
    return _outcome(steps, failures)


def _manifest(database_id: str, now: datetime, copy: Path, plain_sha256: str) -> bytes:
    return copies.manifest(database_id, now, copy, plain_sha256, False, __version__, plain_sha256)


def _outcome(steps: list[Step], failures: list[str]) -> list[Step]:
    if failures:
        raise PartlyDone("; ".join(failures), steps)
    return steps


def _to_store(stack: ExitStack, source: Path, keys: list, plain_sha256: str | None) -> tuple[Path, str, str]:
    """Given the checked copy and the recipients, return the file URL
    destinations get (the copy, or it encrypted, removed when the pass
    ends), the copy's SHA-256 and the stored file's, each read once."""
    if not keys:
        digest = plain_sha256 or copies.sha256(source)
        return source, digest, digest
    import pyrage

    encrypted = source.with_name(source.name.removesuffix(".partial") + encryption.SUFFIX + ".partial")
    stack.callback(files.discard, encrypted)
    with open(source, "rb") as reading, open(encrypted, "xb") as writing:
        encrypted.chmod(0o600)
        plain, stored = copies.Hashing(reading), copies.Hashing(writing)
        pyrage.encrypt_io(plain, stored, keys)
    return encrypted, plain.digest.hexdigest(), stored.digest.hexdigest()


def _scratch(stack: ExitStack, db: Path, mode: int) -> Path:
    """Return a new scratch file beside the database (with its bits), removed when the pass ends."""
    path = db.with_name(f".{db.name}.backup-{secrets.token_hex(4)}.partial")
    files.create_private(path, mode)
    stack.callback(files.discard, path)
    return path


def _remove_scratch(db: Path) -> None:
    """Remove the scratch files a killed pass left beside the database, and the journals SQLite kept of them as it
    wrote them (no other run of it runs now), whatever the destinations of this pass."""
    for path in db.parent.iterdir():
        if path.name.startswith(f".{db.name}.backup-") and path.name.endswith((".partial", ".partial-journal")):
            files.discard(path)
