"""fire-reminders: notify the owners of the reminders that are due.

Each due reminder is marked fired, queued as a `reminder` notification and
audited in one transaction; a recurring one gets its next occurrence, the
first one after now (missed occurrences are coalesced, never fired as a burst).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from maintctl import timestamps
from maintctl.actions.base.due_rows import PROBLEMS_LISTED, DueRows, app_text, claimed, key_text, keys_sql, text_sql
from maintctl.actions.base.upcoming import Upcoming
from maintctl.config.settings import Settings
from maintctl.store import audit, identity, outbox
from maintctl.store.db import columns_of
from maintctl.utf8 import readable_sql, unclean_sql

REQUIRES = {
    "reminders": ("id", "memory_id", "owner_user_id", "fire_at", "recurrence_minutes", "fired"),
    "memories": ("id", "owner_user_id", "content"),
    "audit_log": ("entity_type", "entity_id", "action", "actor", "details", "created_at"),
}
INDEXES = (
    "CREATE INDEX IF NOT EXISTS maintctl_reminders_due ON reminders (fired, fire_at)",
    (
        f"CREATE INDEX IF NOT EXISTS maintctl_reminders_odd_fire_at ON reminders (fired)"
        f" WHERE {timestamps.odd_sql('fire_at')}"
    ),
)

# The notification is built here, by SQLite, as bytes: the app's text may hold
# bytes that are not UTF-8 (see app_text); so may any value read as it is.
_ROWS = DueRows(
    source="FROM reminders AS r JOIN memories AS m ON m.id = r.memory_id",
    where="r.fired = 0",
    column="r.fire_at",
    keys=("r.id", "r.memory_id"),
    read=f"r.id AS reminder_id, r.memory_id, {text_sql('m.owner_user_id')} AS user_id,"
    f" {readable_sql('m.owner_user_id')} AS owner, {text_sql('m.content')} AS memory_content, r.fire_at,"
    f" {readable_sql('r.recurrence_minutes')} AS recurrence_minutes",
    returned="reminder_id, memory_id, owner, fire_at, recurrence_minutes, instant,"
    " CAST(json_object('user_id', user_id, 'message_type', 'reminder', 'content', json_object("
    "'reminder_id', reminder_id, 'memory_id', memory_id, 'memory_content', memory_content, 'fire_at', instant"
    ")) AS BLOB) AS message",
    upcoming=Upcoming("reminders", "fired", "fired = 0", "fire_at"),
)

_PROBLEMS = timestamps.due_sql(
    f"SELECT {readable_sql('r.id')} AS reminder_id, {readable_sql('r.memory_id')} AS memory_id,"
    f" {readable_sql('r.fire_at')} AS fire_at, m.id IS NOT NULL AS memory_found,"
    f" {unclean_sql('r.id', 'r.memory_id')} AS key_problem, {timestamps.instant_sql('r.fire_at')} AS instant"
    " FROM reminders AS r LEFT JOIN memories AS m ON m.id = r.memory_id",
    "r.fired = 0",
    "r.fire_at",
    "instant IS NULL OR (instant <= :cutoff AND (NOT memory_found OR key_problem IS NOT NULL))",
    "reminder_id, memory_id, fire_at, key_problem, instant",
)

_CLAIM = f"UPDATE reminders SET fired = 1 WHERE +fired = 0 AND (id, +fire_at) IN ({keys_sql(2)}) RETURNING id"


@dataclass(slots=True)
class Firing:
    """One due reminder, and what firing it makes."""

    reminder_id: str
    memory_id: str
    user_id: int
    message: str  # the notification's JSON
    fire_at: str  # as stored: the claim is guarded on it
    fire_instant: str  # canonical
    next_id: str | None = None
    next_fire_at: str | None = None
    skipped_occurrences: int = 0
    warning: str | None = None

    def planned(self) -> dict:
        item = {
            "id": self.reminder_id,
            "memory_id": self.memory_id,
            "user_id": self.user_id,
            "fire_at": self.fire_instant,
        }
        if self.next_fire_at:
            item.update(
                next_id=self.next_id, next_fire_at=self.next_fire_at, skipped_occurrences=self.skipped_occurrences
            )
        return item

    def describe(self) -> str:
        text = f"reminder {self.reminder_id} for user {self.user_id}, due {self.fire_instant}"
        if self.next_fire_at:
            text += f"; next {self.next_fire_at}"
            if self.skipped_occurrences:
                text += f" ({self.skipped_occurrences} missed occurrences coalesced)"
        return text


def next_occurrence(fire_instant: str, minutes: int, now: datetime) -> tuple[str, int] | None:
    """Given a due fire_at (canonical text, year 0 to 9999), its recurrence in
    minutes (> 0) and now, return the first occurrence after now and how many
    were skipped on the way, or None where that lies beyond year 9999."""
    fire_ms, period = timestamps.ms_of_text(fire_instant), minutes * 60_000
    steps = (timestamps.epoch_ms(now) - fire_ms) // period + 1
    upcoming = timestamps.text_of_ms(fire_ms + steps * period)
    return (upcoming, steps - 1) if upcoming else None


def _firing(row: sqlite3.Row, settings: Settings) -> Firing:
    reminder_id, user_id, owner_mangled = row["reminder_id"], row["owner"], False
    message, mangled = app_text(row["message"])
    if isinstance(user_id, bytes):  # not clean text (see utf8.readable_sql)
        user_id, owner_mangled = app_text(user_id)
    firing = Firing(reminder_id, row["memory_id"], user_id, message, row["fire_at"], row["instant"])
    minutes, problem = row["recurrence_minutes"], None
    if isinstance(minutes, float) and minutes.is_integer():
        minutes = int(minutes)
    if minutes is None:
        pass
    elif not isinstance(minutes, int) or minutes <= 0:
        problem = f"recurrence_minutes {minutes!r} is not a positive whole number"
    elif (upcoming := next_occurrence(firing.fire_instant, minutes, settings.now)) is None:
        problem = f"recurrence_minutes {minutes} puts the next one past year 9999"
    else:
        firing.next_id = identity.new_uuid()
        firing.next_fire_at, firing.skipped_occurrences = upcoming
    warnings = []
    if mangled:
        text = "owner_user_id" if owner_mangled else "content"
        warnings.append(
            f"reminder {reminder_id}: its memory's {text} is not valid UTF-8; sent with U+FFFD for the bad bytes"
        )
    if problem:
        warnings.append(f"reminder {reminder_id}: {problem}; fired once, no next reminder")
    firing.warning = "; ".join(warnings) or None
    return firing


def plan(connection: sqlite3.Connection, settings: Settings, limit: int | None) -> list[Firing]:
    """Given the run's settings, return up to `limit` (None: all) due reminders whose memory exists."""
    cursor = _ROWS.rows(connection, settings, limit)
    cursor.row_factory = sqlite3.Row  # applied as the rows are fetched
    return [_firing(row, settings) for row in cursor]


def apply(connection: sqlite3.Connection, firings: list[Firing], settings: Settings) -> list[Firing]:
    """Fire the planned reminders that are still unfired and unchanged; return those."""
    fired = claimed(connection, _CLAIM, firings, lambda firing: (firing.reminder_id, firing.fire_at))
    successors = _make_next(connection, [firing for firing in fired if firing.next_id])
    entries = [audit.Entry("reminder", firing.reminder_id, "fired") for firing in fired]
    for firing in successors:
        details = {"source": "recurrence"}
        if firing.skipped_occurrences:
            details["skipped_occurrences"] = firing.skipped_occurrences
        entries.append(audit.Entry("reminder", firing.next_id, "created", details))
    audit.record(connection, entries, settings)
    outbox.queue(connection, ((_msg_id(firing), firing.message) for firing in fired), settings)
    return fired


def _msg_id(firing: Firing) -> str:
    """Given a firing, return its notification's msg_id: the reminder and the
    instant it fires at, so that a reminder the app sets again (fired = 0, a
    new fire_at) is a new notification, while a retry of this one is not."""
    return f"reminder:{firing.reminder_id}:{firing.fire_instant}"


def _make_next(connection: sqlite3.Connection, successors: list[Firing]) -> list[Firing]:
    """Given fired reminders that recur, insert the next one of each; return
    those whose next one was made. Where a constraint of the app's refuses
    one (a UNIQUE index, a foreign key to a user that is gone, a trigger),
    that statement alone is undone (SQLite's ABORT), so that one reminder
    never fails the batch: it is said, has fired once, and the rest go on."""
    if not successors:
        return []
    copied = [column for column in columns_of(connection, "reminders") if column not in ("id", "fire_at", "fired")]
    names = "".join(f', "{column}"' for column in (c.replace('"', '""') for c in copied))
    # OR ABORT: whatever ON CONFLICT the app's schema declares (ROLLBACK would
    # end the transaction, IGNORE and REPLACE would not say so), one refused
    # insert is undone alone and said.
    insert = (
        f"INSERT OR ABORT INTO reminders (id, fire_at, fired{names}) SELECT ?, ?, 0{names} FROM reminders WHERE id = ?"
    )
    remaining, made = iter(successors), []
    while True:
        try:
            connection.executemany(insert, _next_rows(remaining, made))
            return made
        except sqlite3.IntegrityError as error:
            refused = made.pop()  # the one being inserted: executemany takes a row at a time
            text = f"its next reminder was refused ({error}); fired once, no next reminder"
            refused.warning = "; ".join(filter(None, (refused.warning, f"reminder {refused.reminder_id}: {text}")))
            refused.next_id = refused.next_fire_at = None


def _next_rows(remaining: Iterator[Firing], made: list[Firing]) -> Iterator[tuple[str, str, str]]:
    """Given the reminders whose next one is still to be made, yield the
    parameters of each insert, adding the reminder to `made` as it goes."""
    for firing in remaining:
        made.append(firing)
        yield firing.next_id, firing.next_fire_at, firing.reminder_id


def tally(firings: list[Firing]) -> dict[str, int]:
    return {"fired": len(firings), "created": sum(1 for firing in firings if firing.next_id)}


def problems(connection: sqlite3.Connection, settings: Settings) -> list[str]:
    """Return what keeps due reminders from firing: a fire_at that names no
    instant, an id or memory_id that is not clean text, a memory that is gone."""
    found = []
    for reminder_id, memory_id, fire_at, key_problem, instant in connection.execute(
        _PROBLEMS, _ROWS.bounds(settings, PROBLEMS_LISTED)
    ):
        if instant is None:
            found.append(f"reminder {key_text(reminder_id)}: fire_at {fire_at!r} names no instant; not fired")
        elif key_problem:
            found.append(
                f"reminder {key_text(reminder_id)}: its id or memory_id ({key_text(memory_id)}) {key_problem}; not fired"
            )
        else:
            found.append(f"reminder {reminder_id}: its memory {memory_id} is gone; not fired")
    return found


_LATENESS = """
SELECT (julianday(a.created_at) - julianday(r.fire_at)) * 86400.0 AS late
FROM audit_log AS a JOIN reminders AS r ON r.id = a.entity_id
WHERE a.entity_type = 'reminder' AND a.action = 'fired' AND a.actor = :actor
  AND a.created_at >= :start AND a.created_at <= :now AND late IS NOT NULL
"""


def lateness(connection: sqlite3.Connection, settings: Settings, start: datetime) -> tuple[dict, list[str]]:
    """Given the start of the period stats looks back over, return how late
    the reminders maintctl fired in it were (fire time - fire_at, from their
    audit rows: the median and the worst), and the line that says so."""
    parameters = {
        "actor": settings.actor,
        "start": timestamps.format_instant(start),
        "now": timestamps.format_instant(settings.now),
    }
    try:
        count, worst = connection.execute(f"SELECT count(*), max(late) FROM ({_LATENESS})", parameters).fetchone()
        if not count:
            return {"lateness_seconds": {"reminders": 0, "median": None, "worst": None}}, []
        (median,) = connection.execute(
            f"SELECT late FROM ({_LATENESS}) ORDER BY late LIMIT 1 OFFSET :middle",
            {**parameters, "middle": (count - 1) // 2},
        ).fetchone()
    except sqlite3.Error:
        return {"lateness_seconds": None}, []  # the app's tables are not there to ask
    late = {"reminders": count, "median": round(median, 3), "worst": round(worst, 3)}
    line = f"reminders fired late by: median {late['median']:g} s, worst {late['worst']:g} s ({count} reminders)"
    return {"lateness_seconds": late}, [line]


ACTION = _ROWS.batched(
    requires=REQUIRES,
    index_sql=INDEXES,
    own_tables=(outbox.TABLE_SQL,),
    plan=plan,
    apply=apply,
    tally=tally,
    problems=problems,
    stats=lateness,
)
