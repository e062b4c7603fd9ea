"""Where this database's copies are: its destinations as the settings name
them, how its copies' names begin (its file name and the short form of its
id), the copy of a time among them, and what `restore SOURCE` names (a copy's
file, a copy's URL, or a destination)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from maintctl import files
from maintctl.backups import copies, destinations, keeping
from maintctl.backups.copies import Copy
from maintctl.store import identity

# A copy's name as the last part of a path or URL: what tells a copy from a destination.
_COPY_ENDINGS = (".sqlite3", ".sqlite3.age")


def begins(database: Path, database_id: str) -> str:
    """Given the database's path and id, return how its copies' names begin."""
    return copies.prefix(database.name, identity.short(database_id))


def parsed(written: tuple[str, ...]) -> list:
    """Given the destinations as written, return each parsed, or the BadDestination that says why it is not one."""
    found, places = [], set()
    for text in written:
        try:
            destination = destinations.parse(text)
        except destinations.BadDestination as error:
            found.append(error)
            continue
        if destination.place not in places:  # one place named twice (d/x and ./d/x/) is written once
            places.add(destination.place)
            found.append(destination)
    return found


def newest_at_or_before(found: list[Copy], instant: datetime | None, now: datetime) -> Copy | None:
    """Given copies (oldest first), an instant (None: the newest) and now, return the newest taken at or before
    the instant; the newest is taken as rotation orders them (keeping.order): a copy named with a time after now
    (a clock that ran ahead) is older than every other, never the newest while there is another."""
    if instant is None:
        return keeping.order(found, files.stamp(now))[-1] if found else None
    eligible = [copy for copy in found if copy.created_at <= instant]
    return eligible[-1] if eligible else None


@dataclass(frozen=True)
class Source:
    """What `restore SOURCE` names: a local file (path), or a destination and, where it names one, a copy there."""

    path: Path | None = None
    destination: object = None
    copy_name: str | None = None


def source(text: str) -> Source:
    """Given restore's SOURCE as written, return what it names: a URL or a
    directory is a destination, or a copy where its last part is a copy's
    name; any other path is a local copy's file. Raise BadDestination."""
    if "://" not in text:
        path = Path(text).expanduser()
        try:
            is_directory = path.is_dir()
        except OSError:  # a name too long, say: restore names it as a backup file that cannot be read
            is_directory = False
        if is_directory:
            return Source(destination=destinations.parse(text))
        return Source(path=path)
    parts = urlsplit(text)
    head, _, last = parts.path.rstrip("/").rpartition("/")
    if not last.endswith(_COPY_ENDINGS):
        return Source(destination=destinations.parse(text))
    folder_path = head or ("/" if parts.scheme.lower() == "file" else "")
    folder = urlunsplit((parts.scheme, parts.netloc, folder_path, parts.query, parts.fragment))
    return Source(destination=destinations.parse(folder), copy_name=last)


def listed(written: tuple[str, ...], database: Path, database_id: str | None) -> list[dict]:
    """Given the destinations as written, the database and its id (None: it
    has none yet, so no copies), return per destination its finished copies
    of this database, oldest first (`copies`), or why it could not be listed
    (`error`). Raise BadDestination for one that is not a destination."""
    found = []
    for destination in parsed(written):
        if isinstance(destination, destinations.BadDestination):
            raise destinations.BadDestination(str(destination))
        entry: dict = {"destination": destination.shown, "copies": []}
        if database_id is not None:
            try:
                listing = copies.listing(destination, begins(database, database_id))
                entry["copies"] = [copy.listed() for copy in listing.copies]
            except destinations.DestinationError as error:
                entry["error"] = str(error)
        found.append(entry)
    return found
