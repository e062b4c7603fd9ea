"""The housekeeping actions, one module per command, each of the same shape:

- NAME: the command (its help is in SUMMARIES here, so that --help imports no action);
- REQUIRES: {table: columns} it reads or writes, checked before it runs;
- INDEXES: the indexes its queries need, made by init-db; optionally
  shaped_indexes(connection) -> more that fit only some shapes of the app's
  tables (see indexes below);
- COUNTS: the counts it always reports; NOTIFIES: whether it queues
  notifications; OWN_TABLES: maintctl's tables it writes, made when needed;
- plan(connection, settings, limit) -> items: read-only, decides everything;
- apply(connection, items, settings) -> items: makes exactly those changes,
  inside the caller's transaction, each guarded so that a second or
  concurrent run changes nothing; returns the items it changed;
- tally(items) -> counts; problems(connection, settings) -> warnings about
  rows that are due but cannot be acted on;
- optionally after_commit(connection, settings) -> (counts, warnings): the
  side effects outside the database, done once the changes have committed;
- count_due(connection, settings) -> how many items are due now (for status);
- optionally notes(connection, settings) -> what the run says beside its
  counts, asked after the work.

backup is the one that does not work in batches: it has perform(connection,
settings) -> steps instead of plan and apply.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from types import ModuleType

from maintctl import json_text, timestamps, utf8

SUMMARIES = {
    "fire-reminders": "Fire the reminders that are due and notify their owners.",
    "expire-pending": "Expire pending uploads past their deadline and delete their media files.",
    "expire-tags": "Delete suggested tags nobody confirmed in time (MAINTCTL_TAG_EXPIRY, default 7d).",
    "requeue-events": "Re-prompt users about pending events they never answered (MAINTCTL_REPROMPT_AFTER, default 24h).",
    "prune": "Drop maintctl's run history older than 90 days and delivered notifications older than 7 days.",
    "backup": "Take a consistent, checked copy of the database; keep the newest --keep (default 7).",
}
ORDER = tuple(SUMMARIES)  # the order run-all runs them in
HOUSEKEEPING = ORDER[:4]  # run-all runs these every time by default; backup and prune daily

# Problems are listed up to this many per action and run; the rest are counted.
PROBLEMS_LISTED = 100


def load(name: str) -> ModuleType:
    """Given a command name, return its action module."""
    return importlib.import_module(f"maintctl.actions.{name.replace('-', '_')}")


def indexes(action: ModuleType, connection) -> tuple[str, ...]:
    """Given an action module and the database, return the CREATE INDEX
    statements init-db makes for it."""
    shaped = action.shaped_indexes(connection) if hasattr(action, "shaped_indexes") else ()
    return (*action.INDEXES, *shaped)


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


def key_text_sql(*columns: str) -> str:
    """Given the columns that identify a row, return the SQL condition that
    each holds clean text (see utf8.clean_sql): a row keyed by NULL, bytes,
    text that is not UTF-8 or text with a NUL cannot be read or claimed by
    the guarded statements, so it is reported rather than planned again and again."""
    return " AND ".join(utf8.clean_sql(column) for column in columns)


def doable_sql(
    select: str, where: str, column: str, keys: Sequence[str], held: str | None = None, columns: str = "*"
) -> str:
    """Given `SELECT ... FROM ...` of an action's rows (carrying `instant`,
    see timestamps.due_sql), the filter they must pass, their timestamp
    column, their key columns and SQL for what holds a row
    (references.held_sql; None where nothing can), return SQL for the
    `columns` of the due rows it can act on: keyed by clean text, held by nothing."""
    free = f" AND ({held}) IS NULL" if held else ""
    return timestamps.due_sql(select, f"{where} AND {key_text_sql(*keys)}{free}", column, "instant <= :cutoff", columns)


def left_sql(source: str, where: str, column: str, keys: Sequence[str], held: str | None = None) -> str:
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


def why_left(column: str, value, instant: str | None, keys: str, key_problem: str | None, held_by: str | None) -> str:
    """Given a due row that cannot be acted on (its timestamp column and
    value, the instant that names, how its key columns are named, and what
    utf8.unclean_sql and references.held_sql say of it), return why, as a
    warning says it."""
    if instant is None:
        return f"{column} {value!r} names no instant"
    if key_problem:
        return f"its {keys} {key_problem}"
    return f"{held_by} still refers to it"


def shown(key) -> str:
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
