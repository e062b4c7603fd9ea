"""The Batched shape of an action, and its pass over what is due: plan and
apply a batch at a time, in transactions that take further batches until
they have held the app's write lock for MAINTCTL_HOLD, within --max-items
and --max-seconds (pacing.py)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from maintctl.actions.base.kinds import Common, Deadline, Items
from maintctl.config.settings import Settings
from maintctl.pacing import LET_IN, batch_size, say
from maintctl.store.db import transaction

if TYPE_CHECKING:
    from maintctl.results import ActionResult


@dataclass(frozen=True, kw_only=True)
class Batched(Common):
    plan: Callable[[sqlite3.Connection, Settings, int | None], Items]
    apply: Callable[[sqlite3.Connection, Items, Settings], Items]

    def preview(self, connection: sqlite3.Connection, settings: Settings) -> Items:
        return self.plan(connection, settings, settings.max_items)

    def run(self, connection: sqlite3.Connection, settings: Settings, result: ActionResult, deadline: Deadline) -> None:
        for table_sql in self.own_tables:
            connection.execute(table_sql)
        apply(connection, self, settings, result, deadline)


def apply(
    connection: sqlite3.Connection,
    action: Batched,
    settings: Settings,
    result: ActionResult,
    deadline: float | None,
) -> None:
    """Plan and apply a batch at a time until nothing is due, --max-items are
    done or --max-seconds are spent (each action does at least one batch, so
    that none is starved). A batch of which nothing could be changed (another
    run got there first) ends the pass, so that it always ends. On a
    terminal, a pass that takes more than a moment shows a progress bar."""
    from maintctl.actions.base.progress import Progress

    progress = Progress(result.action, enabled=not (settings.quiet or settings.json))
    try:
        limit_reached = _batches(connection, action, settings, result, deadline, progress)
    finally:
        progress.close()
    if limit_reached and action.plan(connection, settings, 1):
        result.notes.append(f"stopped at {limit_reached}: more are due, left for the next run")


def _batches(
    connection: sqlite3.Connection,
    action: Batched,
    settings: Settings,
    result: ActionResult,
    deadline: float | None,
    progress,
) -> str | None:
    """Run the batches; return the limit that stopped them, if one did.

    A transaction goes on to further batches until it has held the write
    lock for MAINTCTL_HOLD: at a large backlog each page is then journaled
    and synced once for many batches rather than once for each; then the
    lock is left free for a moment. The first batch of each is planned
    before it begins, so that a pass with nothing to do never takes the
    write lock."""
    done, lock_free_until = 0, 0.0
    while connection.may_go_on():
        size, stopped_by = batch_size(settings, done, deadline)
        if stopped_by:
            return stopped_by
        items = action.plan(connection, settings, size)
        if not items:
            return None
        time.sleep(max(0.0, lock_free_until - time.monotonic()))  # the app's turn, planning done meanwhile
        batches: list[_Batch] = []  # counted once committed
        finished = False
        with transaction(connection):
            began = time.monotonic()
            while True:
                clock = time.monotonic()
                changed = action.apply(connection, items, settings)
                warned = [item for item in changed if item.warning]
                batches.append(_Batch(action.tally(changed), warned, len(changed), len(items)))
                say(settings, f"{result.action}: {len(changed)} in a batch, {time.monotonic() - clock:.2f} s")
                finished = not changed or len(items) < size  # all done, or the rest changed meanwhile
                if finished or connection.stop.is_set() or time.monotonic() - began >= settings.hold:
                    break
                size, stopped_by = batch_size(settings, done + sum(batch.changed for batch in batches), deadline)
                if stopped_by:
                    break
                items = action.plan(connection, settings, size)
                if not items:
                    finished = True
                    break
            if result.on_commit is not None:  # the run's history row, with what this transaction commits
                committed: dict[str, int] = {}
                for batch in batches:
                    for name, count in batch.counts.items():
                        committed[name] = committed.get(name, 0) + count
                result.on_commit(connection, committed)
        for batch in batches:
            result.add(batch.counts, batch.warned)
            done += batch.changed
            if batch.changed < batch.planned:
                result.notes.append(
                    f"{batch.planned - batch.changed} changed by another process meanwhile; left as they were"
                )
        if stopped_by or finished:
            return stopped_by
        progress.advance(done, lambda: action.count_due(connection, settings))
        lock_free_until = time.monotonic() + min(LET_IN, settings.hold)
    return None


@dataclass(slots=True)
class _Batch:
    """What a batch did, kept until its transaction commits (not the items: a
    transaction may hold many batches)."""

    counts: dict[str, int]
    warned: list[Any]  # the few items with a warning
    changed: int
    planned: int
