"""What the actions on due rows of the app's tables share (fire-reminders,
expire-pending, expire-tags, requeue-events): their rows described once as
DueRows, from which come the query of the rows an action can act on now,
their count, when the next comes due, the warnings that name those it
cannot act on, and its Batched; the guarded claim of planned rows; and the
app's text made safe to send."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from maintctl import json_text, timestamps, utf8
from maintctl.actions.base.batches import Batched
from maintctl.actions.base.upcoming import Outlook, Upcoming
from maintctl.config.settings import Settings
from maintctl.store import references

# Problems are listed up to this many per action and run; the rest are counted.
PROBLEMS_LISTED = 100

Planned = TypeVar("Planned")


@dataclass(frozen=True, kw_only=True)
class DueRows:
    """The rows a due-row action acts on, as data: where they are, what makes
    one the action's, the timestamp it is due at (plus an age), the key that
    identifies it, what may hold it, and how a warning names one left."""

    source: str  # `FROM table AS alias`, and what it joins
    where: str  # the filter the action's rows pass
    column: str  # their timestamp column, as `alias.column`
    keys: tuple[str, ...]  # the columns that identify a row, as `alias.column`
    read: str | Callable[[sqlite3.Connection], str]  # the columns a plan reads (`instant` follows), or by shape
    returned: str = "*"  # what the query returns of those columns
    upcoming: Upcoming  # the rows still to act on, for when the next comes due
    age: Callable[[Settings], timedelta] | None = None  # how old a row must be to be due (None: at its instant)
    held_in: tuple[str, str] | None = None  # (table, alias) whose rows another table's foreign key may hold
    named: Callable[..., str] | None = None  # given a left row's key values, how a warning names the row
    left_as: str = ""  # what a warning says of a row left ("not expired")

    def query(self, connection: sqlite3.Connection) -> str:
        """Given the database, return the query of the rows the action can
        act on now (for the shape of the app's tables in it): due, keyed by
        clean text, held by nothing."""
        read = self.read(connection) if callable(self.read) else self.read
        select = f"SELECT {read}, {timestamps.instant_sql(self.column)} AS instant {self.source}"
        return _doable_sql(select, self.where, self.column, self.keys, self._held(connection), self.returned)

    def bounds(self, settings: Settings, limit: int | None) -> dict[str, str | int]:
        """Given the run's settings and how many rows at most (None: all), return the query's parameters."""
        return timestamps.due_bounds(settings.now, limit, self._age(settings))

    def rows(self, connection: sqlite3.Connection, settings: Settings, limit: int | None) -> sqlite3.Cursor:
        """Return the cursor of up to `limit` rows the action can act on now."""
        return connection.execute(self.query(connection), self.bounds(settings, limit))

    def count(self, connection: sqlite3.Connection, settings: Settings) -> int:
        """Return how many rows are due now that the action can act on."""
        query = f"SELECT count(*) FROM ({self.query(connection)})"
        return connection.execute(query, self.bounds(settings, None)).fetchone()[0]

    def outlook(self, connection: sqlite3.Connection, settings: Settings) -> Outlook:
        """Return how many rows are due now, and when the next comes due."""
        return self.upcoming.outlook(connection, settings.now, self._age(settings))

    def problems(self, connection: sqlite3.Connection, settings: Settings) -> list[str]:
        """Return why the due rows that cannot be acted on are left (a
        timestamp that names no instant, a key that is not clean text, what
        holds them), up to PROBLEMS_LISTED."""
        column, keys, found = _bare(self.column), " or ".join(map(_bare, self.keys)), []
        left = _left_sql(self.source, self.where, self.column, self.keys, self._held(connection))
        for *key, value, key_problem, held_by, instant in connection.execute(
            left, self.bounds(settings, PROBLEMS_LISTED)
        ):
            found.append(
                f"{self.named(*key)}: {_why_left(column, value, instant, keys, key_problem, held_by)}; {self.left_as}"
            )
        return found

    def batched(self, *, index_sql: tuple[str, ...] = (), **declared: Any) -> Batched:
        """Given the rest of the action's declaration (plan, apply, tally, and
        what else it has), return its Batched: these rows count what is due,
        say when the next comes due (with the index that asks it) and, unless
        it names its own problems, name those left."""
        declared.setdefault("problems", self.problems)
        return Batched(
            index_sql=(*index_sql, self.upcoming.index_sql), count_due=self.count, outlook=self.outlook, **declared
        )

    def _age(self, settings: Settings) -> timedelta:
        return self.age(settings) if self.age else timedelta(0)

    def _held(self, connection: sqlite3.Connection) -> str | None:
        return references.held_sql(connection, *self.held_in) if self.held_in else None


def claimed(
    connection: sqlite3.Connection,
    claim: str,
    planned: Sequence[Planned],
    key: Callable[[Planned], Sequence],
    **parameters: Any,
) -> list[Planned]:
    """Given a guarded UPDATE or DELETE of planned rows (their keys bound as
    :keys, see keys_sql) RETURNING the first value of each key it changed,
    the planned items, how an item's key is read and the claim's other
    parameters, return the items it changed, in order (the rest another
    process changed meanwhile)."""
    keys = [key(item) for item in planned]
    changed = {first for (first,) in connection.execute(claim, {"keys": keys_json(keys), **parameters}).fetchall()}
    return [item for item, item_key in zip(planned, keys, strict=True) if item_key[0] in changed]


def _bare(column: str) -> str:
    """Given `alias.column`, return the column's name, as a warning says it."""
    return column.rpartition(".")[2]


def keys_json(keys: Iterable[Sequence]) -> str:
    """Given the key tuples of planned rows, return them as the JSON that
    keys_sql reads back (bound as :keys)."""
    return json_text.encode([list(key) for key in keys])


def keys_sql(width: int, skip: int = 0) -> str:
    """Given how many values each key tuple has (and how many at its start
    to pass over), return a SELECT of those columns from the JSON bound as
    :keys, for `(id, +seen) IN (...)` guards.
    (The unary + on the guarded columns keeps SQLite on the primary key: an
    index on (fired, fire_at) would otherwise be searched once per key, and a
    backlog that shares one fire_at would make a batch quadratic.)"""
    columns = ", ".join(f"json_extract(value, '$[{index}]')" for index in range(skip, width))
    return f"SELECT {columns} FROM json_each(:keys)"


def text_sql(column: str) -> str:
    """Given a column of the app's, return SQL for its value as JSON can hold
    it: bytes (a BLOB where text belongs) become text (see app_text), so
    that one such row never stops the pass."""
    return f"CASE WHEN typeof({column}) = 'blob' THEN CAST({column} AS TEXT) ELSE {column} END"


def _key_text_sql(*columns: str) -> str:
    """Given the columns that identify a row, return the SQL condition that
    each holds clean text (see utf8.clean_sql): a row keyed by NULL, bytes,
    text that is not UTF-8 or text with a NUL cannot be read or claimed by
    the guarded statements, so it is reported rather than planned again and again."""
    return " AND ".join(utf8.clean_sql(column) for column in columns)


def _doable_sql(
    select: str, where: str, column: str, keys: Sequence[str], held: str | None = None, columns: str = "*"
) -> str:
    """Given `SELECT ... FROM ...` of an action's rows (carrying `instant`,
    see timestamps.due_sql), the filter they must pass, their timestamp
    column, their key columns and SQL for what holds a row
    (references.held_sql; None where nothing can), return SQL for the
    `columns` of the due rows it can act on: keyed by clean text, held by nothing."""
    free = f" AND ({held}) IS NULL" if held else ""
    return timestamps.due_sql(
        select, f"{where} AND {_key_text_sql(*keys)}{free}", column, "instant <= :cutoff", columns
    )


def _left_sql(source: str, where: str, column: str, keys: Sequence[str], held: str | None = None) -> str:
    """Given `FROM ...` of an action's rows, the filter they must pass, their
    timestamp column, their key columns and SQL for what holds a row
    (references.held_sql; None where nothing can), return SQL for the due
    rows that cannot be acted on: their keys and timestamp as Python can read
    them, then key_problem, held_by and instant, as why_left takes them."""
    readable = ", ".join(utf8.readable_sql(read) for read in (*keys, column))
    return timestamps.due_sql(
        f"SELECT {readable}, {utf8.unclean_sql(*keys)} AS key_problem, {held or 'NULL'} AS held_by,"
        f" {timestamps.instant_sql(column)} AS instant {source}",
        where,
        column,
        "instant IS NULL OR (instant <= :cutoff AND (key_problem IS NOT NULL OR held_by IS NOT NULL))",
    )


def _why_left(column: str, value, instant: str | None, keys: str, key_problem: str | None, held_by: str | None) -> str:
    """Given a due row that cannot be acted on (its timestamp column and
    value, the instant that names, how its key columns are named, and what
    utf8.unclean_sql and references.held_sql say of it), return why, as a
    warning says it."""
    if instant is None:
        return f"{column} {value!r} names no instant"
    if key_problem:
        return f"its {keys} {key_problem}"
    return f"{held_by} still refers to it"


def key_text(key) -> str:
    """Given a row's key read from the app's tables (through
    utf8.readable_sql), return it as a warning shows it: text as it is,
    anything else (NULL, bytes, and so text that is not clean) as SQL would
    write it."""
    if isinstance(key, str):
        return key
    return "NULL" if key is None else f"X'{key.hex()}'" if isinstance(key, bytes) else repr(key)


def app_text(raw: bytes | None) -> tuple[str | None, bool]:
    """Given a text column of the app's read as bytes (CAST(... AS BLOB)),
    return it as text, and whether it held bytes that are not UTF-8 (those
    become U+FFFD: JSON cannot carry them, and one such row must not stop the
    pass)."""
    if raw is None:
        return None, False
    try:
        return raw.decode(), False
    except UnicodeDecodeError:
        return raw.decode(errors="replace"), True
