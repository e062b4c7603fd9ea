"""Deleting one retention rule's old rows: the table walked once a pass by
its key (retention_tables.py), MAINTCTL_BATCH_SIZE rows that exist at a
time whatever their keys, each batch one DELETE that finds and deletes its
old rows at once, so that the rows it deletes are old at that moment (a
second or concurrent run deletes nothing twice); in transactions that hold
the app's write lock for at most HOLD and then leave it free for a moment.
The rule's audit row (`retention, NAME, deleted, {"rows": n}`) is written
with its first batch and brought up to date by each later one in the same
transaction, so that it always says what has been deleted: one row per rule
and pass.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from maintctl import audit, json_text
from maintctl.batches import LET_IN, batch_size, say
from maintctl.config import Settings
from maintctl.db import transaction
from maintctl.results import ActionResult
from maintctl.retention_rules import Rule
from maintctl.retention_tables import Span, Table, last_key, next_start, span_sql

# A rule's transactions hold the app's write lock this long at most (or
# MAINTCTL_HOLD where that is shorter): deleting a backlog of millions of
# rows never keeps the app from writing for much more than this.
HOLD = 0.2


@dataclass
class Target:
    """A rule and its table as retention walks it."""

    rule: Rule
    table: Table
    old_sql: str  # the condition its old rows meet (as `t`)
    cutoff: dict  # the parameters of that condition

    @property
    def deletable_sql(self) -> str:
        return self.old_sql


def delete_old(
    connection: sqlite3.Connection, target: Target, settings: Settings, result: ActionResult, deadline: float | None
) -> None:
    """Delete the rule's old rows MAINTCTL_BATCH_SIZE rows at a time (each
    row is read once a pass), each transaction holding the write lock for at
    most HOLD, within --max-items and --max-seconds; count them into result."""
    rule, table = target.rule, target.table
    last, start = last_key(connection, table), None
    hold, deleted, audit_id = min(settings.hold, HOLD), 0, None
    result.counts.setdefault(f"deleted:{rule.name}", 0)
    while last is not None and connection.may_go_on():
        size, stopped_by = batch_size(settings, deleted, deadline)
        if stopped_by:
            result.notes.append(f"rule {rule.name}: stopped at {stopped_by}; the rest is left for the next run")
            break
        in_transaction = 0
        with transaction(connection):
            began = time.monotonic()
            while True:
                after = next_start(connection, table, start, last, size)
                count = _delete_span(connection, target, Span(start, after, None if after else last))
                in_transaction, start = in_transaction + count, after
                say(settings, f"retention: rule {rule.name}: {count} in a batch")
                if after is None or connection.stop.is_set() or time.monotonic() - began >= hold:
                    break
                size, stopped_by = batch_size(settings, deleted + in_transaction, deadline)
                if stopped_by:
                    break
            new_audit_id = audit_id
            if in_transaction:
                new_audit_id = _audited(connection, rule, settings, audit_id, deleted + in_transaction)
        audit_id, deleted = new_audit_id, deleted + in_transaction
        result.add({"deleted": in_transaction, f"deleted:{rule.name}": in_transaction}, [])
        if start is None:
            break
        time.sleep(min(LET_IN, hold))  # the app's turn


def _delete_span(connection: sqlite3.Connection, target: Target, span: Span) -> int:
    """Delete the old rows of the span in one DELETE; return how many."""
    condition, bounds = span_sql(target.table, span)
    delete = f"DELETE FROM {target.table.sql} AS t WHERE {condition} AND {target.deletable_sql}"
    return connection.execute(delete, {**target.cutoff, **bounds}).rowcount


def _audited(connection: sqlite3.Connection, rule: Rule, settings: Settings, audit_id: int | None, rows: int) -> int:
    """Write the rule's audit row for this pass, or bring it up to date
    (inside the caller's transaction); return its id."""
    details = json_text.encode({"rows": rows})
    if audit_id is None:
        return audit.record_one(connection, audit.Entry("retention", rule.name, "deleted", details), settings)
    connection.execute("UPDATE audit_log SET details = ? WHERE id = ?", (details, audit_id))
    return audit_id
