"""A destination that is a directory: named as a path (a plain directory,
its copies unencrypted, as maintctl always wrote them) or as `file:///PATH`
(a URL destination, its copies encrypted). Written create-only: whole under
a hidden partial name, then linked into place."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from maintctl import files
from maintctl.backups.objects import CHUNK, DestinationError, Exists, Progress


@dataclass(frozen=True)
class Folder:
    """A directory, named as a path (`plain`: copies as today, unencrypted) or as `file:///PATH`."""

    path: Path
    plain: bool

    @property
    def shown(self) -> str:
        return files.printable(self.path) if self.plain else f"file://{files.printable(self.path)}"

    @property
    def place(self) -> tuple:
        """Where its objects are, however it was written (a relative path, a trailing slash)."""
        return ("directory", os.path.abspath(self.path))

    def sizes(self, prefix: str) -> dict[str, int]:
        """Given how names begin, return the objects' names and sizes (hidden and partial files left out)."""
        try:
            entries = list(os.scandir(self.path))
        except FileNotFoundError:
            return {}
        except OSError as error:
            raise DestinationError(f"{self.shown}: cannot be listed ({error.strerror})") from None
        return {
            entry.name: entry.stat().st_size
            for entry in entries
            if entry.name.startswith(prefix) and not entry.name.startswith(".") and entry.is_file(follow_symlinks=False)
        }

    def put(self, name: str, source: Path, progress: Progress | None = None) -> None:
        """Write the file at source as name, create-only: written whole under a
        hidden partial name, then linked in place (which fails where the name is
        taken), so that no one ever sees a part of it under its name."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = self.path / f".{name}.partial-{secrets.token_hex(4)}"
        try:
            with open(source, "rb") as reading, open(partial, "xb") as writing:
                os.fchmod(writing.fileno(), files.permissions(source))
                for chunk in iter(lambda: reading.read(CHUNK), b""):
                    writing.write(chunk)
                    if progress:
                        progress(len(chunk))
                writing.flush()
                os.fsync(writing.fileno())
            os.link(partial, self.path / name)
            files.sync(self.path)
        except FileExistsError:
            raise Exists(f"{self.shown}: {name} is already there") from None
        except OSError as error:
            raise DestinationError(f"{self.shown}: {name} could not be written ({error.strerror})") from None
        finally:
            files.discard(partial)

    def put_bytes(self, name: str, data: bytes) -> None:
        """Write data as name, create-only."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            descriptor = os.open(self.path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise Exists(f"{self.shown}: {name} is already there") from None
        except OSError as error:
            raise DestinationError(f"{self.shown}: {name} could not be written ({error.strerror})") from None
        with os.fdopen(descriptor, "wb") as writing:
            writing.write(data)
            writing.flush()
            os.fsync(writing.fileno())
        files.sync(self.path)

    def chunks(self, name: str) -> Iterator[bytes]:
        """Yield the object's bytes, a chunk at a time."""
        try:
            with open(self.path / name, "rb") as reading:
                yield from iter(lambda: reading.read(CHUNK), b"")
        except OSError as error:
            raise DestinationError(f"{self.shown}: {name} could not be read ({error.strerror})") from None

    def delete(self, name: str) -> None:
        files.discard(self.path / name)
