"""Opening the database (read-only for dry runs), schema checks, transactions."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from maintctl.config.settings import ConfigError

# How long one statement may wait for a lock. Waiting for the write lock is
# done in steps of this in `transaction`, so that a stop request is heard
# between them (SQLite's own busy wait cannot be interrupted).
STEP_WAIT = 0.5


class ActionError(Exception):
    """An action could not do its work; the message says why, whole."""


class PartlyDone(ActionError):
    """An action did part of its work and could not do the rest: `done` holds
    the items done (in a dry run, planned), the message what failed and why."""

    def __init__(self, message: str, done: list):
        super().__init__(message)
        self.done = done


class SchemaError(ActionError):
    """A table or column an action needs is missing; the message names it."""


class Stopped(Exception):
    """The run was asked to stop (SIGTERM, or SIGINT: Ctrl-C) before this work began."""

    def __init__(self, message: str, signal_name: str = "SIGTERM"):
        super().__init__(message)
        self.signal_name = signal_name


class Replaced(Stopped):
    """The database's path names another file now (a restore, a deploy): nothing more is written to this one."""

    def __init__(self):
        super().__init__("the database was replaced (its path names another file): nothing more was written to it")


class Stop(threading.Event):
    """Set when the run is asked to stop; `by` names the signal that asked."""

    by = "SIGTERM"


class Locked(Exception):
    """Another process held the database's lock past the busy timeout, so
    that this run could not even read it: a failure of this run, which the
    next one retries (not a configuration error)."""


class Connection(sqlite3.Connection):
    """A connection that waits for other processes' locks for up to
    busy_timeout, in steps (SQLite's own wait cannot be interrupted), and
    knows what tells it to stop waiting and starting new work."""

    busy_timeout: float = 30.0
    stop: Stop = Stop()
    heed_stop: bool = True  # False while the run's own record is written as it stops
    moved: Callable[[], bool] | None = None  # whether the path names another file now (a window's: followed.py)

    def may_go_on(self) -> bool:
        """Return True, or raise Stopped where the run has been asked to stop
        (so that a loop can read `while connection.may_go_on() and ...`)."""
        if self.heed_stop and self.stop.is_set():
            raise Stopped(f"stopped by {self.stop.by}", self.stop.by)
        return True

    def execute(self, sql: str, parameters=(), /) -> sqlite3.Cursor:
        return self._while_busy(super().execute, sql, parameters)

    def executemany(self, sql: str, parameters, /) -> sqlite3.Cursor:
        return self._while_busy(super().executemany, sql, parameters)

    def _while_busy(self, run, sql, parameters) -> sqlite3.Cursor:
        """Run the statement, trying again while another process holds the
        lock it needs (a statement refused as busy did nothing; a COMMIT
        refused leaves its transaction open, to try again), for up to
        busy_timeout; raise Stopped where the run is asked to stop meanwhile."""
        deadline = None
        while True:
            try:
                return run(sql, parameters)
            except sqlite3.OperationalError as error:
                if getattr(error, "sqlite_errorname", "") == "SQLITE_READONLY_DBMOVED":
                    raise Replaced from None  # SQLite writes no file that has moved (rollback journal mode)
                if "locked" not in str(error) and "busy" not in str(error):
                    raise
                deadline = deadline or time.monotonic() + self.busy_timeout - STEP_WAIT
                if time.monotonic() >= deadline:
                    raise sqlite3.OperationalError(
                        f"database is locked: another process held its lock for {self.busy_timeout:g} s"
                        " (MAINTCTL_BUSY_TIMEOUT)"
                    ) from None
                self.may_go_on()


def open_database(
    path: Path,
    *,
    read_only: bool,
    busy_timeout: float,
    stop: Stop | None = None,
    new: bool = False,
    create_nothing: bool = False,
) -> Connection:
    """Given the database path, return a connection in autocommit mode (each
    change is made inside an explicit `transaction`). A path that does not
    exist is never created; one that is not a SQLite database, or is empty
    (no tables: not the app's database; `new` allows that, for init-db), is
    left as it was. All raise ConfigError; Locked where the app held the
    database's lock past the busy timeout. With `create_nothing` (a dry
    run), a database that SQLite could read only by making a file beside it
    is refused (ConfigError)."""
    try:
        status = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such database (maintctl init-db --db {path} creates one)") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be used as the database ({error.strerror})") from None
    if not stat.S_ISREG(status.st_mode):
        raise ConfigError(f"{path}: not a file")
    if not new and status.st_size == 0 and not _has_content(_beside(path, "-wal")):
        raise ConfigError(f"{path}: an empty file, not the app's database (maintctl init-db --db {path} makes one)")
    if not read_only and not os.access(path, os.W_OK):
        raise ConfigError(f"{path}: read-only: maintctl needs to write it (--dry-run only reads)")
    if not read_only and not os.access(path.parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{path.parent}: not writable: SQLite writes its journal beside the database")
    if create_nothing and _wal_mode(path) and _beside(path, "-wal").exists() and not _beside(path, "-shm").exists():
        raise ConfigError(
            f"{path}: has a -wal file but no -shm (the app stopped without closing it); SQLite would make"
            " the -shm to read it, and a dry run makes no file: open it once (a real run, or sqlite3), then try again"
        )
    try:
        connection = sqlite3.connect(
            _uri(path, read_only),
            uri=True,
            isolation_level=None,
            timeout=min(STEP_WAIT, busy_timeout),
            factory=Connection,
        )
    except sqlite3.Error as error:
        raise ConfigError(f"{path}: cannot be opened ({error})") from None
    connection.busy_timeout = busy_timeout
    connection.stop = stop or Stop()
    try:
        (tables,) = connection.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        if not read_only:
            connection.execute("PRAGMA foreign_keys = ON")  # a memory's tags and reminders go with it
    except sqlite3.DatabaseError as error:
        connection.close()
        if "not a database" in str(error) or "encrypted" in str(error):
            raise ConfigError(f"{path}: not a SQLite database") from None
        if "locked" in str(error) or "busy" in str(error):
            raise Locked(f"{path}: {error}; this run did nothing, the next one tries again") from None
        if read_only and "readonly" in str(error) and _has_content(_beside(path, "-journal")):
            raise ConfigError(
                f"{path}: has a hot journal (a transaction the app did not finish), which SQLite must roll back"
                " before the file can be read, and reading only it does not: a real run, or sqlite3, opens it once"
            ) from None
        raise ConfigError(f"{path}: cannot be read ({error})") from None
    if not tables and not new:
        connection.close()
        raise ConfigError(f"{path}: a database with no tables, not the app's (maintctl init-db --db {path} makes them)")
    if not new and not _has_an_app_table(connection):
        connection.close()
        raise ConfigError(
            f"{path}: a database with none of the app's tables ({', '.join(APP_TABLE_NAMES)}): not the app's"
        )
    return connection


# The Core app's tables (the contract's): a database with none of them is another application's.
APP_TABLE_NAMES = ("users", "memories", "memory_tags", "reminders", "events", "audit_log")


def _has_an_app_table(connection: sqlite3.Connection) -> bool:
    marks = ", ".join("?" * len(APP_TABLE_NAMES))
    query = f"SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name IN ({marks}) LIMIT 1"
    return connection.execute(query, APP_TABLE_NAMES).fetchone() is not None


def _beside(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _uri(path: Path, read_only: bool) -> str:
    """Given the database path, return the URI to open it with. Read-only, a
    WAL database that nobody has open (no -wal file) is opened immutable:
    SQLite then creates no -wal and -shm beside it, which a directory that
    may not be written would refuse and a dry run must not leave behind. (A
    WAL database in use is read through the app's own -wal and -shm.)"""
    uri = f"{path.resolve().as_uri()}?mode={'ro' if read_only else 'rw'}"
    if read_only and _wal_mode(path) and not _beside(path, "-wal").exists():
        uri += "&immutable=1"
    return uri


def _wal_mode(path: Path) -> bool:
    """Return whether the file's header says it is a WAL database (bytes 18 and 19 are 2)."""
    try:
        with open(path, "rb") as file:
            header = file.read(20)
    except OSError:
        return False
    return header[:16] == b"SQLite format 3\x00" and header[18:20] == b"\x02\x02"


def create_database(path: Path) -> Connection:
    """Given a path, return a connection to the database there, creating the
    file if it is missing (init-db only)."""
    try:
        exists, directory = path.exists(), path.parent.is_dir()
    except OSError as error:
        raise ConfigError(f"{path}: cannot be used as the database ({error.strerror})") from None
    if exists and not path.is_file():
        raise ConfigError(f"{path}: not a file")
    if not directory:
        raise ConfigError(f"{path.parent}: no such directory")
    if not exists:
        try:
            sqlite3.connect(path).close()
        except sqlite3.Error as error:
            raise ConfigError(f"{path}: cannot be created ({error})") from None
    return open_database(path, read_only=False, busy_timeout=30.0, new=True)


@contextmanager
def transaction(connection: Connection, heed_stop: bool = True) -> Iterator[Connection]:
    """Run the block in one write transaction: all of it is committed, or on
    any exception none of it. Beginning and committing each wait up to the
    connection's busy_timeout for other processes' locks; a stop request
    while waiting raises Stopped, with nothing of the block committed (unless
    heed_stop is False: the run's own record is written even as it stops);
    so does (Replaced) a path that names another file than the one open."""
    connection.heed_stop = heed_stop
    try:
        connection.may_go_on()
        if heed_stop and connection.moved is not None and connection.moved():
            raise Replaced  # in WAL mode SQLite would still write it, through its -wal beside the new file
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
    finally:
        connection.heed_stop = True


def columns_of(connection: sqlite3.Connection, table: str) -> list[str]:
    """Given a table name, return its column names ([] where it is missing)."""
    return [name for (name,) in connection.execute("SELECT name FROM pragma_table_info(?)", (table,))]


def table_exists(connection: sqlite3.Connection, table: str) -> bool:
    return connection.execute("SELECT 1 FROM sqlite_schema WHERE name = ?", (table,)).fetchone() is not None


def integrity_problems(connection: sqlite3.Connection) -> list[str]:
    """Given a connection, return what PRAGMA integrity_check finds, each on
    one line ([] where the database is whole)."""
    verdict = [" ".join(row[0].split()) for row in connection.execute("PRAGMA integrity_check")]
    return [] if verdict == ["ok"] else verdict


def check_schema(connection: sqlite3.Connection, required: Mapping[str, Sequence[str]]) -> None:
    """Given {table: columns} that an action reads or writes, raise
    SchemaError naming the first table or column that is missing."""
    for table, needed in required.items():
        present = columns_of(connection, table)
        if not present:
            raise SchemaError(f"table {table} is missing")
        for column in needed:
            if column not in present:
                raise SchemaError(f"table {table} has no column {column}")
