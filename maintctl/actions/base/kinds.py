"""The three shapes an action has, as typed values its module declares at
its end (`ACTION = Batched(...)`, `Single(...)` or `OwnPass(...)`). All
answer the same Action protocol, so the runner, init-db, doctor, status and
stats call the same members of every action and probe for none; what an
action does not need is a default that does nothing (`Common`), and no
action overrides a shape's members.

- Batched (in batches.py, beside the loop that runs it): planned and
  applied a batch at a time: `plan` decides, read-only; `apply` makes
  exactly those changes inside the caller's transaction, each guarded, and
  returns those it made; `tally` counts them. An action on the due rows of
  one of the app's tables describes them once as a DueRows (due_rows.py)
  and declares its Batched through it (`ROWS.batched(...)`): the rows give
  its query, count_due, outlook and problems.
- Single: one step that is not a database transaction (a backup, SQLite's
  own housekeeping): `perform` does it, or in a dry run says what it would
  do, and returns the steps; `tally` counts them.
- OwnPass: a pass whose transactions are its own (retention walks each
  rule's table by its key; enqueue-jobs reads results, times runs out and
  enqueues): `preview` says what a dry run would do; `run` does the pass,
  adding to the result what it did as it goes, so that a pass stopped or
  failed partway has counted what it did; `tally` counts the items.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from maintctl.actions.base.upcoming import Outlook
    from maintctl.config.settings import Settings
    from maintctl.results import ActionResult

Items = list[Any]  # each with planned(), describe() and warning
Deadline = float | None  # --max-seconds, on time.monotonic()'s clock


class Action(Protocol):
    requires: Mapping[str, Sequence[str]]  # {table: columns} it reads or writes, checked before it runs
    own_tables: Sequence[str]  # CREATE TABLE statements of maintctl's tables it writes

    def indexes(self, connection: sqlite3.Connection) -> tuple[str, ...]:
        """The CREATE INDEX statements its queries need, made by init-db (some fit only some shapes of table)."""

    def preview(self, connection: sqlite3.Connection, settings: Settings) -> Items:
        """What a dry run shows: the items the pass would touch, changing nothing."""

    def run(self, connection: sqlite3.Connection, settings: Settings, result: ActionResult, deadline: Deadline) -> None:
        """Do the pass, adding what was done to result (whose action is the one run)."""

    def tally(self, items: Items) -> dict[str, int]:
        """Count what the items (done, or planned in a dry run) do."""

    def problems(self, connection: sqlite3.Connection, settings: Settings) -> list[str]:
        """Warnings about what is due and cannot be done, asked after the work."""

    def notes(self, connection: sqlite3.Connection, settings: Settings) -> list[str]:
        """What the run says beside its counts, asked after the work."""

    def after_commit(self, connection: sqlite3.Connection, settings: Settings) -> tuple[dict[str, int], list[str]]:
        """Side effects outside the database, done once the changes have committed: counts and warnings."""

    def count_due(self, connection: sqlite3.Connection, settings: Settings) -> int | None:
        """How many items are due now (None: not a question this action answers), for status."""

    def stats(self, connection: sqlite3.Connection, settings: Settings, start) -> tuple[dict, list[str]]:
        """What stats tells of this action beyond its runs since start: fields, and lines for the text."""

    def outlook(self, connection: sqlite3.Connection, settings: Settings) -> Outlook:
        """How much it has to do now, and from when it next has something (for run-all --for to sleep until):
        by default, nothing it knows of."""


def _none(*_: object) -> list[str]:
    return []


def _nothing_done(*_: object) -> tuple[dict[str, int], list[str]]:
    return {}, []


def _no_count(*_: object) -> None:
    return None


def _no_stats(*_: object) -> tuple[dict, list[str]]:
    return {}, []


def _nothing_upcoming(*_: object) -> Outlook:
    from maintctl.actions.base.upcoming import Outlook

    return Outlook(None)


def _no_indexes(_: sqlite3.Connection) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True, kw_only=True)
class Common:
    """What every shape declares (all but `tally` have defaults that do nothing)."""

    tally: Callable[[Items], dict[str, int]]
    requires: Mapping[str, Sequence[str]] = field(default_factory=dict)
    index_sql: tuple[str, ...] = ()  # the indexes every database gets
    shaped_indexes: Callable[[sqlite3.Connection], tuple[str, ...]] = _no_indexes  # those that fit its shape
    own_tables: tuple[str, ...] = ()
    problems: Callable[[sqlite3.Connection, Settings], list[str]] = _none
    notes: Callable[[sqlite3.Connection, Settings], list[str]] = _none
    after_commit: Callable[[sqlite3.Connection, Settings], tuple[dict[str, int], list[str]]] = _nothing_done
    count_due: Callable[[sqlite3.Connection, Settings], int | None] = _no_count
    stats: Callable[[sqlite3.Connection, Settings, Any], tuple[dict, list[str]]] = _no_stats
    outlook: Callable[[sqlite3.Connection, Settings], Outlook] = _nothing_upcoming

    def indexes(self, connection: sqlite3.Connection) -> tuple[str, ...]:
        return (*self.index_sql, *self.shaped_indexes(connection))


@dataclass(frozen=True, kw_only=True)
class Single(Common):
    perform: Callable[[sqlite3.Connection, Settings], Items]

    def preview(self, connection: sqlite3.Connection, settings: Settings) -> Items:
        return self.perform(connection, settings)  # which, in a dry run, says what it would do

    def run(self, connection: sqlite3.Connection, settings: Settings, result: ActionResult, deadline: Deadline) -> None:
        steps = self.perform(connection, settings)
        result.add(self.tally(steps), steps)


@dataclass(frozen=True, kw_only=True)
class OwnPass(Common):
    preview: Callable[[sqlite3.Connection, Settings], Items]
    run: Callable[[sqlite3.Connection, Settings, ActionResult, Deadline], None]
