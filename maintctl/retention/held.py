"""The old rows of a rule's table that another row still refers to by a
foreign key that keeps them (references.held_sql: NO ACTION, RESTRICT,
SET NULL into NOT NULL, deferred or not, and so through a cascade): left
and named, so that one of them never fails a batch.

They are judged as the pass begins, for every rule before any rule deletes
(a snapshot in a TEMP table, taken a span of rows at a time), so that the
pass leaves exactly what its dry run names: a row whose referrer goes in the
same pass (deleted by another rule, or earlier in its own table) goes in the
next one. Each DELETE asks again, for what the app refers to meanwhile.
"""

from __future__ import annotations

import sqlite3

from maintctl.retention.tables import Span, Table, last_key, next_start, order_sql, span_sql
from maintctl.store import references

# Rows left are named up to this many a rule, the rest counted (as the other actions' problems are).
NAMED = 100


class Held:
    """What keeps the old rows of one rule's table, for one pass."""

    def __init__(self, connection: sqlite3.Connection, rule_name: str, table: Table, old_sql: str, number: int):
        self.rule_name, self.table, self.old_sql = rule_name, table, old_sql
        self.sql = references.held_sql(connection, table.name, "t")  # None: no foreign key can keep a row
        self.snapshot = f'temp."maintctl_retention_held_{number}"'
        self.taken = False
        self.free_sql = self._free_sql()  # the SQL condition that nothing keeps a row (as `t`)

    def _free_sql(self) -> str:
        """Return the SQL condition that nothing keeps a row (as `t`): nothing kept it as the pass began, nor does now."""
        if self.sql is None:
            return "1"
        if not self.taken:
            return f"({self.sql}) IS NULL"
        found = " AND ".join(f"h.k{index} = {key}" for index, key in enumerate(self.table.key))
        return f"({self.sql}) IS NULL AND NOT EXISTS (SELECT 1 FROM {self.snapshot} AS h WHERE {found})"

    def take(self, connection: sqlite3.Connection, parameters: dict, size: int) -> None:
        """Note the old rows that something keeps as the pass begins, reading `size` rows at a time."""
        if self.sql is None:
            return
        columns = [f"k{index}" for index in range(len(self.table.key))]
        connection.execute(f"DROP TABLE IF EXISTS {self.snapshot}")
        connection.execute(
            f"CREATE TABLE {self.snapshot} ({', '.join(columns)}, held_by, PRIMARY KEY ({', '.join(columns)}))"
            " WITHOUT ROWID"
        )
        self.taken = True
        self.free_sql = self._free_sql()
        last, start = last_key(connection, self.table), None
        while last is not None and connection.may_go_on():
            after = next_start(connection, self.table, start, last, size)
            condition, bounds = span_sql(self.table, Span(start, after, None if after else last))
            connection.execute(
                f"INSERT INTO {self.snapshot} SELECT * FROM (SELECT {', '.join(self.table.key)}, ({self.sql}) AS held_by"
                f" FROM {self.table.sql} AS t WHERE {condition} AND {self.old_sql}) WHERE held_by IS NOT NULL",
                {**parameters, **bounds},
            )
            if after is None:
                break
            start = after
        if connection.execute(f"SELECT 1 FROM {self.snapshot} LIMIT 1").fetchone() is None:
            self.drop(connection)  # nothing kept: no DELETE need look in it

    def drop(self, connection: sqlite3.Connection) -> None:
        if self.taken:
            connection.execute(f"DROP TABLE IF EXISTS {self.snapshot}")
            self.taken = False
            self.free_sql = self._free_sql()

    def left(self, connection: sqlite3.Connection) -> list[str]:
        """Return the warnings that name the rows the pass left because something kept them as it began."""
        if not self.taken:
            return []
        found = " AND ".join(f"{key} = h.k{index}" for index, key in enumerate(self.table.key))
        query = (
            f"SELECT {', '.join(self.table.names_sql)}, h.held_by, count(*) OVER ()"
            f" FROM {self.snapshot} AS h JOIN {self.table.sql} AS t ON {found}"
            f" ORDER BY {order_sql(self.table)} LIMIT {NAMED}"
        )
        return self._said(connection.execute(query).fetchall())

    def foreseen(self, connection: sqlite3.Connection, parameters: dict) -> list[str]:
        """Return the warnings that name the old rows something keeps now (what a dry run says the pass leaves)."""
        if self.sql is None:
            return []
        query = (
            f"SELECT {', '.join(self.table.names_sql)}, ({self.sql}), count(*) OVER () FROM {self.table.sql} AS t"
            f" WHERE {self.old_sql} AND ({self.sql}) IS NOT NULL ORDER BY {order_sql(self.table)} LIMIT {NAMED}"
        )
        return self._said(connection.execute(query, parameters).fetchall())

    def _said(self, rows: list[tuple]) -> list[str]:
        """Given rows (their names, what keeps them, how many in all), return the warnings."""
        width = len(self.table.names)
        warnings = [
            f"rule {self.rule_name}: {self.table.row_name(row[:width])}: {row[width]} still refers to it; not deleted"
            for row in rows
        ]
        if rows and rows[0][-1] > len(rows):
            warnings.append(
                f"rule {self.rule_name}: and {rows[0][-1] - len(rows)} more rows of {self.table.name}"
                " that another row still refers to; not deleted"
            )
        return warnings
