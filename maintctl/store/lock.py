"""One run per database at a time.

An advisory lock (flock) on a file beside the database, `<db>.maintctl.lock`
(MAINTCTL_LOCK_FILE names another, for a database in a directory maintctl may
not write to).
The kernel releases it when the process ends, however it ends, so a run killed
with SIGKILL never leaves a lock behind. A lock had on a file that the path no
longer names (deleted or replaced by hand meanwhile) is let go and the file
there now is locked instead, so that a run never works beside one that took
that file's lock. The lock is an optimisation: every change is guarded in
SQL, so two runs that both get past it (a filesystem where locking does not
work, say) still make each change once.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import select
import signal
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from maintctl.config.settings import ConfigError
from maintctl.store.db import Stop, Stopped
from maintctl.store.openers import locks_on


class Busy(Exception):
    """Another run holds the lock; the message says which."""


def default_path(database: Path) -> Path:
    return database.with_name(database.name + ".maintctl.lock")


@contextmanager
def held(
    database: Path,
    path: Path,
    wait: float = 0.0,
    stop: threading.Event | None = None,
) -> Iterator[bool]:
    """Hold the database's lock (the file at path) for the block, yielding
    whether another held it first; wait up to `wait` seconds for it, then
    raise Busy naming the holder (or Stopped, where `stop` is set meanwhile)."""
    deadline, free = time.monotonic() + wait, True
    for descriptor in _lock_files(database, path):
        try:
            if not _taken(descriptor):
                free, left = False, deadline - time.monotonic()
                if left <= 0:
                    raise _busy(database, _holder(descriptor))
                waiting = _sleep_for(descriptor, left, stop) if _can_sleep(stop) else _poll_for(descriptor, left, stop)
                if waiting == "stopped":
                    by = getattr(stop, "by", "SIGTERM")
                    raise Stopped(f"stopped by {by} while waiting for the lock", by)
                if waiting == "busy":
                    raise Busy(
                        f"another maintctl run ({_who(path, descriptor)}) still holds the lock on {database}"
                        f" after {wait:g} s"
                    )
        except BaseException:
            os.close(descriptor)
            raise
        if _still_named(path, descriptor):
            break
        os.close(descriptor)  # a lock on a file that is gone: another run may hold the file there now
    try:
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield not free
    finally:
        os.close(descriptor)  # releases the lock


def _lock_files(database: Path, path: Path) -> Iterator[int]:
    """Given the database and its lock file, yield a descriptor of the file
    the path names (see _open), and another each time the caller finds that
    the path no longer names the one before; the caller closes each. Raise
    ConfigError where that goes on and on."""
    for _ in range(10):
        yield _open(database, path)
    raise ConfigError(f"{path}: the lock file was deleted or replaced again and again while its lock was taken")


def _still_named(path: Path, descriptor: int) -> bool:
    """Given the lock file and a descriptor of it, return whether the path still names that file."""
    try:
        named, held_file = os.stat(path, follow_symlinks=False), os.fstat(descriptor)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == (held_file.st_dev, held_file.st_ino)


def _taken(descriptor: int) -> bool:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _can_sleep(stop: threading.Event | None) -> bool:
    """Whether the wait can sleep in the kernel: SIGTERM and SIGINT are heard
    only in the main thread, and only where the run handles them (setting `stop`)."""
    return (
        stop is not None
        and threading.current_thread() is threading.main_thread()
        and all(callable(signal.getsignal(number)) for number in _SIGNALS)
    )


def _sleep_for(descriptor: int, wait: float, stop: threading.Event) -> str:
    """Given the lock file's descriptor, wait up to `wait` seconds for the
    lock asleep, costing no CPU: a thread blocks in flock, which the kernel
    wakes the moment the holder lets go or dies, and says so through a pipe;
    SIGTERM and SIGINT (the run's own handlers set `stop`) say so through it
    too. Return "taken", "stopped" or "busy" (the wait is over). A thread
    left blocked holds duplicates of its own only, closed as soon as flock
    returns, so that a lock it gets after the wait is over is let go at once."""
    reader, writer = os.pipe()
    lock_duplicate, thread_writer = os.dup(descriptor), os.dup(writer)
    taken, ended = threading.Event(), threading.Event()

    def block() -> None:
        try:
            fcntl.flock(lock_duplicate, fcntl.LOCK_EX)
            taken.set()
        except OSError:
            pass
        finally:
            ended.set()
            os.close(lock_duplicate)
            with suppress(OSError):  # the wait is over and the pipe closed
                os.write(thread_writer, b"l")
            os.close(thread_writer)

    def heard(number: int, frame) -> None:
        handlers[number](number, frame)
        os.write(writer, b"s")

    handlers = {number: signal.getsignal(number) for number in _SIGNALS}  # known before a signal can reach heard
    try:
        for number in _SIGNALS:
            signal.signal(number, heard)
        threading.Thread(target=block, name="maintctl-lock", daemon=True).start()
        deadline = time.monotonic() + wait
        while not stop.is_set() and not ended.is_set() and (left := deadline - time.monotonic()) > 0:
            select.select([reader], [], [], min(left, _LONGEST_SLEEP))
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
        os.close(reader)
        os.close(writer)
    if stop.is_set():
        return "stopped"
    if ended.is_set() and not taken.is_set():  # flock failed (no lock left in the kernel, say): look in steps
        return _poll_for(descriptor, max(0.0, deadline - time.monotonic()), stop)
    return "taken" if taken.is_set() else "busy"


_LONGEST_SLEEP = 86400.0  # seconds: select takes no timeout as long as --wait may be


def _poll_for(descriptor: int, wait: float, stop: threading.Event | None) -> str:
    """The wait where it cannot sleep (outside the main thread): a look every 10 ms."""
    deadline = time.monotonic() + wait
    while not _taken(descriptor):
        if stop is not None and stop.is_set():
            return "stopped"
        if time.monotonic() >= deadline:
            return "busy"
        time.sleep(0.01)
    return "taken"


@contextmanager
def held_hearing_signals(database: Path, path: Path, wait: float) -> Iterator[float]:
    """Hold the database's lock (the file at path) for the block, as `held`
    does, for a command that sets no signal handlers of its own (restore):
    SIGTERM and SIGINT end the wait at once (Stopped) and, once the lock is
    had, act as they did before. Yield the seconds waited (0.0 where the
    lock was free)."""
    stop, began = Stop(), time.monotonic()

    def heard(number: int, _) -> None:
        stop.by = signal.Signals(number).name
        stop.set()

    previous = {number: signal.signal(number, heard) for number in _SIGNALS}
    restored = False
    try:
        with held(database, path, wait, stop) as waited:
            for number, handler in previous.items():
                signal.signal(number, handler)
            restored = True
            if stop.is_set():  # heard as the lock was had: nothing is done yet
                raise Stopped(f"stopped by {stop.by} while waiting for the lock", stop.by)
            yield time.monotonic() - began if waited else 0.0
    finally:
        if not restored:
            for number, handler in previous.items():
                signal.signal(number, handler)


def _who(path: Path, descriptor: int) -> str:
    """The process holding the lock, as /proc/locks says (else as the pid written in the file says)."""
    pid = holder(path)
    return f"pid {pid}" if pid is not None else _holder(descriptor)


def _open(database: Path, path: Path) -> int:
    """Given the database and its lock file, open (or make) the lock file and
    return its descriptor. What is there already must be a lock file (see
    _not_a_lock_file); a symbolic link is never followed. Anything else
    raises ConfigError, untouched (the pid is written into the file)."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ConfigError(f"{path}: the lock file is a symbolic link; maintctl does not follow one") from None
        raise ConfigError(f"{path}: cannot open the lock file ({error.strerror})") from None
    try:
        found = _not_a_lock_file(database, os.fstat(descriptor), lambda: os.pread(descriptor, 65, 0))
    except OSError as error:
        found = f"cannot be read ({error.strerror})"
    if found:
        os.close(descriptor)
        raise ConfigError(f"{path}: {found}, so it is not taken for the lock file (MAINTCTL_LOCK_FILE names it)")
    return descriptor


def problem(database: Path, path: Path) -> str | None:
    """Given the database and its lock file, return why a run would refuse
    the lock file (None where it would take it), for doctor; nothing is made."""
    try:
        status = path.lstat()
        if stat.S_ISLNK(status.st_mode):
            return "is a symbolic link; maintctl does not follow one"
        with open(path, "rb") if stat.S_ISREG(status.st_mode) else open(os.devnull, "rb") as file:
            return _not_a_lock_file(database, status, lambda: file.read(65))
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"cannot be read ({error.strerror})"


def _not_a_lock_file(database: Path, status: os.stat_result, content) -> str | None:
    """Given the database, the status of what is at the lock file's path and
    a callable that reads its first bytes, return why it is not a lock file:
    something other than a regular file holding nothing but a pid, or the
    database or one of SQLite's files beside it (None: it is one)."""
    if not stat.S_ISREG(status.st_mode):
        return "is not a regular file"
    if any(_same_file(status, candidate) for candidate in _sqlite_files(database)):
        return "is the database, or one of SQLite's files beside it"
    if status.st_size > 64 or not re.fullmatch(rb"[0-9]*\n?", content()):
        return "holds something other than a pid"
    return None


def _sqlite_files(database: Path) -> list[Path]:
    return [database, *(database.with_name(database.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]


def _same_file(status: os.stat_result, path: Path) -> bool:
    try:
        other = path.stat()
    except OSError:
        return False
    return (other.st_dev, other.st_ino) == (status.st_dev, status.st_ino)


def _busy(database: Path, holder_text: str) -> Busy:
    return Busy(f"another maintctl run ({holder_text}) holds the lock on {database}")


def check_free(database: Path, path: Path) -> None:
    """Given the database and its lock file, raise Busy where a run holds the
    lock (asking /proc/locks, so that a dry run takes no lock and creates no file)."""
    pid = holder(path)
    if pid is not None:
        raise _busy(database, f"pid {pid}")


def _holder(descriptor: int) -> str:
    text = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
    return f"pid {text}" if text.isdigit() else "pid unknown"


def holder(path: Path) -> int | None:
    """Given a lock file, return the pid of the process holding it, None
    where none does (read from /proc/locks, so that asking never takes the
    lock from a run that is about to start)."""
    return next((lock.pid for lock, _ in locks_on([path]) if lock.kind == "FLOCK" and not lock.waiting), None)
