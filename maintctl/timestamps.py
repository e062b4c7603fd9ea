"""The one place that reads the clock, parses instants and formats them.

Everything maintctl writes is canonical: the text SQLite's
``strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`` writes, UTC with milliseconds.
Everything it reads is compared by the instant it names, in whatever form
SQLite's date functions accept (a space for the ``T``, no fraction, ``Z``, an
offset such as ``+05:30``); a value naming no instant is never acted on.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta

CANONICAL_SQL_FORMAT = "%Y-%m-%dT%H:%M:%fZ"

# A text that starts like a date. Such values sort, as text, close to the
# instant they name; anything else (NULL, numbers, 'tomorrow') is "odd" and
# is looked at separately, through a small partial index that init-db makes.
DATE_FIRST_GLOB = "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'"

# SQLite accepts offsets up to +14:59, so a date-first text whose instant is
# at or before a cutoff sorts, as text, before the cutoff plus this margin...
LARGEST_OFFSET = timedelta(hours=15)
# ...but for one form: SQLite reads any run of spaces and 'T's between the date
# and the time, so '2026-11-27TT00:10' names 00:10 on the 27th yet sorts after
# every canonical time of that day. Those of the day the margin ends on are read by
# an index range of their own (those of earlier days sort before its end
# anyway, and those of later days name instants after the cutoff).

# The instants SQLite's date functions name run from year 0 to year 9999;
# Python's datetime begins at year 1, so arithmetic on instants is done in
# milliseconds since the Unix epoch (see epoch_ms), where year 0 is no harder.
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
_YEAR_ZERO_DAY = 1721059.5  # 0000-01-01T00:00 as a Julian day number
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)  # the earliest a datetime can hold
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The longest duration any setting may be: past it, instants leave the years a
# timestamp can name and timers overflow the platform's.
LONGEST = timedelta(days=36525)
LONGEST_TEXT = "100 years (36525d)"
_FOUR_CENTURIES_MS = 146_097 * 86_400_000  # the Gregorian calendar repeats every 400 years
_YEAR_ZERO_MS = (EARLIEST - _EPOCH) // timedelta(milliseconds=1) - 366 * 86_400_000  # 0000-01-01, a leap year
_LATEST_MS = (LATEST - _EPOCH) // timedelta(milliseconds=1)


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
    rather than echo them. Named no instant, and so never acted on: 'now'
    (SQLite reads it as the moment of the query), bytes, text holding a NUL
    character (SQLite's date functions read only what comes before it, and
    the guarded statements could not be given it), and what falls outside
    years 0 to 9999 (a Julian day number of 0 is in 4714 BC)."""
    normalised = f"strftime('{CANONICAL_SQL_FORMAT}', {column}, '+0 seconds')"
    return (
        f"CASE WHEN instr({column}, char(0)) THEN NULL"
        f" WHEN {_SURELY_CANONICAL.format(c=column)} THEN {column}"
        f" WHEN {column} LIKE 'now' OR typeof({column}) = 'blob' THEN NULL"
        f" WHEN {normalised} GLOB '[0-9][0-9][0-9][0-9]-*' THEN {normalised} END"
    )


def at_or_before_sql(column: str) -> str:
    """Given a column, return the SQL condition that it names an instant (as
    instant_sql reads it: not 'now', not bytes, no NUL, years 0 to 9999) at
    or before :cutoff_day, a Julian day number (see cutoff_day). Cheaper than
    instant_sql where a row is only to be kept or not and no index range can
    be used: a table read from its start, as retention reads one."""
    return (
        f"(typeof({column}) = 'text' AND instr({column}, char(0)) = 0 AND {column} NOT LIKE 'now'"
        f" AND julianday({column}, '+0 seconds') BETWEEN {_YEAR_ZERO_DAY} AND :cutoff_day)"
    )


def cutoff_day(now: datetime, age: timedelta) -> float:
    """Given now and an age, return the Julian day number of now less the age, for at_or_before_sql."""
    return _YEAR_ZERO_DAY + (epoch_ms(now) - age // timedelta(milliseconds=1) - _YEAR_ZERO_MS) / 86_400_000


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
    :scan_upper (the cutoff plus LARGEST_OFFSET) and one over those with a
    doubled T on the day it ends on, the odd ones by the partial index, and
    bytes (which sort after all text, and name no instant) by an index range
    of their own; all are then compared by the instant they name. The query
    is bound with :cutoff, :scan_upper, :doubled_t_from, :doubled_t_to and
    :limit (see due_bounds)."""
    date_first = f"{column} GLOB {DATE_FIRST_GLOB}"
    return (
        f"SELECT {columns} FROM ("
        f"{select} WHERE {where} AND {column} < :scan_upper AND {date_first}"
        f" UNION ALL "
        f"{select} WHERE {where} AND {column} >= :doubled_t_from AND {column} < :doubled_t_to AND {date_first}"
        f" UNION ALL "
        f"{select} WHERE {where} AND {odd_sql(column)}"
        f" UNION ALL "
        f"{select} WHERE {where} AND {column} >= X'' AND {date_first}"
        f") WHERE {condition} LIMIT :limit"
    )


def due_bounds(now: datetime, limit: int | None = None, age: timedelta = timedelta(0)) -> dict[str, str | int]:
    """Given now, how many rows at most (None: all) and how old a row must be
    to be due (its instant at or before now - age), return the parameters
    due_sql's queries need. A cutoff before year 0 makes nothing due; a scan
    bound past year 9999 takes in every date-first text."""
    cutoff_ms = epoch_ms(now) - age // timedelta(milliseconds=1)
    cutoff = text_of_ms(cutoff_ms) or ("" if cutoff_ms < _YEAR_ZERO_MS else format_instant(LATEST))
    scan_upper = text_of_ms(cutoff_ms + LARGEST_OFFSET // timedelta(milliseconds=1)) if cutoff else ""
    day = scan_upper[:10] if scan_upper else ""  # none where the scan takes in every date-first text, or none
    return {
        "cutoff": cutoff,
        "scan_upper": scan_upper if scan_upper is not None else ":",
        "doubled_t_from": f"{day}TT" if day else "",  # the texts that start with the day and 'TT'
        "doubled_t_to": f"{day}TU" if day else "",
        "limit": _limit(limit),
    }


def _limit(limit: int | None) -> int:
    """Given a row limit (None: all), return it as SQLite's LIMIT takes it (-1: all)."""
    return -1 if limit is None or limit >= 2**63 else limit


def shift(instant: datetime, delta: timedelta) -> datetime:
    """Given an instant and a (possibly negative) duration, return the instant
    that far from it, held within what a datetime can name."""
    try:
        return min(max(instant + delta, EARLIEST), LATEST)
    except OverflowError:
        return LATEST if delta > timedelta(0) else EARLIEST


def epoch_ms(instant: datetime) -> int:
    """Given an instant, return it in milliseconds since the Unix epoch."""
    return (instant - _EPOCH) // timedelta(milliseconds=1)


def ms_of_text(canonical: str) -> int:
    """Given canonical text (as instant_sql returns it, year 0 included),
    return its instant in milliseconds since the Unix epoch."""
    if canonical.startswith("0000-"):  # four centuries on, then back: year 0 has the calendar of year 400
        return epoch_ms(datetime.fromisoformat("0400" + canonical[4:])) - _FOUR_CENTURIES_MS
    return epoch_ms(datetime.fromisoformat(canonical))


def text_of_ms(milliseconds: int) -> str | None:
    """Given milliseconds since the Unix epoch, return the canonical text of
    that instant; None where it lies outside years 0 to 9999."""
    if not _YEAR_ZERO_MS <= milliseconds <= _LATEST_MS:
        return None
    if milliseconds >= epoch_ms(EARLIEST):
        return format_instant(_EPOCH + timedelta(milliseconds=milliseconds))
    return "0000" + format_instant(_EPOCH + timedelta(milliseconds=milliseconds + _FOUR_CENTURIES_MS))[4:]


def utc_now() -> datetime:
    """Return the current instant, to the millisecond."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def parse_instant(text: str) -> datetime:
    """Given a timestamp in any form SQLite's date functions read, return the
    instant it names (UTC, to the millisecond); raise NotAnInstant otherwise."""
    with sqlite3.connect(":memory:") as connection:
        (canonical,) = connection.execute(f"SELECT {instant_sql(':text')}", {"text": text}).fetchone()
    if canonical is None:
        raise NotAnInstant(f"{text[:40]!r} is not a timestamp")
    if canonical.startswith("0000-"):
        raise NotAnInstant(f"{text!r} is in year 0; maintctl's clock runs from year 1 to 9999")
    return from_canonical(canonical)


def from_canonical(text: str) -> datetime:
    """Given canonical text (as instant_sql returns it), return its instant."""
    return datetime.fromisoformat(text)


def format_instant(instant: datetime) -> str:
    """Given an instant, return its canonical text."""
    utc = instant.astimezone(UTC)
    return f"{utc.year:04d}-" + utc.strftime("%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def quoted(text: str, longest: int = 40) -> str:
    """Given a value from the command line or the environment, return it
    quoted for an error message, cut short where it is long."""
    return repr(text if len(text) <= longest else text[: longest - 1] + "…")


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*([0-9]{1,20}(?:\.[0-9]{1,20})?)\s*([smhdw])\s*$")


def parse_duration(text: str) -> timedelta:
    """Given a duration such as '7d', '24h', '90m' or '30s' (from a millisecond
    to 100 years), return it; raise ValueError for anything else."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"{quoted(text)} is not a duration (such as 30s, 90m, 24h, 7d)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > LONGEST.total_seconds():
        raise ValueError(f"{quoted(text)} is longer than {LONGEST_TEXT}")
    if seconds < 0.001:
        raise ValueError(f"{quoted(text)} is shorter than a millisecond")
    return timedelta(seconds=seconds)
