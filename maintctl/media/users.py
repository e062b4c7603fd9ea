"""Which memories still use a media file, however their paths spell it.

A memory uses a file where its media path passes through the file's name:
the same name spelled another way (`./x.jpg`, `sub/../x.jpg`, the absolute
path, a linked directory on the way), or a link (or a chain of links) that
leads to it. Every such path ends either in the file's own last component or
in that of a link leading to it, so the candidates are found in SQL by last
component (through an index init-db makes), and each is then resolved.
Paths count however the app stored them: as text, text that is not UTF-8,
or a BLOB (whose last component the index cannot give: SQL finds every such
row, as the index keeps BLOB values after all text, and Python tells them
by name). A hard link is another name of the file, not a use of this one: deleting one
name of a file loses nothing another name keeps.
"""

from __future__ import annotations

import os
import sqlite3
from collections import defaultdict
from collections.abc import Collection, Iterator
from typing import NamedTuple

from maintctl import json_text
from maintctl.media.paths import MediaDirectory
from maintctl.utf8 import readable_sql

# The last component of media_local_path, by deterministic built-ins alone:
# rtrim strips the trailing characters that are not '/', and what it strips is the name.
LAST_COMPONENT_SQL = "substr(media_local_path, length(rtrim(media_local_path, replace(media_local_path, '/', ''))) + 1)"
INDEX_NAME = "maintctl_memories_media_name"
INDEX = f"CREATE INDEX IF NOT EXISTS {INDEX_NAME} ON memories ({LAST_COMPONENT_SQL}) WHERE media_local_path IS NOT NULL"
_WITH_PATH = (
    f"SELECT {readable_sql('id')}, CAST(media_local_path AS BLOB) FROM memories WHERE media_local_path IS NOT NULL"
)
# By name (the names as JSON text), and every path stored as a BLOB: the
# index's value for one is a BLOB, and those sort after all text.
_CANDIDATES = (
    f"{_WITH_PATH} AND {LAST_COMPONENT_SQL} IN (SELECT value FROM json_each(?))"
    f" UNION ALL {_WITH_PATH} AND {LAST_COMPONENT_SQL} >= x''"
)
# Names that are not UTF-8 (JSON cannot carry them): bound as bytes, compared as text.
_UNCLEAN_AT_ONCE = 500
# Users named in a warning; the rest are counted.
_USERS_NAMED = 3


def indexed(connection: sqlite3.Connection) -> bool:
    """Return whether init-db has made the index that finds users by last component."""
    return connection.execute("SELECT 1 FROM sqlite_schema WHERE name = ?", (INDEX_NAME,)).fetchone() is not None


class User(NamedTuple):
    """A memory that uses a file, and the link its path reaches it through (None: its own name)."""

    memory_id: str | bytes  # bytes: an id that is not clean text (see utf8.readable_sql)
    link: str | None


def kept(
    connection: sqlite3.Connection, directory: MediaDirectory, files: Collection[str], leaving: Collection[str] = ()
) -> dict[str, str]:
    """Given files to delete, as MediaDirectory.locate names them, and the ids
    of the memories that go with them, return each file that another memory
    uses, with why it stays. (The first call with files walks the media
    directory for its links.)"""
    if not files:
        return {}
    found = _users(connection, directory, files, leaving)
    return {file: _kept_text(file, file_users) for file, file_users in found.items()}


def _users(
    connection: sqlite3.Connection, directory: MediaDirectory, files: Collection[str], leaving: Collection[str]
) -> dict[str, list[User]]:
    """Given files, and the memories that go with them, return each file that
    another memory uses, with those memories."""
    links = directory.links()
    names = {os.fsencode(os.path.basename(path)) for file in files for path in (file, *links.get(file, ()))}
    found: dict[str, list[User]] = defaultdict(list)
    for memory_id, stored in _candidates(connection, names):
        if memory_id in leaving or os.path.basename(stored) not in names:
            continue
        chain = directory.chain(os.fsdecode(stored))
        for position, name in enumerate(chain):
            if name in files:
                found[name].append(User(memory_id, chain[0] if position else None))
    return found


def _candidates(connection: sqlite3.Connection, names: set[bytes]) -> Iterator[tuple[str | bytes, bytes]]:
    """Given last components, return (memory id, stored path as bytes) for
    the memories whose path may end in one of them: those found by name
    through the index, and every one stored as a BLOB (for the caller to
    tell by name)."""
    clean, unclean = [], []
    for name in sorted(names):
        try:
            clean.append(name.decode())
        except UnicodeDecodeError:
            unclean.append(name)
    yield from connection.execute(_CANDIDATES, (json_text.encode(clean),))
    for start in range(0, len(unclean), _UNCLEAN_AT_ONCE):
        chunk = unclean[start : start + _UNCLEAN_AT_ONCE]
        listed = ", ".join(["CAST(? AS TEXT)"] * len(chunk))
        yield from connection.execute(f"{_WITH_PATH} AND {LAST_COMPONENT_SQL} IN ({listed})", chunk)


def _kept_text(file: str, file_users: list[User]) -> str:
    """Given a file kept and the memories that use it, return why it was kept."""
    named = [_describe(user) for user in file_users[:_USERS_NAMED]]
    more = len(file_users) - len(named)
    if more:
        named.append(f"{more} more")
    listed = ", ".join(named[:-1]) + " and " + named[-1] if len(named) > 1 else named[0]
    verb = "uses" if len(file_users) == 1 else "use"
    return f"media file {file!r} kept: {listed} {verb} it"


def _describe(user: User) -> str:
    text = f"memory {user.memory_id}"
    return f"{text} (through the link {user.link!r})" if user.link else text
