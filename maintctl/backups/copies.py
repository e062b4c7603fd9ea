"""One database's copies at a destination: how they are named, the manifest
beside each, and which of them are finished.

A copy is `<db file name>-<short database id>-<UTC time>.sqlite3` (numbered
-2, -3, ... after a copy of the same second; `.age` appended when
encrypted), and its manifest `<copy name>.json` holds what it is:
{"database_id", "created_at", "size", "sha256" (of the bytes stored),
"plain_sha256" (of the SQLite file), "integrity_check", "encrypted",
"maintctl"}. The manifest is written after the copy, so at a URL
destination a copy without one is not finished: never restored from, never
counted for retention, and removed by the next backup. A directory named as
a path takes its copies whole by renaming, and copies written there by
earlier versions have no manifest: there a copy is finished without one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from maintctl import files, timestamps

MANIFEST = ".json"
# The UTC time in a copy's name; earlier versions wrote a year before 1000 with fewer digits.
STAMP = r"(\d{5,8})T(\d{6})Z"


def prefix(db_name: str, short_id: str) -> str:
    """Given the database file's name and the short form of its id, return how its copies' names begin."""
    return f"{db_name}-{short_id}-"


def pattern(begins: str) -> re.Pattern:
    """Given how a database's copies' names begin, return what matches a copy's name (manifests left out)."""
    return re.compile(re.escape(begins) + STAMP + r"(?:-(\d+))?\.sqlite3(\.age)?")


def name(begins: str, at: datetime, number: int = 1, encrypted: bool = False) -> str:
    """Return the name of the copy taken at that time (the number-th of its second)."""
    return f"{begins}{files.stamp(at)}{f'-{number}' if number > 1 else ''}.sqlite3{'.age' if encrypted else ''}"


@dataclass(frozen=True)
class Copy:
    """A finished copy of this database at a destination."""

    name: str
    stamp: str  # the UTC time in its name, as files.stamp writes it (a year of 8 digits)
    number: int  # 1, or n for a name ending -n: the nth copy of that second
    size: int  # the bytes stored
    manifest: dict | None  # None: a plain directory's copy from before manifests

    @property
    def encrypted(self) -> bool:
        return self.name.endswith(".age")

    @property
    def created_at(self) -> datetime:
        """When it was taken: its manifest's created_at, else the time in its name."""
        if self.manifest and isinstance(self.manifest.get("created_at"), str):
            try:
                return timestamps.parse_instant(self.manifest["created_at"])
            except timestamps.NotAnInstant:
                pass
        return datetime.strptime(self.stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)

    def listed(self) -> dict:
        """What `backups` shows of it."""
        return {
            "name": self.name,
            "created_at": timestamps.format_instant(self.created_at),
            "size": self.size,
            "encrypted": self.encrypted,
        }


@dataclass(frozen=True)
class Listing:
    """What one database has at a destination: its finished copies, oldest first, and what is not a finished
    copy (a copy without its manifest at a URL destination, a manifest without its copy, a partial upload)."""

    copies: list[Copy]
    leftovers: list[str]


def listing(destination, begins: str, read_manifests: bool = True) -> Listing:
    """Given a destination (backups/destinations) and how the database's
    copies' names begin, return its finished copies, oldest first, and its
    leftovers; each manifest is read (raising the destination's error), or
    with read_manifests=False none is (one listing of the destination, as
    status and the metrics ask: each copy's manifest is then None and its
    created_at the time in its name)."""
    sizes = destination.sizes(begins)
    hidden = destination.sizes(f".{begins}")
    matches = pattern(begins)
    copies, leftovers = [], [name for name in hidden if ".partial" in name]
    for stored, size in sizes.items():
        match = matches.fullmatch(stored)
        if match is None:
            copy_of = stored.removesuffix(MANIFEST)
            if stored.endswith(MANIFEST) and matches.fullmatch(copy_of) and copy_of not in sizes:
                leftovers.append(stored)  # its copy is gone
            continue
        has_manifest = stored + MANIFEST in sizes
        manifest = _manifest(destination, stored) if has_manifest and read_manifests else None
        if not has_manifest and not destination.plain:
            leftovers.append(stored)
            continue
        copies.append(Copy(stored, f"{match[1].zfill(8)}T{match[2]}Z", int(match[3] or 1), size, manifest))
    copies.sort(key=lambda copy: (copy.stamp, copy.number))
    return Listing(copies, sorted(leftovers))


def _manifest(destination, stored: str) -> dict:
    """Return a copy's manifest ({} where it is not a JSON object: the copy then fails verification)."""
    try:
        read = json.loads(b"".join(destination.chunks(stored + MANIFEST)))
    except (ValueError, UnicodeDecodeError):
        return {}
    return read if isinstance(read, dict) else {}


def manifest(
    database_id: str,
    created_at: datetime,
    stored: Path,
    plain_sha256: str,
    encrypted: bool,
    version: str,
    stored_sha256: str | None = None,
) -> bytes:
    """Given the file as stored and the SQLite file's digest (and the stored
    file's, where it was taken as the file was written), return the copy's
    manifest."""
    return json.dumps(
        {
            "database_id": database_id,
            "created_at": timestamps.format_instant(created_at),
            "size": stored.stat().st_size,
            "sha256": stored_sha256 or sha256(stored),
            "plain_sha256": plain_sha256,
            "integrity_check": "ok",
            "encrypted": encrypted,
            "maintctl": version,
        },
        indent=2,
    ).encode()


def sha256(path: Path) -> str:
    """Return the file's SHA-256, read a megabyte at a time."""
    return digest_of(_chunks(path))


def digest_of(chunks: Iterable[bytes]) -> str:
    hashed = hashlib.sha256()
    for chunk in chunks:
        hashed.update(chunk)
    return hashed.hexdigest()


def _chunks(path: Path) -> Iterable[bytes]:
    with open(path, "rb") as reading:
        yield from iter(lambda: reading.read(1 << 20), b"")


class Hashing:
    """A file read or written through it, its bytes hashed on the way (the copy is read once, whatever its size)."""

    def __init__(self, file):
        self.file, self.digest = file, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self.file.read(size)
        self.digest.update(chunk)
        return chunk

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()
