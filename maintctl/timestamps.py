"""The one place that reads the clock, parses instants and formats them.

Everything maintctl writes is canonical: the text SQLite's
``strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`` writes, UTC with milliseconds.
Everything it reads is compared by the instant it names, in whatever form
SQLite's date functions accept (a space for the ``T``, no fraction, ``Z``, an
offset such as ``+05:30``); a value naming no instant is never acted on.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

CANONICAL_SQL_FORMAT = "%Y-%m-%dT%H:%M:%fZ"

# A text that starts like a date. Such values sort, as text, close to the
# instant they name; anything else (NULL, numbers, 'tomorrow') is "odd" and
# is looked at separately, through a small partial index that init-db makes.
DATE_FIRST_GLOB = "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'"

# SQLite accepts offsets up to +14:59, so a date-first text whose instant is
# at or before a cutoff sorts, as text, before the cutoff plus this margin.
LARGEST_OFFSET = timedelta(hours=15)

# The latest instant SQLite's date functions can name.
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


class NotAnInstant(ValueError):
    """A text that names no instant SQLite can read."""


# Canonical text that surely names a real instant (day 01-28, hour 00-23): the
# text is its own canonical form, so SQLite need not parse it.
_SURELY_CANONICAL = (
    "({c} GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]-[0-2][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9]Z'"
    " AND substr({c}, 6, 2) BETWEEN '01' AND '12' AND substr({c}, 9, 2) BETWEEN '01' AND '28'"
    " AND substr({c}, 12, 2) <= '23')"
)


def instant_sql(column: str) -> str:
    """Given a column, return SQL for the canonical UTC text of the instant it
    names, or NULL where it names none. Text already canonical (and surely
    valid) is taken as it is; anything else goes through strftime, whose
    '+0 seconds' makes SQLite normalise values such as Feb 30 or 24:00
    rather than echo them."""
    return (
        f"CASE WHEN {_SURELY_CANONICAL.format(c=column)} THEN {column}"
        f" ELSE strftime('{CANONICAL_SQL_FORMAT}', {column}, '+0 seconds') END"
    )


def odd_sql(column: str) -> str:
    """Given a column, return the SQL condition for values that do not start
    like a date. The same text is the WHERE of init-db's partial indexes, so
    that queries using it are answered from those (small) indexes."""
    return f"({column} IS NULL OR {column} NOT GLOB {DATE_FIRST_GLOB})"


def due_sql(select: str, where: str, column: str, condition: str, columns: str = "*") -> str:
    """Given `SELECT ... FROM ...` whose rows carry the column `instant`
    (see instant_sql), the filter that rows must pass and the timestamp
    column, return SQL for the `columns` of those rows whose instant meets
    `condition` (such as ``instant <= :cutoff``).

    The date-first values are found by an index range that ends at
    :scan_upper (the cutoff plus LARGEST_OFFSET), the odd ones by the partial
    index; both are then compared by the instant they name. The query is
    bound with :cutoff, :scan_upper and :limit (see due_bounds)."""
    return (
        f"SELECT {columns} FROM ("
        f"{select} WHERE {where} AND {column} < :scan_upper AND {column} GLOB {DATE_FIRST_GLOB}"
        f" UNION ALL "
        f"{select} WHERE {where} AND {odd_sql(column)}"
        f") WHERE {condition} LIMIT :limit"
    )


def due_bounds(cutoff: datetime, limit: int | None = None) -> dict[str, str | int]:
    """Given the cutoff instant and how many rows at most (None: all), return
    the parameters due_sql's queries need."""
    return {
        "cutoff": format_instant(cutoff),
        "scan_upper": format_instant(min(cutoff + LARGEST_OFFSET, LATEST)),
        "limit": -1 if limit is None else limit,
    }


def utc_now() -> datetime:
    """Return the current instant, to the millisecond."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def parse_instant(text: str) -> datetime:
    """Given a timestamp in any form SQLite's date functions read, return the
    instant it names (UTC, to the millisecond); raise NotAnInstant otherwise."""
    with sqlite3.connect(":memory:") as connection:
        (canonical,) = connection.execute(f"SELECT {instant_sql(':text')}", {"text": text}).fetchone()
    if canonical is None or text.strip().lower() == "now":
        raise NotAnInstant(f"{text!r} is not a timestamp")
    return from_canonical(canonical)


def from_canonical(text: str) -> datetime:
    """Given canonical text (as instant_sql returns it), return its instant."""
    return datetime.fromisoformat(text)


def format_instant(instant: datetime) -> str:
    """Given an instant, return its canonical text."""
    utc = instant.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
