"""retention: batches follow the rows that exist, whatever their ids (sparse,
a huge gap, negative, SQLite's extremes), and whatever the table's key (its
INTEGER PRIMARY KEY the rowid or not, a column hiding the rowid's name,
WITHOUT ROWID); a table it cannot or must not delete from is refused in one
line naming the rule; a `where` stays inside its own parentheses."""

import json

import pytest
from conftest import NOW, RULES

SMALLEST, LARGEST = -(2**63), 2**63 - 1
OLD, YOUNG = "2025-01-01T00:00:00.000Z", "2026-11-01T00:00:00.000Z"
BATCHES_OF_TWO = {"MAINTCTL_BATCH_SIZE": "2"}


def rules(core, text: str = RULES):
    (core.path.parent / "maintctl.toml").write_text(text)


def rule(table: str, timestamp: str = "at", where: str | None = None) -> str:
    condition = f"where = {json.dumps(where)}\n" if where else ""
    return f'[[retention]]\nname = "old-visits"\ntable = "{table}"\ntimestamp = "{timestamp}"\nolder_than = "30d"\n' + (
        condition
    )


def retention(maintctl, core, *extra, env=None, timeout=20):
    return maintctl("retention", "--db", core.path, "--now", NOW, "--json", *extra, env=env, timeout=timeout)


def memory_audit_ids(core) -> list[int]:
    return [row_id for (row_id,) in core.sql("SELECT id FROM audit_log WHERE entity_type = 'memory' ORDER BY id")]


IDS = {
    "sparse": [3, 10, 11, 500, 90_000, 90_001],
    "a huge gap": [1, 2, 10**12, 10**12 + 1, 10**15],
    "negative": [-50, -7, -1, 0, 4],
    "the extremes": [SMALLEST, SMALLEST + 1, -1, 0, 1, LARGEST - 1, LARGEST],
}


@pytest.mark.parametrize("ids", IDS.values(), ids=IDS)
def test_batches_follow_the_rows_that_exist_whatever_their_ids(maintctl, core, ids):
    rules(core)
    core.insert_many(
        "INSERT INTO audit_log (id, entity_type, entity_id, action, actor, created_at) VALUES (?, 'memory', ?, 'x', 'app', ?)",
        ((row_id, f"m{index}", OLD if index % 2 == 0 else YOUNG) for index, row_id in enumerate(ids)),
    )
    young = [row_id for index, row_id in enumerate(ids) if index % 2]

    shown = retention(maintctl, core, "--dry-run", env=BATCHES_OF_TWO)
    result = retention(maintctl, core, env=BATCHES_OF_TWO)
    again = retention(maintctl, core, env=BATCHES_OF_TWO)

    old = len(ids) - len(young)
    assert result.code == 0, result
    assert shown.action("retention")["planned"][0]["rows"] == old
    assert result.action("retention")["counts"] == {"deleted": old, "deleted:old-audit": old}
    assert memory_audit_ids(core) == young
    assert again.action("retention")["counts"] == {"deleted": 0, "deleted:old-audit": 0}
    (details,) = core.sql("SELECT details FROM audit_log WHERE entity_type = 'retention' ORDER BY id LIMIT 1")[0]
    assert json.loads(details) == {"rows": old}


# Tables that work: their rows are found by the key SQLite keeps them by.
MIXED_IDS = [SMALLEST, -3, 0, 7, 10**12, LARGEST, "a", "B", "c"]
WORKING = {
    "INTEGER PRIMARY KEY, the rowid": "CREATE TABLE visits (id INTEGER PRIMARY KEY, at TEXT)",  # integers only
    "INT PRIMARY KEY, not the rowid": "CREATE TABLE visits (id INT PRIMARY KEY, at TEXT)",
    "INTEGER PRIMARY KEY DESC, not the rowid": "CREATE TABLE visits (id INTEGER PRIMARY KEY DESC, at TEXT)",
    "a text primary key": "CREATE TABLE visits (id TEXT PRIMARY KEY, at TEXT)",
    "no primary key": "CREATE TABLE visits (id, at TEXT)",
    "a column named rowid": "CREATE TABLE visits (rowid TEXT, id, at TEXT)",
    "WITHOUT ROWID": "CREATE TABLE visits (id INTEGER PRIMARY KEY, at TEXT) WITHOUT ROWID",
    "WITHOUT ROWID, a two-column key": (
        "CREATE TABLE visits (id, part TEXT COLLATE NOCASE, at TEXT, PRIMARY KEY (id, part)) WITHOUT ROWID"
    ),
    "WITHOUT ROWID, a descending key": (
        "CREATE TABLE visits (id, part TEXT, at TEXT, PRIMARY KEY (id DESC, part)) WITHOUT ROWID"
    ),
}


@pytest.mark.parametrize("table_sql", WORKING.values(), ids=WORKING)
def test_a_rule_works_whatever_key_its_table_has(maintctl, core, table_sql):
    core.sql(table_sql)
    rules(core, rule("visits"))
    columns = [name for (name,) in core.sql("SELECT name FROM pragma_table_info('visits')")]
    ids = [*MIXED_IDS[:6], 8, 9, 10] if table_sql == WORKING["INTEGER PRIMARY KEY, the rowid"] else MIXED_IDS
    for index, row_id in enumerate(ids):
        row = {"id": row_id, "part": "xY"[index % 2], "rowid": f"r{index % 2}", "at": OLD if index % 2 else YOUNG}
        present = [name for name in columns if name in row]  # "rowid": a column of that name, repeated
        marks = ", ".join("?" * len(present))
        core.sql(f"INSERT INTO visits ({', '.join(present)}) VALUES ({marks})", *(row[name] for name in present))
    young = sorted(str(row_id) for index, row_id in enumerate(ids) if index % 2 == 0)

    shown = retention(maintctl, core, "--dry-run", env=BATCHES_OF_TWO)
    result = retention(maintctl, core, env=BATCHES_OF_TWO)

    assert result.code == 0, result
    assert shown.action("retention")["planned"][0]["rows"] == 4
    assert result.action("retention")["counts"] == {"deleted": 4, "deleted:old-visits": 4}
    assert sorted(str(row_id) for (row_id,) in core.sql("SELECT id FROM visits")) == young


REFUSED = {
    "a view": (
        "CREATE VIEW visits AS SELECT id, created_at AS at FROM audit_log",
        "visits",
        "rule old-visits: visits is a view, not a table",
    ),
    "a virtual table": (
        "CREATE VIRTUAL TABLE visits USING fts5 (at)",
        "visits",
        "rule old-visits: visits is a virtual table (retention deletes from tables the app writes itself)",
    ),
    "a virtual table's own storage": (
        None,
        "memories_fts_content",
        "rule old-visits: memories_fts_content is a virtual table's own storage (a shadow table)",
    ),
    "SQLite's own table": (
        "CREATE TABLE counters (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT)",
        "sqlite_sequence",
        "rule old-visits: sqlite_sequence is SQLite's own table",
    ),
    "maintctl's own table": (None, "maintctl_outbox", "rule old-visits: maintctl_outbox is maintctl's own table"),
    "a table-valued function": (None, "json_each", "rule old-visits: table json_each is missing"),
    "the rowid's three names taken": (
        "CREATE TABLE visits (rowid TEXT, _rowid_ TEXT, oid TEXT, at TEXT)",
        "visits",
        "rule old-visits: visits has columns named rowid, _rowid_ and oid, which hide the rowid it is walked by",
    ),
}


@pytest.mark.parametrize("table_sql, table, named", REFUSED.values(), ids=REFUSED)
def test_a_table_retention_cannot_or_must_not_delete_from_is_refused_in_one_line(
    maintctl, core, table_sql, table, named
):
    if table_sql:
        core.sql(table_sql)
    columns = [name for (name,) in core.sql("SELECT name FROM pragma_table_info(?)", table)]
    rules(core, rule(table, timestamp=columns[-1]))
    core.reminder("r1")

    result = maintctl("run-all", "--db", core.path, "--now", NOW, "--json")

    assert result.code == 1, result
    assert result.action("retention")["error"] == named
    assert result.action("fire-reminders")["counts"]["fired"] == 1
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    "where, named",
    [
        ("action != 'fired') OR (1 = 1", "where: its parentheses do not pair up"),
        ("(action != 'fired'", "where: its parentheses do not pair up"),
        ("action != 'fired' -- keep the firings", "where: a comment (-- or /*) is not allowed"),
        ("action != 'fired' /* keep */", "where: a comment (-- or /*) is not allowed"),
        ("action != 'fired'; DELETE FROM users", "where: a ; is not allowed"),
        ("action != :kept", "where: a parameter (:kept) is not allowed"),
        ("action != 'fired", "where: a quote is not closed"),
    ],
)
def test_a_where_that_would_reach_outside_its_parentheses_is_refused(maintctl, core, where, named):
    rules(core, RULES.replace("\"action != 'fired'\"", json.dumps(where)))
    core.insert_many(
        "INSERT INTO audit_log (entity_type, entity_id, action, actor, created_at) VALUES ('memory', ?, 'x', 'app', ?)",
        [("old", OLD), ("young", YOUNG)],
    )

    result = retention(maintctl, core)

    assert result.code == 2, result
    assert result.action("retention")["error"].endswith(f"rule 1 ('old-audit'): {named}")
    assert len(memory_audit_ids(core)) == 2


def test_a_where_sqlite_cannot_read_fails_retention_naming_the_rule(maintctl, core):
    rules(core, RULES.replace("action != 'fired'", "outcome != 'fired'"))
    core.insert_many(
        "INSERT INTO audit_log (entity_type, entity_id, action, actor, created_at) VALUES ('memory', ?, 'x', 'app', ?)",
        [("old", OLD)],
    )

    result = retention(maintctl, core)

    assert result.code == 1, result
    assert result.action("retention")["error"] == "rule old-audit: where: no such column: outcome"
    assert len(memory_audit_ids(core)) == 1


def test_a_timestamp_column_is_found_whatever_its_case_or_if_it_is_generated(maintctl, core):
    core.sql(
        "CREATE TABLE visits (id INTEGER PRIMARY KEY, at_seconds INTEGER,"
        " at TEXT GENERATED ALWAYS AS (datetime(at_seconds, 'unixepoch')) VIRTUAL)"
    )
    core.sql("INSERT INTO visits (at_seconds) VALUES (1735689600), (1793404800)")  # 2025-01-01, 2026-10-31
    rules(core, rule("Visits", timestamp="AT"))

    result = retention(maintctl, core)

    assert result.code == 0, result
    assert result.action("retention")["counts"] == {"deleted": 1, "deleted:old-visits": 1}
    assert core.sql("SELECT at FROM visits") == [("2026-10-31 00:00:00",)]


def test_keys_of_text_python_cannot_read_are_walked_and_named_by_their_bytes(maintctl, core):
    core.sql("CREATE TABLE visits (id TEXT PRIMARY KEY, at TEXT) WITHOUT ROWID")
    core.sql("CREATE TABLE visit_notes (visit_id TEXT REFERENCES visits (id))")
    keys = [
        "CAST(X'ff' AS TEXT)",
        "CAST(X'ff00' AS TEXT)",
        "'a' || char(0) || 'b'",
        "X'ff'",
        "'plain'",
        "CAST(X'fe' AS TEXT)",
    ]
    for index, key in enumerate(keys):
        core.sql(f"INSERT INTO visits VALUES ({key}, ?)", OLD if index < 5 else YOUNG)
    core.sql("INSERT INTO visit_notes VALUES (CAST(X'ff00' AS TEXT))")
    rules(core, rule("visits"))

    shown = retention(maintctl, core, "--dry-run", env=BATCHES_OF_TWO)
    result = retention(maintctl, core, env=BATCHES_OF_TWO)

    held = "rule old-visits: visits id X'ff00': visit_notes (visit_id) still refers to it; not deleted"
    assert result.code == 0, result
    assert (shown.action("retention")["planned"][0]["rows"], shown.action("retention")["warnings"]) == (4, [held])
    assert (result.action("retention")["counts"]["deleted"], result.action("retention")["warnings"]) == (4, [held])
    assert core.sql("SELECT hex(id) FROM visits ORDER BY id") == [("FE",), ("FF00",)]
