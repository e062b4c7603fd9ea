"""Where backups go, as the command line and MAINTCTL_BACKUP_TO name them:
a directory (a path), `file:///PATH`, or `s3://BUCKET/PREFIX` with the
store's options in its query (`endpoint=`, `region=`, `path_style=true`)
for any S3-compatible store. Each is a flat set of named objects that this
module lists, writes create-only, reads and deletes; what the objects are
(copies, manifests) is the backup's business.

Credentials for s3 come from the environment (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), never from the URL, and no
message here repeats them: a destination is shown as its URL, which holds
none. The S3 client (obstore) is imported only where an s3 destination is
used.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from maintctl import files

Progress = Callable[[int], None]  # told the bytes moved since it was last told

_MOVING = "300s"  # a request that moves a part (8 MiB: 0.2 Mbit/s), or copies a whole copy within the store
_CHUNK = 8 * 1024 * 1024  # bytes read or sent at a time: memory stays flat whatever the copy's size
_S3_OPTIONS = ("endpoint", "region", "path_style")


class DestinationError(Exception):
    """A destination could not be used: the message names it and says why, never with a secret."""


class Exists(DestinationError):
    """An object of that name is already there (a create-only write was refused)."""


class BadDestination(ValueError):
    """A destination as written cannot be used at all (a configuration error)."""


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
                for chunk in iter(lambda: reading.read(_CHUNK), b""):
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
                yield from iter(lambda: reading.read(_CHUNK), b"")
        except OSError as error:
            raise DestinationError(f"{self.shown}: {name} could not be read ({error.strerror})") from None

    def delete(self, name: str) -> None:
        files.discard(self.path / name)


@dataclass(frozen=True)
class Bucket:
    """A bucket of an S3-compatible store, and the prefix its objects' names take there."""

    url: str  # as written, without credentials (refused where it has any)
    bucket: str
    prefix: str
    options: dict[str, str]
    plain = False

    @property
    def shown(self) -> str:
        return self.url

    @property
    def place(self) -> tuple:
        """Where its objects are, however it was written (a trailing slash, the options' order)."""
        return ("s3", self.options.get("endpoint", "").rstrip("/"), self.bucket, self.prefix)

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _store(self, timeout: str = "30s"):
        """Return the S3 client whose requests each end within `timeout`; raise DestinationError where the environment holds no credentials (the client
        would otherwise ask the cloud's instance metadata for some: a wait, then an error that does not say why)."""
        from obstore.store import S3Store

        missing = [name for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not os.environ.get(name)]
        if missing:
            raise DestinationError(f"{self.shown}: no credentials: {' and '.join(missing)} not set in the environment")

        endpoint = self.options.get("endpoint")
        # Given only where the URL says: the client takes no None (a region left out is read from AWS_REGION).
        where = {
            name: value for name, value in (("endpoint", endpoint), ("region", self.options.get("region"))) if value
        }
        return S3Store(
            self.bucket,
            **where,
            virtual_hosted_style_request=self.options.get("path_style", "false").lower() not in ("true", "yes", "1"),
            # A store that takes no connection is given up on in seconds, one that takes it and says nothing
            # within the request's timeout (each request moves at most a part of 8 MiB, or copies in the store).
            client_options={
                "allow_http": bool(endpoint and endpoint.startswith("http://")),
                "connect_timeout": "5s",
                "timeout": timeout,
            },
            retry_config={"max_retries": 3, "retry_timeout": timedelta(seconds=30)},
            copy_if_not_exists="multipart",
            # Each request signs its body's SHA-256, which the store checks before it keeps it: never turned off
            # (AWS_UNSIGNED_PAYLOAD in the environment would).
            unsigned_payload=False,
        )

    def sizes(self, prefix: str) -> dict[str, int]:
        """Given how names begin, return the objects' names and sizes (those
        right under the prefix only; none in a bucket not made yet, which
        stores that make buckets on the first write, as SeaweedFS, have)."""
        import obstore

        with self._failing("could not be listed"):
            try:
                listed = obstore.list_with_delimiter(self._store(), prefix=self.prefix or None)
            except Exception as error:
                if _is_store_error(error) and "<Code>NoSuchBucket</Code>" in str(error):
                    return {}
                raise
        cut = len(self._key(""))
        return {name: item["size"] for item in listed["objects"] if (name := item["path"][cut:]).startswith(prefix)}

    def put(self, name: str, source: Path, progress: Progress | None = None) -> None:
        """Upload the file at source as name, create-only: in parts to a hidden
        partial object, then copied into place on the condition that the name is
        free (S3's If-None-Match on the copy's completion); the partial object is
        deleted either way. No one sees a part of it under its name."""
        import obstore

        store, partial = self._store(_MOVING), self._key(f".{name}.partial-{secrets.token_hex(4)}")

        def chunks() -> Iterator[bytes]:
            with open(source, "rb") as reading:
                for chunk in iter(lambda: reading.read(_CHUNK), b""):
                    yield chunk
                    if progress:
                        progress(len(chunk))

        try:
            with self._failing(f"{name} could not be written"):
                obstore.put(
                    store, partial, chunks() if source.stat().st_size else b"", chunk_size=_CHUNK, max_concurrency=4
                )
                obstore.copy(store, partial, self._key(name), overwrite=False)
        finally:
            with self._failing(f"{name}'s partial upload could not be removed"):
                obstore.delete(store, partial)

    def put_bytes(self, name: str, data: bytes) -> None:
        import obstore

        with self._failing(f"{name} could not be written"):
            obstore.put(self._store(), self._key(name), data, mode="create")

    def chunks(self, name: str) -> Iterator[bytes]:
        """Yield the object's bytes a part of 8 MiB at a time, each part a request of its own (so that a slow
        link reads a copy of any size, each request within its timeout)."""
        import obstore

        store, key = self._store(_MOVING), self._key(name)
        with self._failing(f"{name} could not be read"):
            size = obstore.head(store, key)["size"]
            for start in range(0, size, _CHUNK):
                yield bytes(obstore.get_range(store, key, start=start, end=min(size, start + _CHUNK)))

    def delete(self, name: str) -> None:
        import obstore

        with self._failing(f"{name} could not be deleted"):
            obstore.delete(self._store(), self._key(name))

    def _failing(self, what: str):
        return _Failing(self.shown, what)


class _Failing:
    """Turns the S3 client's errors into one line naming the destination and what failed."""

    def __init__(self, shown: str, what: str):
        self.shown, self.what = shown, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, _) -> bool:
        if error is None or not _is_store_error(error):
            return False
        if type(error).__name__ == "AlreadyExistsError":
            raise Exists(f"{self.shown}: {self.what}: it is already there") from None
        raise DestinationError(f"{self.shown}: {self.what} ({_why(error)})") from None


def _is_store_error(error: BaseException) -> bool:
    return type(error).__module__.startswith("obstore") or isinstance(error, OSError)


def _why(error: BaseException) -> str:
    """Given the client's error, return its gist in a line: the HTTP status and S3's error code where there are."""
    text = str(error)
    status = re.search(r"status code: (\d{3} [A-Za-z ]+?):", text)
    code = re.search(r"<Code>([^<]{1,80})</Code>", text)
    if status or code:
        return ", ".join(part for part in (status and status[1], code and code[1]) if part)
    first = text.splitlines()[0] if text else type(error).__name__
    return first if len(first) <= 200 else first[:197] + "..."


Destination = Folder | Bucket


def parse(text: str) -> Destination:
    """Given a destination as written, return it; raise BadDestination
    naming what is wrong (a URL with credentials in it is named without them)."""
    if "://" not in text:
        if not text:
            raise BadDestination("a backup destination is empty")
        return Folder(Path(text), plain=True)
    scheme = text.partition("://")[0].lower()
    try:
        parts = urlsplit(text)
    except ValueError:
        raise BadDestination(f"the backup destination {scheme}://… cannot be read as a URL") from None
    if parts.username is not None or parts.password is not None:
        raise BadDestination(
            f"the backup destination {scheme}://… has credentials in it (not shown): give them in the environment"
            " (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), never in the URL"
        )
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise BadDestination(f"the backup destination {text} must be file:///ABSOLUTE/PATH")
        return Folder(Path(unquote(parts.path)), plain=False)
    if scheme != "s3":
        raise BadDestination(f"the backup destination {scheme}://… is not a directory, file:// or s3:// URL")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(_S3_OPTIONS))
    if unknown:
        raise BadDestination(
            f"the backup destination's query has {', '.join(unknown)}, which maintctl does not take"
            f" (it takes {', '.join(_S3_OPTIONS)}; credentials come from the environment)"
        )
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", parts.hostname or ""):
        raise BadDestination(
            f"the backup destination s3://{parts.netloc}… does not name a bucket (3 to 63 of a-z 0-9 . -)"
        )
    endpoint = options.get("endpoint")
    if endpoint is not None and not re.fullmatch(r"https?://[^\s/?#]+/?", endpoint):
        raise BadDestination(f"the backup destination's endpoint {endpoint!r} must be http(s)://HOST[:PORT]")
    shown = f"s3://{parts.hostname}{parts.path.rstrip('/')}" + (f"?{parts.query}" if parts.query else "")
    return Bucket(shown, parts.hostname, unquote(parts.path).strip("/"), options)
