"""The tables retention deletes from: what a rule's table is (one line
naming the rule where retention cannot or must not delete from it), the key
its rows are walked by, and spans of that key.

A rowid table is walked by its rowid, whatever its values (negative, sparse,
SQLite's extremes) and whether or not a column is its alias; a WITHOUT ROWID
table by its primary key. A span is given by the keys of rows that exist
(the first of the span, the first of the next), never by arithmetic on them,
so that a batch is so many rows however far apart their keys lie.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from maintctl.store.db import SchemaError
from maintctl.utf8 import readable_sql

_ROWID_NAMES = ("rowid", "_rowid_", "oid")
_KIND = "SELECT type, wr FROM pragma_table_list(?) WHERE schema = 'main'"
# Its columns, those generated from others included (table_info leaves them out), not a virtual table's hidden ones.
_COLUMNS = "SELECT name, pk FROM pragma_table_xinfo(?) WHERE hidden IN (0, 2, 3) ORDER BY cid"


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Text(bytes):
    """Text of a key, as its bytes (so that text that is not UTF-8, which
    Python cannot read, is a key like any other), bound back as text."""


@dataclass(frozen=True)
class Table:
    """A rule's table as retention walks it: `key` are SQL expressions of
    its rows (as `t`) in the order they are walked by; `names` the columns
    that name a row in a warning (its primary key, else the key), and
    `names_sql` SQL for them as Python can read them."""

    name: str
    key: tuple[str, ...]
    names: tuple[str, ...]
    names_sql: tuple[str, ...]
    text_keys: bool = False  # its key may hold text (a WITHOUT ROWID table's): read as bytes, bound back as text
    # The SQL of spans, built once for each shape of span (a pass in batches of one row asks hundreds of
    # thousands of times), and the names of the parameters of a span's start, before and through.
    statements: dict = field(default_factory=dict, compare=False, hash=False)
    marks: tuple = field(init=False, compare=False, hash=False)

    def __post_init__(self):
        marks = tuple(
            tuple(f"{bound}_{index}" for index in range(len(self.key))) for bound in ("start", "before", "through")
        )
        object.__setattr__(self, "marks", marks)

    @property
    def sql(self) -> str:
        return quoted(self.name)

    @property
    def key_read_sql(self) -> str:
        """Return SQL for the columns that read a row's key (see key_of)."""
        if not self.text_keys:
            return ", ".join(self.key)
        return ", ".join(
            f"typeof({key}) = 'text', CASE WHEN typeof({key}) = 'text' THEN CAST({key} AS BLOB) ELSE {key} END"
            for key in self.key
        )

    def key_of(self, values: tuple) -> tuple:
        """Given the values read by key_read_sql, return the row's key."""
        if not self.text_keys:
            return tuple(values)
        return tuple(
            Text(value) if is_text else value for is_text, value in zip(values[::2], values[1::2], strict=True)
        )

    @property
    def key_width(self) -> int:
        """Return how many values key_read_sql reads."""
        return len(self.key) * (2 if self.text_keys else 1)

    def row_name(self, values: tuple) -> str:
        """Given the values of a row's `names` columns, return the row as a warning names it."""
        return f"{self.name} {self.names_text(values)}"

    def names_text(self, values: tuple) -> str:
        """Given the values of a row's `names` columns, return them as a warning shows them (`id 7`)."""
        return ", ".join(f"{name} {_value_text(value)}" for name, value in zip(self.names, values, strict=True))


def _value_text(value) -> str:
    """Given a value of the table's, return it as a warning shows it: text as it is, the rest as SQL writes it."""
    if isinstance(value, str):
        return value if value.isprintable() else repr(value)
    return "NULL" if value is None else f"X'{value.hex()}'" if isinstance(value, bytes) else repr(value)


@dataclass(frozen=True)
class Span:
    """Rows of a table by key: from `start` (None: its first row), up to
    `before` (excluded) or else through `through` (included)."""

    start: tuple | None
    before: tuple | None
    through: tuple | None = None


def table_of(connection: sqlite3.Connection, rule_name: str, table: str) -> tuple[Table, list[str]]:
    """Given a rule's name and table, return the Table and its column names;
    raise SchemaError naming the rule where retention cannot or must not
    delete from it."""
    why = f"rule {rule_name}: "
    found = connection.execute(_KIND, (table,)).fetchone()
    if found is None:
        raise SchemaError(f"{why}table {table} is missing")
    kind, without_rowid = found
    if table.lower().startswith("sqlite_"):
        raise SchemaError(f"{why}{table} is SQLite's own table")
    if table.lower().startswith("maintctl_"):
        raise SchemaError(f"{why}{table} is maintctl's own table")
    if kind == "view":
        raise SchemaError(f"{why}{table} is a view, not a table")
    if kind == "virtual":
        raise SchemaError(f"{why}{table} is a virtual table (retention deletes from tables the app writes itself)")
    if kind == "shadow":
        raise SchemaError(f"{why}{table} is a virtual table's own storage (a shadow table)")
    columns = connection.execute(_COLUMNS, (table,)).fetchall()
    names = [name for name, _ in columns]
    primary_key = tuple(name for name, position in sorted(columns, key=lambda column: column[1]) if position)
    primary_key_sql = tuple(f"t.{quoted(name)}" for name in primary_key)
    names_sql = tuple(readable_sql(column) for column in primary_key_sql)
    if without_rowid:
        return Table(table, primary_key_sql, primary_key, names_sql, text_keys=True), names
    taken = {name.lower() for name in names}
    rowid = next((name for name in _ROWID_NAMES if name not in taken), None)
    if rowid is None:
        raise SchemaError(
            f"{why}{table} has columns named rowid, _rowid_ and oid, which hide the rowid it is walked by"
        )
    if primary_key:
        return Table(table, (f"t.{rowid}",), primary_key, names_sql), names
    return Table(table, (f"t.{rowid}",), (rowid,), (f"t.{rowid}",)), names


_OPERATORS = (">=", "<", "<=")  # of a span's start, before and through


def span_sql(table: Table, span: Span) -> tuple[str, dict]:
    """Given a span, return the SQL condition its rows (as `t`) meet, and its parameters."""
    bounds = (span.start, span.before, span.through)
    if table.text_keys:
        shape = tuple(None if bound is None else tuple(isinstance(value, Text) for value in bound) for bound in bounds)
    else:
        shape = (bounds[0] is not None, bounds[1] is not None, bounds[2] is not None)
    condition = table.statements.get(shape)
    if condition is None:
        condition = table.statements[shape] = _condition(table, bounds)
    parameters = {}
    for marks, bound in zip(table.marks, bounds):
        if bound is not None:
            if table.text_keys:
                bound = [bytes(value) if isinstance(value, Text) else value for value in bound]
            parameters.update(zip(marks, bound))
    return condition, parameters


def _condition(table: Table, bounds: tuple) -> str:
    """Given a table and a span's bounds, return the SQL condition of the span."""
    conditions = []
    for marks, operator, bound in zip(table.marks, _OPERATORS, bounds, strict=True):
        if bound is not None:
            values = tuple(
                f"CAST(:{mark} AS TEXT)" if isinstance(value, Text) else f":{mark}"
                for mark, value in zip(marks, bound, strict=True)
            )
            conditions.append(f"{_row(table.key)} {operator} {_row(values)}")
    return " AND ".join(conditions) or "1"


def _row(values: tuple[str, ...]) -> str:
    return values[0] if len(values) == 1 else f"({', '.join(values)})"


def order_sql(table: Table, descending: bool = False) -> str:
    """Given a table, return the ORDER BY terms of its key (as `t`)."""
    return ", ".join(f"{key}{' DESC' if descending else ''}" for key in table.key)


def last_key(connection: sqlite3.Connection, table: Table) -> tuple | None:
    """Return the key of the table's last row (None: it has none)."""
    query = f"SELECT {table.key_read_sql} FROM {table.sql} AS t ORDER BY {order_sql(table, descending=True)} LIMIT 1"
    found = connection.execute(query).fetchone()
    return None if found is None else table.key_of(found)


def next_start(
    connection: sqlite3.Connection, table: Table, start: tuple | None, through: tuple, size: int
) -> tuple | None:
    """Given where a batch starts, the last key of the pass and the batch's
    size, return the key of the row that follows the batch's `size` rows
    (None: the batch runs through `through`): so many rows are read,
    however far apart their keys lie."""
    condition, parameters = span_sql(table, Span(start, None, through))
    parameters["size"] = size
    query = table.statements.get(("next", condition))
    if query is None:
        query = table.statements["next", condition] = (
            f"SELECT {table.key_read_sql} FROM {table.sql} AS t WHERE {condition}"
            f" ORDER BY {order_sql(table)} LIMIT 1 OFFSET :size"
        )
    found = connection.execute(query, parameters).fetchone()
    return None if found is None else table.key_of(found)
