"""Copies of a test's database at a destination, as the readers (backups,
verify-backups, restore, status, metrics) are tested against: taken by
`maintctl backup --to DEST` run as a process (`take`), or, for a copy that
backup would refuse to take (a damaged database), laid out by hand as the
contract says (`take_by_hand`: `<db name>-<short id>-<UTC time>.sqlite3[.age]`
and its manifest beside it)."""

from __future__ import annotations

import sqlite3
import subprocess
from datetime import datetime
from pathlib import Path

from maintctl import __version__, timestamps
from maintctl.backups import copies, destinations, encryption
from maintctl.store import identity


def database_id(database: Path) -> str:
    """Given a database file, return its id (giving it one where it has none)."""
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        identity.add(connection)
        connection.execute("COMMIT")
        return identity.read(connection)
    finally:
        connection.close()


def take(database: Path, destination: str, at: str, recipients: str | None = None) -> str:
    """Given a database, a destination as written, the copy's time and the
    age recipients (None: a plain copy), take a backup there with `maintctl
    backup` (the environment's credentials); return the copy's name."""
    import os
    import sys

    env = {key: value for key, value in os.environ.items() if not key.startswith("MAINTCTL_")}
    env.update({"MAINTCTL_BACKUP_RECIPIENTS": recipients} if recipients else {"MAINTCTL_BACKUP_PLAINTEXT": "yes"})
    command = [sys.executable, "-m", "maintctl", "backup", "--db", str(database), "--to", destination, "--now", at]
    done = subprocess.run([*command, "--keep", "1000"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    begins = copies.prefix(database.name, identity.short(database_id(database)))
    encrypted = bool(recipients) and destinations.parse(destination).plain is False
    return copies.name(begins, timestamps.parse_instant(at), encrypted=encrypted)


def take_by_hand(
    database: Path, destination: str, at: str, recipients: str | None = None, env: dict | None = None
) -> str:
    """As take, without maintctl backup (which refuses a damaged database): the copy and its manifest written
    with maintctl's own modules."""
    import os

    saved = {name: os.environ.get(name) for name in env or {}}
    os.environ.update(env or {})
    try:
        return _take(database, destinations.parse(destination), timestamps.parse_instant(at), recipients)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _take(database: Path, destination, at: datetime, recipients: str | None) -> str:
    database_id_ = database_id(database)
    work = database.parent / f".copy-{at.timestamp():.0f}"
    work.mkdir(exist_ok=True)
    plain = work / "plain.sqlite3"
    plain.unlink(missing_ok=True)
    source, copy = sqlite3.connect(database), sqlite3.connect(plain)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    stored = plain
    if recipients:
        stored = work / "stored.age"
        stored.unlink(missing_ok=True)
        encryption.encrypt(plain, stored, encryption.recipients(recipients))
    begins = copies.prefix(database.name, identity.short(database_id_))
    name = copies.name(begins, at, encrypted=bool(recipients))
    destination.put(name, stored)
    destination.put_bytes(
        name + copies.MANIFEST,
        copies.manifest(database_id_, at, stored, copies.sha256(plain), bool(recipients), __version__),
    )
    plain.unlink()
    stored.unlink(missing_ok=True)
    work.rmdir()
    return name


def age_key(directory: Path) -> tuple[Path, str]:
    """Make an age key pair with Debian's age-keygen; return the identity file and the public key."""
    key = directory / "backup-key.txt"
    subprocess.run(["age-keygen", "-o", key], check=True, capture_output=True)
    public = subprocess.run(["age-keygen", "-y", key], check=True, capture_output=True, text=True).stdout.strip()
    return key, public
