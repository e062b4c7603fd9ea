"""Which of one database's copies at a destination are kept: the newest
--keep N, or, as restic's `forget` counts them, the newest copy of each of
the last --keep-daily D days, --keep-weekly W ISO weeks and --keep-monthly M
months that have a copy (UTC, by the time in the copy's name); the union of
the rules given, and the newest copy always.

Copies are taken in rotation order (see `order`): a copy named with a time
after now (a --now given for a test, a clock since put right) counts as
older than every other, so that it never outlives the copies taken since.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar


class Named(Protocol):
    stamp: str  # the UTC time in its name, a year of 8 digits: 20261122T093000Z
    number: int  # 1, or n for the nth copy of its second


C = TypeVar("C", bound=Named)


@dataclass(frozen=True)
class Rules:
    """How many copies to keep: `last` newest (None: not a rule), and by days, weeks and months (0: not a rule)."""

    last: int | None
    daily: int = 0
    weekly: int = 0
    monthly: int = 0

    @classmethod
    def of(cls, settings) -> Rules:
        """Given the Settings, return the rules --keep, --keep-daily, --keep-weekly and --keep-monthly give."""
        return cls(
            settings.backup_keep, settings.backup_keep_daily, settings.backup_keep_weekly, settings.backup_keep_monthly
        )

    def shown(self) -> str:
        """Return the rules as the options that give them."""
        given = [("--keep", self.last), *(
            (f"--keep-{name}", count)
            for name, count in (("daily", self.daily), ("weekly", self.weekly), ("monthly", self.monthly))
        )]  # fmt: skip
        return " ".join(f"{option} {count}" for option, count in given if count)


def order(copies: Sequence[C], now_stamp: str) -> list[C]:
    """Given copies and now (as their names write a time), return them
    oldest first as rotation sees them: those named after now first
    (earliest first), then the others by their names' time and number."""
    return sorted(copies, key=lambda copy: (copy.stamp <= now_stamp, copy.stamp, copy.number))


def _day(at: datetime) -> tuple:
    return (at.year, at.month, at.day)


def _week(at: datetime) -> tuple:
    return tuple(at.isocalendar()[:2])


def _month(at: datetime) -> tuple:
    return (at.year, at.month)


def _instant(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def past_rules(copies: Sequence[C], rules: Rules, now_stamp: str) -> list[C]:
    """Given one database's finished copies at a destination (the new one
    among them) and the rules, return those the rules do not keep, oldest
    first."""
    oldest_first = order(copies, now_stamp)
    newest_first = list(reversed(oldest_first))
    kept = {0}  # the newest always (where there is any)
    if rules.last:
        kept.update(range(min(rules.last, len(newest_first))))
    calendar: list[tuple[int, Callable[[datetime], tuple]]] = [
        (rules.daily, _day),
        (rules.weekly, _week),
        (rules.monthly, _month),
    ]
    for count, period in calendar:
        seen: set[tuple] = set()
        for index, copy in enumerate(newest_first):
            if len(seen) >= count:
                break
            bucket = period(_instant(copy.stamp))
            if bucket not in seen:  # the newest copy of a period that has none kept yet
                seen.add(bucket)
                kept.add(index)
    return [copy for index, copy in reversed(list(enumerate(newest_first))) if index not in kept]
