"""Rows that the app's other tables hold by a foreign key: deleting one fails
(FOREIGN KEY constraint failed), and so would the whole statement with it.

SQLite describes every foreign key (pragma_foreign_key_list). A row is held
where a row of another table refers to it by a key that does not let it go:
NO ACTION or RESTRICT, or SET NULL into a NOT NULL column; or refers so to a
row that deleting it would delete by cascade. Such rows are found in SQL,
before the delete, so that one of them never fails a batch.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from typing import NamedTuple

_FOREIGN_KEYS = (
    'SELECT t.name, k.id, k."table", k."from", k."to", k.on_delete,'
    ' (SELECT c."notnull" FROM pragma_table_info(t.name) AS c WHERE c.name = k."from")'
    " FROM sqlite_schema AS t, pragma_foreign_key_list(t.name) AS k"
    " WHERE t.type = 'table' AND t.sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY t.name, k.id, k.seq"
)
_PRIMARY_KEY = "SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk"


class _Key(NamedTuple):
    """A foreign key: the referring table and columns, the columns of the parent referred to."""

    table: str
    columns: tuple[str, ...]
    parent_columns: tuple[str, ...]
    on_delete: str
    not_null: bool  # one of its columns is NOT NULL


def held_sql(connection: sqlite3.Connection, table: str, alias: str) -> str | None:
    """Given a table and the alias of its rows in a query, return SQL for what
    holds such a row (the referring table and columns, as a warning names
    them), NULL where nothing does; None where no foreign key can hold one."""
    holds = list(_holds(_keys_to(connection), table, alias, (table.lower(),), ""))
    if not holds:
        return None
    return "CASE " + " ".join(f"WHEN {condition} THEN {_literal(label)}" for label, condition in holds) + " END"


def _keys_to(connection: sqlite3.Connection) -> dict[str, list[_Key]]:
    """Return the foreign keys of the database, by the table they refer to (in lower case)."""
    parts: dict[tuple[str, int], list[tuple]] = defaultdict(list)
    for table, key_id, *part in connection.execute(_FOREIGN_KEYS):
        parts[table, key_id].append(part)
    keys = defaultdict(list)
    for (table, _), columns in parts.items():
        parent, on_delete = columns[0][0], columns[0][3].upper()
        parent_columns = tuple(column[2] for column in columns)
        if None in parent_columns:  # the parent's primary key
            parent_columns = tuple(name for (name,) in connection.execute(_PRIMARY_KEY, (parent,)))
        if len(parent_columns) == len(columns):
            referring = tuple(column[1] for column in columns)
            not_null = any(column[4] for column in columns)
            keys[parent.lower()].append(_Key(table, referring, parent_columns, on_delete, not_null))
    return keys


def _holds(keys: dict[str, list[_Key]], table: str, alias: str, path: tuple[str, ...], through: str) -> Iterator:
    """Given the foreign keys, a table, its rows' alias, the tables on the way
    (cascades are not followed round) and how they are named, yield (what
    holds a row, the SQL condition that it does)."""
    for key in keys.get(table.lower(), ()):
        referring = f"held_{len(path)}"
        match = " AND ".join(
            f"{referring}.{_name(column)} = {alias}.{_name(parent)}"
            for column, parent in zip(key.columns, key.parent_columns, strict=True)
        )
        if key.table.lower() == table.lower():  # a row that refers to itself alone does not keep itself
            match += (
                " AND NOT ("
                + " AND ".join(
                    f"{referring}.{_name(column)} IS {referring}.{_name(parent)}"
                    for column, parent in zip(key.columns, key.parent_columns, strict=True)
                )
                + ")"
            )
        exists = f"EXISTS (SELECT 1 FROM {_name(key.table)} AS {referring} WHERE {match}"
        if key.on_delete == "CASCADE" and key.table.lower() not in path:
            for label, condition in _holds(
                keys, key.table, referring, (*path, key.table.lower()), f"{through} through {key.table}"
            ):
                yield label, f"{exists} AND {condition})"
        elif key.on_delete in ("NO ACTION", "RESTRICT") or (key.on_delete == "SET NULL" and key.not_null):
            yield f"{key.table} ({', '.join(key.columns)}){through}", f"{exists})"


def _name(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
