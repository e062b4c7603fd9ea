"""When the next row of a due-row action comes due: what `run-all --for`
sleeps until.

The rows still to act on (reminders not fired, say) are read in three
parts, each from an index, so that the answer costs a few index seeks
however many rows wait and the app's writes can ask it again and again:
- tidy values (canonical UTC text, as maintctl and most apps write): sorted as
  text, they are sorted by instant, so the first one after now is one seek;
- untidy values that start like a date (a space for the T, an offset, no
  fraction): an offset moves an instant by at most LARGEST_OFFSET from its
  text, so only those whose text lies within that margin of now and of the
  tidy answer can come first; init-db gives them a partial index of their own;
- odd values (not date-first: numbers, 'tomorrow'), by the partial index the
  action has for them already.
A value that names no instant is never due, and is not waited for.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from maintctl import timestamps

# Canonical text, as a GLOB: its instant is the text itself (an impossible
# date such as Feb 30 sorts where its text does; the pass reports it).
_TIDY_GLOB = "'[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9]Z'"


_MARGIN_MS = timestamps.LARGEST_OFFSET // timedelta(milliseconds=1)


@dataclass(frozen=True)
class Outlook:
    """What an action has to do: from when next (None: nothing it knows of), and how much is due now."""

    next: datetime | None
    due: int = 0


def _sane(column: str) -> str:
    """The condition that canonical text has a month, day and hour that can be: a value such as hour 25 names
    no instant, and must not stand first in the seek for those after it."""
    return (
        f"substr({column}, 6, 2) BETWEEN '01' AND '12' AND substr({column}, 9, 2) BETWEEN '01' AND '31'"
        f" AND substr({column}, 12, 2) <= '23'"
    )


def untidy_sql(column: str) -> str:
    """Given a column, return the condition for values that start like a
    date but are not canonical (the WHERE of init-db's partial index)."""
    return f"({column} GLOB {timestamps.DATE_FIRST_GLOB} AND {column} NOT GLOB {_TIDY_GLOB})"


@dataclass(frozen=True)
class Upcoming:
    """A due-row action's rows still to act on: `table` filtered by `where`
    (on `key`, the index's first column), due at `column` plus an age."""

    table: str
    key: str
    where: str
    column: str

    @property
    def index_sql(self) -> str:
        """The partial index of the untidy values, made by init-db."""
        return (
            f"CREATE INDEX IF NOT EXISTS maintctl_{self.table}_untidy_{self.column}"
            f" ON {self.table} ({self.key}, {self.column}) WHERE {untidy_sql(self.column)}"
        )

    def outlook(self, connection: sqlite3.Connection, now: datetime, age: timedelta = timedelta(0)) -> Outlook:
        """Return how many rows are due now (their value plus `age` at or
        before now: the rows a pass left, and any the app has written since
        that were due as it wrote them), and the first instant after now at
        which another comes due."""
        return Outlook(self._next_due(connection, now, age), self._due_count(connection, now, age))

    def _due_count(self, connection: sqlite3.Connection, now: datetime, age: timedelta) -> int:
        cutoff = timestamps.format_instant(timestamps.shift(now, -age))
        instant = timestamps.instant_sql(self.column)
        (tidy,) = connection.execute(
            f"SELECT count(*) FROM {self.table} WHERE {self.where} AND {self.column} <= ?"
            f" AND {self.column} GLOB {_TIDY_GLOB}",
            (cutoff,),
        ).fetchone()
        high = timestamps.text_of_ms(timestamps.ms_of_text(cutoff) + _MARGIN_MS) or "9999-12-31"
        (untidy,) = connection.execute(
            f"SELECT count(*) FROM (SELECT {instant} AS instant FROM {self.table}"
            f" WHERE {self.where} AND {untidy_sql(self.column)} AND {self.column} < ?) WHERE instant <= ?",
            (high[:10] + "TU", cutoff),
        ).fetchone()
        (odd,) = connection.execute(
            f"SELECT count(*) FROM (SELECT {instant} AS instant FROM {self.table}"
            f" WHERE {self.where} AND {timestamps.odd_sql(self.column)}) WHERE instant <= ?",
            (cutoff,),
        ).fetchone()
        return tidy + untidy + odd

    def _next_due(self, connection: sqlite3.Connection, now: datetime, age: timedelta) -> datetime | None:
        after = timestamps.format_instant(timestamps.shift(now, -age))
        instant = timestamps.instant_sql(self.column)
        tidy = connection.execute(
            f"SELECT {instant} FROM {self.table} WHERE {self.where} AND {self.column} > ?"
            f" AND {self.column} GLOB {_TIDY_GLOB} AND {_sane(self.column)} ORDER BY {self.column} LIMIT 1",
            (after,),
        ).fetchone()
        first = tidy[0] if tidy else None
        # From the start of the day the margin begins on: '2026-11-26 15:00' (a space for the T) sorts before
        # every canonical time of its day.
        low = (timestamps.text_of_ms(timestamps.ms_of_text(after) - _MARGIN_MS) or "")[:10]
        high = (timestamps.text_of_ms(timestamps.ms_of_text(first) + _MARGIN_MS) if first else None) or "9999-12-31"
        (untidy,) = connection.execute(
            f"SELECT min(instant) FROM (SELECT {instant} AS instant FROM {self.table}"
            f" WHERE {self.where} AND {untidy_sql(self.column)} AND {self.column} > ? AND {self.column} < ?)"
            " WHERE instant > ?",
            (low, high[:10] + "TU", after),  # to the end of the day of `high`, its doubled-T forms too
        ).fetchone()
        (odd,) = connection.execute(
            f"SELECT min(instant) FROM (SELECT {instant} AS instant FROM {self.table}"
            f" WHERE {self.where} AND {timestamps.odd_sql(self.column)}) WHERE instant > ?",
            (after,),
        ).fetchone()
        found = [text for text in (first, untidy, odd) if text and text > after]
        if not found:
            return None
        return timestamps.shift(timestamps.from_canonical(min(found)), age)
