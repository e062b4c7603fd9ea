"""A destination in a bucket of an S3-compatible store (AWS S3, MinIO,
SeaweedFS, R2, B2), through obstore, imported only where one is used:
listed, written create-only (in parts to a hidden object, then copied into
place on the condition that the name is free), read a part at a time. The
credentials come from the environment only, and no message repeats them."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from maintctl.backups.objects import CHUNK, DestinationError, Exists, Progress

_MOVING = "300s"  # a request that moves a part (8 MiB: 0.2 Mbit/s), or copies a whole copy within the store


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
                for chunk in iter(lambda: reading.read(CHUNK), b""):
                    yield chunk
                    if progress:
                        progress(len(chunk))

        try:
            with self._failing(f"{name} could not be written"):
                obstore.put(
                    store, partial, chunks() if source.stat().st_size else b"", chunk_size=CHUNK, max_concurrency=4
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
            for start in range(0, size, CHUNK):
                yield bytes(obstore.get_range(store, key, start=start, end=min(size, start + CHUNK)))

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
