"""A copy brought back from its destination and checked: its bytes against
its manifest (size and sha256), then, where it is encrypted, decrypted with
MAINTCTL_BACKUP_IDENTITY and the SQLite file against the manifest's
plain_sha256. What verify-backups and restore read.

A copy is streamed a chunk at a time into a private temporary directory
(0700, beside the database where it can be made, so that a copy as large as
the database has room), never held whole in memory; the directory and all
in it are removed when the block that asked for it ends, however it ends;
where a process was killed meanwhile (SIGKILL, a host's power lost), the
next fetch there removes what it left (its name holds the process's id). A
plain directory's copy is read where it lies."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from maintctl.backups import copies, encryption
from maintctl.backups.copies import Copy
from maintctl.backups.destinations import Folder
from maintctl.store import openers
from maintctl.store.db import Stopped

Progress = Callable[[int], None]  # told the bytes moved since it was last told


class NotVerified(Exception):
    """The copy is not what its manifest says, or cannot be read: the message names it and its destination."""


@dataclass(frozen=True)
class Fetched:
    """A copy at hand: the bytes as stored, checked against its manifest, and the SQLite file they hold."""

    copy: Copy
    shown: str  # its destination, as printed
    stored: Path
    plain: Path


@contextlib.contextmanager
def workspace(beside: Path) -> Iterator[Path]:
    """Yield a private directory for fetched copies (in `beside` where one
    can be made there, else in the system's), removed with all in it when
    the block ends; SIGTERM meanwhile ends the block (Stopped), so that
    nothing is left behind."""
    try:
        _remove_abandoned(beside, ".")
        directory = Path(tempfile.mkdtemp(prefix=f".maintctl-fetched-{os.getpid()}-", dir=beside))
    except OSError:
        _remove_abandoned(Path(tempfile.gettempdir()), "")
        directory = Path(tempfile.mkdtemp(prefix=f"maintctl-fetched-{os.getpid()}-"))
    try:
        with _signals_end_the_block():
            yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _remove_abandoned(where: Path, hidden: str) -> None:
    """Remove the directories for fetched copies in `where` that processes no longer running left there (killed
    before they could: the copies in them may be decrypted)."""
    pattern = re.compile(re.escape(hidden) + r"maintctl-fetched-(\d+)-\w+")
    for entry in os.scandir(where):
        match = pattern.fullmatch(entry.name)
        if match and entry.is_dir(follow_symlinks=False) and not openers.running(int(match[1])):
            shutil.rmtree(entry.path, ignore_errors=True)


@contextlib.contextmanager
def _signals_end_the_block() -> Iterator[None]:
    """Within the block, SIGTERM raises Stopped (as SIGINT raises KeyboardInterrupt), where the
    default would end the process without its `finally`s; a handler set already is left as it is."""
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def heard(number: int, _) -> None:
        raise Stopped("stopped by SIGTERM while a copy was fetched", "SIGTERM")

    previous = signal.signal(signal.SIGTERM, heard)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def fetch(
    destination, shown: str, copy: Copy, directory: Path, identities: list | None, progress: Progress | None = None
) -> Fetched:
    """Given a destination, a copy there (its manifest read), a directory
    from workspace() and the identities that read encrypted copies (None:
    not given; an encrypted copy is then checked as stored only, and its
    plain file is None), bring the copy here and check it; return it.
    Raise NotVerified naming the copy and destination where it is not what
    its manifest says or cannot be read, DestinationError where it cannot be
    fetched."""
    where = f"{shown}: {copy.name}"
    manifest = copy.manifest
    if manifest is not None and not _well_formed(manifest):
        raise NotVerified(f"{where}: its manifest is not one maintctl wrote (size, sha256 and plain_sha256)")
    if copy.encrypted and identities is not None:
        plain = directory / copy.name.removesuffix(encryption.SUFFIX)
        size, digest, plain_digest, unreadable = _bring_decrypted(destination, copy, plain, identities, progress)
        stored = None
    else:
        stored, digest = _bring(destination, copy, directory, progress)
        size, unreadable = stored.stat().st_size, None
    if manifest is not None and (size != manifest["size"] or digest != manifest["sha256"]):
        said = f"{size:,} bytes, not {manifest['size']:,}" if size != manifest["size"] else "its sha256 differs"
        raise NotVerified(f"{where}: does not match its manifest ({said}): changed or damaged since it was written")
    if unreadable is not None:
        raise NotVerified(f"{where}: {unreadable}")
    if not copy.encrypted:
        plain, plain_digest = stored, digest
    elif identities is None:
        return Fetched(copy, shown, stored, None)
    if manifest is not None and plain_digest != manifest["plain_sha256"]:
        raise NotVerified(f"{where}: the SQLite file it holds does not match its manifest's plain_sha256")
    return Fetched(copy, shown, stored, plain)


def _bring_decrypted(
    destination, copy: Copy, plain: Path, identities: list, progress: Progress | None
) -> tuple[int, str, str, str | None]:
    """Bring an encrypted copy and decrypt it as it comes, in one pass: a
    thread reads it from the destination into a pipe (hashing what is
    stored), this one decrypts from the pipe into `plain` (hashing what it
    holds). Return the stored size and sha256, the plain sha256 and why it
    could not be decrypted (None: it was). The stored bytes are hashed to
    their end whatever decryption found, so that a copy changed since it was
    written is named as such."""
    import threading

    stored, counted, failed, abandoned = hashlib.sha256(), [0], [], threading.Event()
    hashed = copies.Hashing(open(plain, "xb"))  # noqa: SIM115 - closed below, whatever decryption does
    plain.chmod(0o600)
    reader, writer = os.pipe()

    def bring() -> None:
        gone = False  # decryption gave up: the rest is only hashed
        try:
            for chunk in destination.chunks(copy.name):
                if abandoned.is_set():  # SIGTERM, or a fault, in the thread that asked
                    return
                stored.update(chunk)
                counted[0] += len(chunk)
                view = memoryview(chunk)
                while view and not gone:
                    try:
                        view = view[os.write(writer, view) :]
                    except BrokenPipeError:
                        gone = True
                if progress:
                    progress(len(chunk))
        except BaseException as error:  # noqa: BLE001 - handed to the thread that asked
            failed.append(error)
        finally:
            os.close(writer)

    thread = threading.Thread(target=bring, name="maintctl-fetch", daemon=True)
    thread.start()
    unreadable = None
    try:
        with open(reader, "rb") as pipe:
            try:
                encryption.decrypt_stream(pipe, hashed, identities)
            except encryption.NotReadable as error:
                unreadable = str(error)
    except BaseException:
        abandoned.set()
        raise
    finally:
        hashed.file.close()
        thread.join()
    if failed:
        raise failed[0]
    return counted[0], stored.hexdigest(), hashed.digest.hexdigest(), unreadable


def _well_formed(manifest: dict) -> bool:
    size, digests = manifest.get("size"), (manifest.get("sha256"), manifest.get("plain_sha256"))
    return isinstance(size, int) and not isinstance(size, bool) and all(isinstance(text, str) for text in digests)


def _bring(destination, copy: Copy, directory: Path, progress: Progress | None) -> tuple[Path, str]:
    """Return the copy's file here (a plain directory's where it lies) and its sha256, read once."""
    hashed = hashlib.sha256()
    if isinstance(destination, Folder):
        lying = destination.path / copy.name
        for chunk in destination.chunks(copy.name):
            hashed.update(chunk)
            if progress:
                progress(len(chunk))
        return lying, hashed.hexdigest()
    target = directory / copy.name
    with open(target, "xb") as writing:
        target.chmod(0o600)
        for chunk in destination.chunks(copy.name):
            hashed.update(chunk)
            writing.write(chunk)
            if progress:
                progress(len(chunk))
    return target, hashed.hexdigest()


def integrity_problems(plain: Path) -> list[str]:
    """Given a SQLite file, return what PRAGMA integrity_check finds ([] where it is whole), opened immutable."""
    import sqlite3

    from maintctl.store.db import integrity_problems as found

    connection = sqlite3.connect(f"{plain.resolve().as_uri()}?immutable=1", uri=True)
    try:
        return found(connection)
    except sqlite3.DatabaseError as error:
        return [f"not a SQLite database ({error})"]
    finally:
        connection.close()
