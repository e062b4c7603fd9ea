"""SQL that tells the app's text that Python can read and JSON can carry as it
is (valid UTF-8 without NUL) from text that holds anything else.

Python's sqlite3 decodes every TEXT value a query returns, strictly: one that
is not UTF-8 makes the whole query fail. And a NUL character does not survive
the JSON that guarded statements read their keys from (SQLite's JSON ends a
string at an escaped NUL). So such text is found in SQL, before Python sees it.
"""

from __future__ import annotations

# Text of printable ASCII characters alone is clean; the rest is walked
# character by character: SQLite reads invalid UTF-8 leniently, and writing a
# character out again as char(unicode(...)) gives other bytes exactly where
# those were not the shortest valid UTF-8 of a character (U+FFFE and U+FFFF,
# which SQLite reads as U+FFFD, excepted: they are valid).
_WALK = (
    "WITH RECURSIVE rest(text) AS (SELECT {c} UNION ALL SELECT substr(text, 2) FROM rest WHERE text <> '')"
    " SELECT 1 FROM rest WHERE text <> ''"
    " AND substr(text, 1, 1) NOT IN (char(unicode(text)), char(65534), char(65535))"
)


def clean_sql(column: str) -> str:
    """Given a column, return the SQL condition that it holds text that is
    valid UTF-8 and holds no NUL character (printable ASCII is told at once;
    other text is walked)."""
    return (
        f"(typeof({column}) = 'text' AND instr({column}, char(0)) = 0"
        f" AND CASE WHEN {column} NOT GLOB '*[^ -~]*' THEN 1 ELSE NOT EXISTS ({_WALK.format(c=column)}) END)"
    )


def readable_sql(column: str) -> str:
    """Given a column of the app's, return SQL for its value as Python can
    read it: text that is not clean (see clean_sql) as its bytes, anything
    else as it is."""
    return f"CASE WHEN typeof({column}) <> 'text' OR {clean_sql(column)} THEN {column} ELSE CAST({column} AS BLOB) END"


def unclean_sql(*columns: str) -> str:
    """Given columns, return SQL for why they do not all hold clean text, as
    a warning says it ('is not text', 'holds a NUL character', 'is not valid
    UTF-8'); NULL where they do."""
    not_text = " OR ".join(f"typeof({column}) <> 'text'" for column in columns)
    with_nul = " OR ".join(f"instr({column}, char(0))" for column in columns)
    unclean = " OR ".join(f"NOT {clean_sql(column)}" for column in columns)
    return (
        f"CASE WHEN {not_text} THEN 'is not text' WHEN {with_nul} THEN 'holds a NUL character'"
        f" WHEN {unclean} THEN 'is not valid UTF-8' END"
    )


def bindable(value):
    """Given a value to bind to a statement, return it as SQLite can take it: text
    that holds bytes that are not UTF-8 (a path's, say, as Python gives them)
    with those bytes as U+FFFD; anything else as it is."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return value.encode(errors="surrogateescape").decode(errors="replace")
    return value
