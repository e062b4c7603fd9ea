"""retention: delete the rows of tables that only grow (the app's audit_log
first of all) once they are older than the rules of maintctl.toml say
(retention/rules.py reads them).

A rule's old rows are those whose timestamp names an instant, in any form
SQLite reads, at or before now less the rule's age (a timestamp that names
none is never deleted), that pass its `where` and that no other row keeps
by a foreign key (retention/held.py: those are left and named). Each rule
is checked against the database before any is applied: a table retention
cannot or must not delete from is refused in one line naming the rule
(retention/tables.py). retention/deleting.py deletes a rule's old rows, a
batch of the rows that exist at a time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from maintctl import timestamps
from maintctl.actions.base.kinds import Deadline, OwnPass
from maintctl.config.settings import Settings
from maintctl.results import ActionResult
from maintctl.retention.deleting import Target, delete_old
from maintctl.retention.held import Held
from maintctl.retention.rules import Rule, read_rules
from maintctl.retention.tables import Table, quoted, table_of
from maintctl.store.db import ActionError, SchemaError


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


# Whether a DELETE refused may have done part of its work first: only a trigger (RAISE(FAIL)) or a
# constraint's ON CONFLICT FAIL does that (a refusal is otherwise undone whole by SQLite); told broadly.
_PARTIAL_REFUSALS = "SELECT 1 FROM sqlite_schema WHERE type = 'trigger' OR sql LIKE '%FAIL%' LIMIT 1"
# Whether a trigger of the table may keep a row without a word (RAISE(IGNORE)); told broadly.
_SILENT_REFUSALS = (
    "SELECT 1 FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ? COLLATE NOCASE AND sql LIKE '%IGNORE%'"
)


def _old_sql(rule: Rule) -> str:
    """Given a rule, return the SQL condition its table's old rows meet (as
    `t`), bound with :cutoff_day (timestamps.cutoff_day). Its `where` is
    asked first: the rows it keeps are passed over without reading their
    timestamps."""
    where = f"({rule.where}) AND " if rule.where else ""
    return where + timestamps.at_or_before_sql(f"t.{quoted(rule.timestamp)}")


def _targets(connection: sqlite3.Connection, settings: Settings) -> list[Target]:
    """Return the rules of the file, each checked against the database
    (SchemaError naming the rule, and what is missing or why its table
    cannot be used), with what it needs to be walked."""
    targets, partial_refusals = [], connection.execute(_PARTIAL_REFUSALS).fetchone() is not None
    for number, rule in enumerate(read_rules(settings.config_file)):
        table, columns = table_of(connection, rule.name, rule.table)
        if rule.timestamp.lower() not in {column.lower() for column in columns}:
            raise SchemaError(f"rule {rule.name}: table {rule.table} has no column {rule.timestamp}")
        if rule.where:
            try:
                connection.execute(f"SELECT 1 FROM {table.sql} AS t WHERE ({rule.where}) LIMIT 0").fetchall()
            except sqlite3.Error as error:
                raise SchemaError(f"rule {rule.name}: where: {error}") from None
        _check_deletable(connection, rule, table)
        held = Held(connection, rule.name, table, _old_sql(rule), number)
        cutoff = {"cutoff_day": timestamps.cutoff_day(settings.now, rule.age)}
        silent = connection.execute(_SILENT_REFUSALS, (table.name,)).fetchone() is not None
        targets.append(Target(rule, table, held, cutoff, partial_refusals, silent))
    return targets


def _check_deletable(connection: sqlite3.Connection, rule: Rule, table: Table) -> None:
    """Raise SchemaError where SQLite refuses every DELETE from the table
    before it runs (a foreign key to it whose columns are not a key of it:
    "foreign key mismatch"; a trigger on it that names what is not there),
    as a DELETE that is compiled but never run (EXPLAIN) finds, foreign
    keys enforced as a real run's are."""
    (enforced,) = connection.execute("PRAGMA foreign_keys").fetchone()
    try:
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute(f"EXPLAIN DELETE FROM {table.sql} WHERE 0").fetchall()
    except sqlite3.Error as error:
        raise SchemaError(f"rule {rule.name}: SQLite refuses to delete from {table.name}: {error}") from None
    finally:
        connection.execute(f"PRAGMA foreign_keys = {int(enforced)}")


@contextmanager
def _named(target: Target) -> Iterator[None]:
    """Turn a database error while the block applies the target's rule into one naming the rule."""
    try:
        yield
    except sqlite3.DatabaseError as error:
        raise ActionError(f"rule {target.rule.name}: database error: {error}") from None


def preview(connection: sqlite3.Connection, settings: Settings) -> list[RuleStep]:
    """Given the run's settings, return what each rule would delete (within --max-items), changing nothing."""
    steps = []
    for target in _targets(connection, settings):
        query = f"SELECT count(*) FROM {target.table.sql} AS t WHERE {target.deletable_sql}"
        (rows,) = connection.execute(query, target.cutoff).fetchone()
        steps.append(RuleStep(target.rule, min(rows, settings.max_items or rows)))
    return steps


def run(connection: sqlite3.Connection, settings: Settings, result: ActionResult, deadline: Deadline) -> None:
    """Apply each rule in turn, counting into result what each transaction commits; what keeps a row is
    judged for every rule before any deletes."""
    targets = _targets(connection, settings)
    try:
        for target in targets:
            with _named(target):
                target.held.take(connection, target.cutoff, settings.batch_size)
        for target in targets:
            with _named(target):
                delete_old(connection, target, settings, result, deadline)
    finally:
        for target in targets:
            target.held.drop(connection)


def tally(steps: list[RuleStep]) -> dict[str, int]:
    counts = {"deleted": sum(step.rows for step in steps)}
    counts.update({f"deleted:{step.rule.name}": step.rows for step in steps})
    return counts


def problems(connection: sqlite3.Connection, settings: Settings) -> list[str]:
    """In a dry run, return the rows the pass would leave because another row
    still refers to them (a real pass names them as it goes)."""
    if not settings.dry_run:
        return []
    warnings = []
    for target in _targets(connection, settings):
        warnings += target.held.foreseen(connection, target.cutoff)
    return warnings


ACTION = OwnPass(
    requires={"audit_log": ("entity_type", "entity_id", "action", "details")},
    preview=preview,
    run=run,
    tally=tally,
    problems=problems,
)
