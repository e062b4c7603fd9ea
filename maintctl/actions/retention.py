"""retention: delete the rows of tables that only grow (the app's audit_log
first of all) once they are older than the rules of maintctl.toml say
(retention_rules.py reads them).

A rule's old rows are those whose timestamp names an instant, in any form
SQLite reads, at or before now less the rule's age (a timestamp that names
none is never deleted) and that pass its `where`. They are deleted a batch
at a time by one statement that finds and deletes them at once, so that the
rows it deletes are old at that moment (a second or concurrent run deletes
nothing twice); in transactions that hold the app's write lock for at most
0.2 s and then leave it free for a moment. A rule's audit row (`retention,
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
    """Given a rule, return SQL for the rowids of its table's old rows, bound
    as timestamps.due_sql's queries are (:cutoff, :scan_upper, :limit)."""
    column = f"t.{_quoted(rule.timestamp)}"
    select = f"SELECT t.rowid, {timestamps.instant_sql(column)} AS instant FROM {_quoted(rule.table)} AS t"
    where = f"({rule.where})" if rule.where else "1"
    return timestamps.due_sql(select, where, column, "instant <= :cutoff", "rowid")


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
    """Delete the rule's old rows a batch at a time, each transaction holding
    the write lock for at most HOLD, within --max-items and --max-seconds;
    count them into result."""
    delete = f"DELETE FROM {_quoted(rule.table)} WHERE rowid IN ({_old_sql(rule)})"
    hold, deleted, audit_id, finished = min(settings.hold, HOLD), 0, None, False
    result.counts.setdefault(f"deleted:{rule.name}", 0)
    while not finished and connection.may_go_on():
        size, stopped_by = batch_size(settings, deleted, deadline)
        if stopped_by:
            result.notes.append(f"rule {rule.name}: stopped at {stopped_by}; the rest is left for the next run")
            return
        with transaction(connection):
            began, in_transaction = time.monotonic(), 0
            while True:
                count = connection.execute(delete, timestamps.due_bounds(settings.now, size, rule.age)).rowcount
                in_transaction += count
                say(settings, f"retention: rule {rule.name}: {count} in a batch")
                finished = count < size
                if finished or connection.stop.is_set() or time.monotonic() - began >= hold:
                    break
                size, stopped_by = batch_size(settings, deleted + in_transaction, deadline)
                if stopped_by:
                    break
            if in_transaction:
                details = json_text.encode({"rows": deleted + in_transaction})
                if audit_id is None:
                    audit_id = audit.record_one(
                        connection, audit.Entry("retention", rule.name, "deleted", details), settings
                    )
                else:
                    connection.execute("UPDATE audit_log SET details = ? WHERE id = ?", (details, audit_id))
        deleted += in_transaction
        result.add({"deleted": in_transaction, f"deleted:{rule.name}": in_transaction}, [])
        time.sleep(0 if finished else min(LET_IN, hold))  # the app's turn


class Retention:
    """The Action (kinds.py) that applies each rule in turn."""

    requires: dict[str, tuple[str, ...]] = {"audit_log": ("entity_type", "entity_id", "action", "details")}
    own_tables: tuple[str, ...] = ()

    def indexes(self, connection: sqlite3.Connection) -> tuple[str, ...]:
        return ()

    def preview(self, connection: sqlite3.Connection, settings: Settings) -> Items:
        steps = []
        for rule in _rules(connection, settings):
            bounds = timestamps.due_bounds(settings.now, settings.max_items, rule.age)
            (rows,) = connection.execute(f"SELECT count(*) FROM ({_old_sql(rule)})", bounds).fetchone()
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
