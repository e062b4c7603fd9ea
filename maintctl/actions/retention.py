"""retention: delete the rows of tables that only grow (the app's audit_log
first of all) once they are older than the rules of maintctl.toml say
(retention_rules.py reads them).

A rule's old rows are those whose timestamp names an instant, in any form
SQLite reads, at or before now less the rule's age (a timestamp that names
none is never deleted) and that pass its `where`. The table is gone through
once a pass, a span of rowids at a time, each by one DELETE that finds and
deletes its old rows at once, so that the rows it deletes are old at that
moment (a second or concurrent run deletes nothing twice); in transactions
that hold the app's write lock for at most 0.2 s and then leave it free for
a moment. A rule's audit row (`retention,
NAME, deleted, {"rows": n}`) is written with its first batch and brought up
to date by each later one in the same transaction, so that it always says
what has been deleted: one row per rule and pass.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from maintctl import audit, json_text, timestamps
from maintctl.actions.kinds import Deadline, Items
from maintctl.batches import LET_IN, batch_size, say
from maintctl.config import Settings
from maintctl.db import SchemaError, columns_of, transaction
from maintctl.results import ActionResult
from maintctl.retention_rules import Rule, read_rules

# A rule's transactions hold the app's write lock this long at most (or
# MAINTCTL_HOLD where that is shorter): deleting a backlog of millions of
# rows never keeps the app from writing for much more than this.
HOLD = 0.2


@dataclass(slots=True)
class RuleStep:
    """What a dry run says of a rule."""

    rule: Rule
    rows: int
    warning: str | None = None

    def planned(self) -> dict:
        return {"id": self.rule.name, "table": self.rule.table, "rows": self.rows, "older_than": self.rule.age_text}

    def describe(self) -> str:
        return f"rule {self.rule.name}: delete {self.rows} rows of {self.rule.table} older than {self.rule.age_text}"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _old_sql(rule: Rule) -> str:
    """Given a rule, return the SQL condition its table's old rows meet (as
    `t`), bound with :cutoff_day (timestamps.cutoff_day). Its `where` is
    asked first: the rows it keeps are passed over without reading their
    timestamps."""
    where = f"({rule.where}) AND " if rule.where else ""
    return where + timestamps.at_or_before_sql(f"t.{_quoted(rule.timestamp)}")


def _rules(connection: sqlite3.Connection, settings: Settings) -> list[Rule]:
    """Return the rules of the file, each checked against the database (SchemaError naming what is missing)."""
    rules = read_rules(settings.config_file)
    for rule in rules:
        present = columns_of(connection, rule.table)
        if not present:
            raise SchemaError(f"rule {rule.name}: table {rule.table} is missing")
        if rule.timestamp not in present:
            raise SchemaError(f"rule {rule.name}: table {rule.table} has no column {rule.timestamp}")
    return rules


def _delete_old(
    connection: sqlite3.Connection, rule: Rule, settings: Settings, result: ActionResult, deadline: Deadline
) -> None:
    """Delete the rule's old rows a span of rowids at a time (MAINTCTL_BATCH_SIZE
    of them: each row is read once a pass, and a batch deletes as one DELETE
    that reads its span once), each transaction holding the write lock for at
    most HOLD, within --max-items and --max-seconds; count them into result."""
    table = _quoted(rule.table)
    delete = f"DELETE FROM {table} AS t WHERE t.rowid > :after AND t.rowid <= :upto AND {_old_sql(rule)}"
    first, last = connection.execute(f"SELECT min(rowid), max(rowid) FROM {table}").fetchone()
    after, day = (first or 0) - 1, timestamps.cutoff_day(settings.now, rule.age)
    hold, deleted, audit_id = min(settings.hold, HOLD), 0, None
    result.counts.setdefault(f"deleted:{rule.name}", 0)
    while last is not None and after < last and connection.may_go_on():
        size, stopped_by = batch_size(settings, deleted, deadline)
        if stopped_by:
            result.notes.append(f"rule {rule.name}: stopped at {stopped_by}; the rest is left for the next run")
            return
        with transaction(connection):
            began, in_transaction = time.monotonic(), 0
            while after < last:
                count = connection.execute(delete, {"after": after, "upto": after + size, "cutoff_day": day}).rowcount
                after, in_transaction = after + size, in_transaction + count
                say(settings, f"retention: rule {rule.name}: {count} in a batch")
                if connection.stop.is_set() or time.monotonic() - began >= hold:
                    break
                size, stopped_by = batch_size(settings, deleted + in_transaction, deadline)
                if stopped_by:
                    break
            if in_transaction:
                audit_id = _audited(connection, rule, settings, audit_id, deleted + in_transaction)
        deleted += in_transaction
        result.add({"deleted": in_transaction, f"deleted:{rule.name}": in_transaction}, [])
        if after < last:
            time.sleep(min(LET_IN, hold))  # the app's turn


def _audited(connection: sqlite3.Connection, rule: Rule, settings: Settings, audit_id: int | None, rows: int) -> int:
    """Write the rule's audit row for this pass, or bring it up to date (inside the caller's transaction); return its id."""
    details = json_text.encode({"rows": rows})
    if audit_id is None:
        return audit.record_one(connection, audit.Entry("retention", rule.name, "deleted", details), settings)
    connection.execute("UPDATE audit_log SET details = ? WHERE id = ?", (details, audit_id))
    return audit_id


class Retention:
    """The Action (kinds.py) that applies each rule in turn."""

    requires: dict[str, tuple[str, ...]] = {"audit_log": ("entity_type", "entity_id", "action", "details")}
    own_tables: tuple[str, ...] = ()

    def indexes(self, connection: sqlite3.Connection) -> tuple[str, ...]:
        return ()

    def preview(self, connection: sqlite3.Connection, settings: Settings) -> Items:
        steps = []
        for rule in _rules(connection, settings):
            query = f"SELECT count(*) FROM {_quoted(rule.table)} AS t WHERE {_old_sql(rule)}"
            (rows,) = connection.execute(
                query, {"cutoff_day": timestamps.cutoff_day(settings.now, rule.age)}
            ).fetchone()
            rows = min(rows, settings.max_items or rows)
            steps.append(RuleStep(rule, rows))
        return steps

    def run(self, connection: sqlite3.Connection, settings: Settings, result: ActionResult, deadline: Deadline) -> None:
        for rule in _rules(connection, settings):
            _delete_old(connection, rule, settings, result, deadline)

    def tally(self, steps: Items) -> dict[str, int]:
        counts = {"deleted": sum(step.rows for step in steps)}
        counts.update({f"deleted:{step.rule.name}": step.rows for step in steps})
        return counts

    def problems(self, connection: sqlite3.Connection, settings: Settings) -> list[str]:
        return []

    def notes(self, connection: sqlite3.Connection, settings: Settings) -> list[str]:
        return []

    def after_commit(self, connection: sqlite3.Connection, settings: Settings) -> tuple[dict[str, int], list[str]]:
        return {}, []

    def count_due(self, connection: sqlite3.Connection, settings: Settings) -> int | None:
        return None

    def stats(self, connection: sqlite3.Connection, settings: Settings, start) -> tuple[dict, list[str]]:
        return {}, []


ACTION = Retention()
