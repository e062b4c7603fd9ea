"""Deleting one retention rule's old rows: the table walked once a pass by
its key (retention/tables.py), MAINTCTL_BATCH_SIZE rows that exist at a
time whatever their keys, each batch one DELETE that finds and deletes its
old rows at once, so that the rows it deletes are old at that moment (a
second or concurrent run deletes nothing twice); in transactions that hold
the app's write lock for at most HOLD and then leave it free for a moment.
The rule's audit row (`retention, NAME, deleted, {"rows": n}`) is written
with its first batch and brought up to date by each later one in the same
transaction, so that it always says what has been deleted: one row per rule
and pass.

What no foreign key declares can still refuse a deletion (a trigger, a
default that refers to no row): a batch so refused is deleted a row at a
time, the rows refused left and named; a transaction so undone (at its
COMMIT, by a deferred key, or by a trigger's ROLLBACK) is tried again a
batch at a time, and a batch undone alone is left and named by its keys.
A row that a trigger keeps without a word (RAISE(IGNORE)) is named too.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field

from maintctl import json_text
from maintctl.config.settings import Settings
from maintctl.pacing import LET_IN, batch_size, say
from maintctl.results import ActionResult
from maintctl.retention.held import NAMED, Held
from maintctl.retention.rules import Rule
from maintctl.retention.tables import Span, Table, last_key, next_start, order_sql, span_sql
from maintctl.store import audit
from maintctl.store.db import transaction

# A rule's transactions hold the app's write lock this long at most (or
# MAINTCTL_HOLD where that is shorter): deleting a backlog of millions of
# rows never keeps the app from writing for much more than this.
HOLD = 0.2


@dataclass
class Target:
    """A rule, its table as retention walks it, and what keeps its rows."""

    rule: Rule
    table: Table
    held: Held
    cutoff: dict  # the parameters of its old rows' condition
    # Whether a refused DELETE may have done part of its work (a trigger's RAISE(FAIL), an ON CONFLICT FAIL
    # clause): then each runs in a savepoint, so that a refusal undoes all of it.
    partial_refusals: bool = True
    # Whether a trigger of its table may keep a row without a word (RAISE(IGNORE)): then what a DELETE left is named.
    silent_refusals: bool = False

    @property
    def old_sql(self) -> str:
        return self.held.old_sql

    @property
    def deletable_sql(self) -> str:
        return f"{self.old_sql} AND {self.held.free_sql}"


@dataclass
class _Refused:
    """What a rule's pass could not delete: rows a trigger or an undeclared key refused, spans undone at commit."""

    rows: list[str] = field(default_factory=list)
    more: int = 0

    def add(self, warning: str) -> None:
        if len(self.rows) < NAMED:
            self.rows.append(warning)
        else:
            self.more += 1


class _Undone(Exception):
    """A transaction was undone whole (a trigger's RAISE(ROLLBACK)); the error says why."""


def delete_old(
    connection: sqlite3.Connection, target: Target, settings: Settings, result: ActionResult, deadline: float | None
) -> None:
    """Delete the rule's old rows MAINTCTL_BATCH_SIZE rows at a time (each
    row is read once a pass), each transaction holding the write lock for at
    most HOLD, within --max-items and --max-seconds; count them into result.
    A transaction undone whole is tried again a batch at a time."""
    rule, table, refused = target.rule, target.table, _Refused()
    last, start = last_key(connection, table), None
    hold, deleted, audit_id, one_batch_for = min(settings.hold, HOLD), 0, None, 0
    result.counts.setdefault(f"deleted:{rule.name}", 0)
    while last is not None and connection.may_go_on():
        size, stopped_by = batch_size(settings, deleted, deadline)
        if stopped_by:
            result.notes.append(f"rule {rule.name}: stopped at {stopped_by}; the rest is left for the next run")
            break
        began_at, batches, after, in_transaction, refusals = start, 0, start, 0, _Refused()
        try:
            with transaction(connection):
                began = time.monotonic()
                while True:
                    after, batches = next_start(connection, table, start, last, size), batches + 1
                    count = _delete_span(connection, target, Span(start, after, None if after else last), refusals)
                    in_transaction, start = in_transaction + count, after
                    say(settings, f"retention: rule {rule.name}: {count} in a batch")
                    if after is None or one_batch_for or connection.stop.is_set() or time.monotonic() - began >= hold:
                        break
                    size, stopped_by = batch_size(settings, deleted + in_transaction, deadline)
                    if stopped_by:
                        break
                new_audit_id = audit_id
                if in_transaction:
                    new_audit_id = _audited(connection, rule, settings, audit_id, deleted + in_transaction)
                    if result.on_commit is not None:  # the run's history row, with what this transaction commits
                        result.on_commit(
                            connection, {"deleted": in_transaction, f"deleted:{rule.name}": in_transaction}
                        )
        except (sqlite3.IntegrityError, _Undone) as error:
            if batches > 1:  # tried again a batch at a time: only what is undone alone is left
                start, one_batch_for = began_at, batches
                continue
            refused.add(_undone(connection, target, Span(began_at, after, None if after else last), error))
            start, in_transaction, new_audit_id, refusals = after, 0, audit_id, _Refused()
        audit_id, deleted, one_batch_for = new_audit_id, deleted + in_transaction, max(0, one_batch_for - 1)
        for warning in refusals.rows:
            refused.add(warning)
        refused.more += refusals.more
        result.add({"deleted": in_transaction, f"deleted:{rule.name}": in_transaction}, [])
        if start is None:
            break
        time.sleep(min(LET_IN, hold))  # the app's turn
    result.warnings.extend(target.held.left(connection))
    result.warnings.extend(refused.rows)
    if refused.more:
        result.warnings.append(
            f"rule {rule.name}: and {refused.more} more rows of {table.name} whose deletion failed; not deleted"
        )


def _delete_span(connection: sqlite3.Connection, target: Target, span: Span, refused: _Refused) -> int:
    """Delete the deletable rows of the span in one DELETE; where something
    refuses it, a row at a time, the rows refused added to `refused`; return
    how many were deleted. Raise _Undone where the transaction was undone."""
    condition, bounds = span_sql(target.table, span)
    bounds.update(target.cutoff)
    try:
        deleted = _guarded(connection, target, _delete_sql(target, condition), bounds)
    except sqlite3.IntegrityError:
        pass
    else:
        if target.silent_refusals:
            _name_kept(connection, target, condition, bounds, refused)
        return deleted
    names = ", ".join(target.table.names_sql)
    rows = connection.execute(
        f"SELECT {target.table.key_read_sql}, {names} FROM {target.table.sql} AS t"
        f" WHERE {condition} AND {target.deletable_sql} ORDER BY {order_sql(target.table)}",
        bounds,
    ).fetchall()
    deleted, width = 0, target.table.key_width
    for row in rows:
        key = target.table.key_of(row[:width])
        one, row_bounds = span_sql(target.table, Span(key, None, key))
        try:
            deleted += _guarded(connection, target, _delete_sql(target, one), {**target.cutoff, **row_bounds})
        except sqlite3.IntegrityError as error:
            refused.add(
                f"rule {target.rule.name}: {target.table.row_name(row[width:])}: deleting it failed ({error});"
                " not deleted"
            )
            continue
        if target.silent_refusals:
            _name_kept(connection, target, one, {**target.cutoff, **row_bounds}, refused)
    return deleted


def _name_kept(connection: sqlite3.Connection, target: Target, condition: str, bounds: dict, refused: _Refused) -> None:
    """After the DELETE of a span (`condition`, bound with `bounds`) that
    nothing refused, add to `refused` the rows of it still to delete: a
    trigger kept them without a word (RAISE(IGNORE))."""
    kept = connection.execute(
        f"SELECT {', '.join(target.table.names_sql)} FROM {target.table.sql} AS t"
        f" WHERE {condition} AND {target.deletable_sql} ORDER BY {order_sql(target.table)}",
        bounds,
    )
    for row in kept:
        refused.add(
            f"rule {target.rule.name}: {target.table.row_name(row)}: a trigger kept it (RAISE(IGNORE)); not deleted"
        )


def _delete_sql(target: Target, condition: str) -> str:
    """Given a span's condition, return the DELETE of its deletable rows (built once for each condition)."""
    key = ("delete", condition, target.deletable_sql)
    delete = target.table.statements.get(key)
    if delete is None:
        delete = target.table.statements[key] = (
            f"DELETE FROM {target.table.sql} AS t WHERE {condition} AND {target.deletable_sql}"
        )
    return delete


def _guarded(connection: sqlite3.Connection, target: Target, delete: str, parameters: dict) -> int:
    """Run the DELETE, inside a savepoint where a refusal may leave part of
    its work done, so that a refusal undoes all of it; return its count.
    Raise _Undone where the refusal undid the whole transaction."""
    if not target.partial_refusals:
        try:
            return connection.execute(delete, parameters).rowcount
        except sqlite3.IntegrityError as error:
            if not connection.in_transaction:
                raise _Undone(str(error)) from None
            raise
    connection.execute("SAVEPOINT retention_batch")
    try:
        count = connection.execute(delete, parameters).rowcount
    except sqlite3.IntegrityError as error:
        if not connection.in_transaction:
            raise _Undone(str(error)) from None
        connection.execute("ROLLBACK TO retention_batch")
        connection.execute("RELEASE retention_batch")
        raise
    connection.execute("RELEASE retention_batch")
    return count


def _undone(connection: sqlite3.Connection, target: Target, span: Span, error: Exception) -> str:
    """Given a span whose transaction was undone whole and why, return the warning that names its rows."""
    condition, bounds = span_sql(target.table, span)
    names = ", ".join(target.table.names_sql)
    ends = [
        connection.execute(
            f"SELECT {names}, count(*) OVER () FROM {target.table.sql} AS t WHERE {condition}"
            f" AND {target.deletable_sql} ORDER BY {order_sql(target.table, descending)} LIMIT 1",
            {**target.cutoff, **bounds},
        ).fetchone()
        for descending in (False, True)
    ]
    if ends[0] is None:
        return f"rule {target.rule.name}: a transaction failed ({error}); none of its rows is left to delete"
    first, last = (target.table.names_text(end[:-1]) for end in ends)
    if ends[0][-1] == 1:
        return f"rule {target.rule.name}: {target.table.name} {first}: its transaction failed ({error}); not deleted"
    return (
        f"rule {target.rule.name}: {target.table.name} {first} to {last} ({ends[0][-1]} rows):"
        f" their transaction failed ({error}); not deleted"
    )


def _audited(connection: sqlite3.Connection, rule: Rule, settings: Settings, audit_id: int | None, rows: int) -> int:
    """Write the rule's audit row for this pass, or bring it up to date
    (inside the caller's transaction); return its id."""
    details = json_text.encode({"rows": rows})
    if audit_id is None:
        return audit.record_one(connection, audit.Entry("retention", rule.name, "deleted", details), settings)
    connection.execute("UPDATE audit_log SET details = ? WHERE id = ?", (details, audit_id))
    return audit_id
