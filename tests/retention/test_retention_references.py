"""retention: rows that another table still refers to by a foreign key that
keeps them (NO ACTION, RESTRICT, deferred or not, by the primary key, another
unique column or two columns, by the table itself) are left and named, the
rest deleted, and the dry run says so; cascades and SET NULL hold nothing.
(test_retention_refusals.py: what no foreign key declares.)"""

import json

import pytest
from conftest import NOW

OLD, YOUNG = "2026-01-01T00:00:00.000Z", "2026-11-20T00:00:00.000Z"
ONE_AT_A_TIME = {"MAINTCTL_BATCH_SIZE": "1"}

SESSIONS = (
    "CREATE TABLE sessions (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, token TEXT NOT NULL UNIQUE,"
    " started_at TEXT NOT NULL, UNIQUE (user_id, token))"
)
SESSIONS_RULE = (
    '[[retention]]\nname = "old-sessions"\ntable = "sessions"\ntimestamp = "started_at"\nolder_than = "30d"\n'
)
NOTES_RULE = (
    '[[retention]]\nname = "old-notes"\ntable = "session_notes"\ntimestamp = "written_at"\nolder_than = "30d"\n'
)


def rules(core, *texts: str):
    (core.path.parent / "maintctl.toml").write_text("\n".join(texts))


def retention(maintctl, core, *extra, env=None):
    return maintctl("retention", "--db", core.path, "--now", NOW, "--json", *extra, env=env)


def sessions(core, count: int, started_at: str = OLD, first: int = 1) -> None:
    core.insert_many(
        "INSERT INTO sessions (id, user_id, token, started_at) VALUES (?, ?, ?, ?)",
        ((index, 1000 + index, f"t{index}", started_at) for index in range(first, first + count)),
    )


def session_ids(core) -> list[int]:
    return [session_id for (session_id,) in core.sql("SELECT id FROM sessions ORDER BY id")]


def audited(core) -> list[tuple[str, dict]]:
    rows = core.sql("SELECT entity_id, details FROM audit_log WHERE entity_type = 'retention' ORDER BY id")
    return [(name, json.loads(details)) for name, details in rows]


def test_one_old_session_a_note_refers_to_is_left_and_named_and_the_other_99_go(maintctl, core):
    core.sql(SESSIONS)
    core.sql(
        "CREATE TABLE session_notes (id INTEGER PRIMARY KEY, session_id INTEGER REFERENCES sessions (id), note TEXT)"
    )
    sessions(core, 100)
    core.sql("INSERT INTO session_notes (session_id, note) VALUES (42, 'keep this one')")
    rules(core, SESSIONS_RULE)
    warning = "rule old-sessions: sessions id 42: session_notes (session_id) still refers to it; not deleted"

    shown = retention(maintctl, core, "--dry-run")
    first = retention(maintctl, core)
    second = retention(maintctl, core)

    assert shown.code == 0, shown
    assert shown.action("retention")["planned"][0]["rows"] == 99
    assert shown.action("retention")["warnings"] == [warning]
    assert first.code == 0, first
    assert first.action("retention")["counts"] == {"deleted": 99, "deleted:old-sessions": 99}
    assert first.action("retention")["warnings"] == [warning]
    assert session_ids(core) == [42]
    assert audited(core) == [("old-sessions", {"rows": 99})]
    assert (second.code, second.action("retention")["counts"]["deleted"]) == (0, 0)
    assert second.action("retention")["warnings"] == [warning]


# How session_notes refers to sessions, and its one note, which keeps session 2.
HOLDING = {
    "no action": ("session_id INTEGER REFERENCES sessions (id)", "session_id", "(2)"),
    "restrict": ("session_id INTEGER REFERENCES sessions ON DELETE RESTRICT", "session_id", "(2)"),
    "deferred": ("session_id INTEGER REFERENCES sessions (id) DEFERRABLE INITIALLY DEFERRED", "session_id", "(2)"),
    "set null into not null": (
        "session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE SET NULL",
        "session_id",
        "(2)",
    ),
    "a unique column": ("token TEXT REFERENCES sessions (token)", "token", "('t2')"),
    "two columns": (
        "user_id INTEGER, token TEXT, FOREIGN KEY (user_id, token) REFERENCES sessions (user_id, token)",
        "user_id, token",
        "(1002, 't2')",
    ),
}


@pytest.mark.parametrize("columns, referring, values", HOLDING.values(), ids=HOLDING)
def test_a_session_a_foreign_key_keeps_is_left_whatever_the_key(maintctl, core, columns, referring, values):
    core.sql(SESSIONS)
    core.sql(f"CREATE TABLE session_notes ({columns})")
    sessions(core, 4)
    sessions(core, 1, YOUNG, first=5)
    core.sql(f"INSERT INTO session_notes ({referring}) VALUES {values}")
    rules(core, SESSIONS_RULE)

    shown = retention(maintctl, core, "--dry-run", env=ONE_AT_A_TIME)
    result = retention(maintctl, core, env=ONE_AT_A_TIME)

    warning = f"rule old-sessions: sessions id 2: session_notes ({referring}) still refers to it; not deleted"
    assert (shown.action("retention")["planned"][0]["rows"], shown.action("retention")["warnings"]) == (3, [warning])
    assert result.code == 0, result
    assert (result.action("retention")["counts"]["deleted"], result.action("retention")["warnings"]) == (3, [warning])
    assert session_ids(core) == [2, 5]


def test_cascading_and_set_null_children_hold_nothing(maintctl, core):
    core.sql(SESSIONS)
    core.sql("CREATE TABLE session_events (session_id INTEGER REFERENCES sessions (id) ON DELETE CASCADE, kind TEXT)")
    core.sql("CREATE TABLE session_links (session_id INTEGER REFERENCES sessions (id) ON DELETE SET NULL, url TEXT)")
    sessions(core, 3)
    core.sql("INSERT INTO session_events VALUES (1, 'login'), (2, 'login'), (3, 'login')")
    core.sql("INSERT INTO session_links VALUES (1, 'https://example.com')")
    rules(core, SESSIONS_RULE)

    shown = retention(maintctl, core, "--dry-run")
    result = retention(maintctl, core)

    assert shown.action("retention")["planned"][0]["rows"] == 3
    assert result.code == 0, result
    assert (result.action("retention")["counts"]["deleted"], result.action("retention")["warnings"]) == (3, [])
    assert core.sql("SELECT count(*) FROM session_events") == [(0,)]
    assert core.sql("SELECT session_id FROM session_links") == [(None,)]


def test_a_row_held_through_a_cascade_is_named_with_the_table_on_the_way(maintctl, core):
    core.sql(SESSIONS)
    core.sql(
        "CREATE TABLE session_events (id INTEGER PRIMARY KEY, session_id INTEGER REFERENCES sessions ON DELETE CASCADE)"
    )
    core.sql("CREATE TABLE event_receipts (event_id INTEGER REFERENCES session_events (id))")
    sessions(core, 2)
    core.sql("INSERT INTO session_events VALUES (10, 1), (20, 2)")
    core.sql("INSERT INTO event_receipts VALUES (20)")
    rules(core, SESSIONS_RULE)

    result = retention(maintctl, core)

    assert result.code == 0, result
    assert result.action("retention")["warnings"] == [
        (
            "rule old-sessions: sessions id 2: event_receipts (event_id) through session_events still refers to it;"
            " not deleted"
        )
    ]
    assert session_ids(core) == [2]


def test_rows_of_a_table_that_refers_to_itself_are_judged_as_the_pass_found_them(maintctl, core):
    core.sql(
        "CREATE TABLE threads (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES threads (id), started_at TEXT)"
    )
    core.insert_many(
        "INSERT INTO threads VALUES (?, ?, ?)",
        [
            (1, 2, OLD),  # a reply whose thread (2) comes after it
            (2, None, OLD),  # held by 1 as the pass begins: left, though 1 goes before it
            (3, 3, OLD),  # refers to itself only: nothing else keeps it
            (4, None, OLD),  # held by a young reply
            (5, 4, YOUNG),
        ],
    )
    rules(core, SESSIONS_RULE.replace("old-sessions", "old-threads").replace('"sessions"', '"threads"'))

    shown = retention(maintctl, core, "--dry-run", env=ONE_AT_A_TIME)
    first = retention(maintctl, core, env=ONE_AT_A_TIME)
    second = retention(maintctl, core, env=ONE_AT_A_TIME)

    left = [
        "rule old-threads: threads id 2: threads (parent_id) still refers to it; not deleted",
        "rule old-threads: threads id 4: threads (parent_id) still refers to it; not deleted",
    ]
    assert (shown.action("retention")["planned"][0]["rows"], shown.action("retention")["warnings"]) == (2, left)
    assert first.code == 0, first
    assert (first.action("retention")["counts"]["deleted"], first.action("retention")["warnings"]) == (2, left)
    assert second.action("retention")["counts"]["deleted"] == 1
    assert [row_id for (row_id,) in core.sql("SELECT id FROM threads ORDER BY id")] == [4, 5]


@pytest.mark.parametrize("order", ["notes first", "sessions first"])
def test_references_are_judged_as_the_pass_began_though_another_rule_deletes_them(maintctl, core, order):
    core.sql(SESSIONS)
    core.sql(
        "CREATE TABLE session_notes (id INTEGER PRIMARY KEY, session_id INTEGER REFERENCES sessions (id), written_at TEXT)"
    )
    sessions(core, 3)
    core.sql(f"INSERT INTO session_notes (session_id, written_at) VALUES (1, '{OLD}'), (2, '{YOUNG}')")
    rules(core, *((NOTES_RULE, SESSIONS_RULE) if order == "notes first" else (SESSIONS_RULE, NOTES_RULE)))

    shown = retention(maintctl, core, "--dry-run")
    first = retention(maintctl, core)
    after_first = session_ids(core)
    second = retention(maintctl, core)

    planned = {step["id"]: step["rows"] for step in shown.action("retention")["planned"]}
    assert planned == {"old-notes": 1, "old-sessions": 1}
    assert first.code == 0, first
    assert first.action("retention")["counts"] == {"deleted": 2, "deleted:old-notes": 1, "deleted:old-sessions": 1}
    assert first.action("retention")["warnings"] == shown.action("retention")["warnings"]
    assert len(first.action("retention")["warnings"]) == 2  # sessions 1 and 2
    assert after_first == [1, 2]
    assert second.action("retention")["counts"]["deleted:old-sessions"] == 1  # 1: its note went in the first pass
    assert session_ids(core) == [2]


def test_many_rows_left_are_named_up_to_a_hundred_then_counted(maintctl, core):
    core.sql(SESSIONS)
    core.sql("CREATE TABLE session_notes (session_id INTEGER REFERENCES sessions (id))")
    sessions(core, 110)
    core.insert_many("INSERT INTO session_notes VALUES (?)", ((session_id,) for session_id in range(1, 104)))
    rules(core, SESSIONS_RULE)

    shown = retention(maintctl, core, "--dry-run")
    result = retention(maintctl, core)

    warnings = result.action("retention")["warnings"]
    assert result.code == 0, result
    assert result.action("retention")["counts"]["deleted"] == 7
    assert len(warnings) == 101
    assert warnings[0] == "rule old-sessions: sessions id 1: session_notes (session_id) still refers to it; not deleted"
    assert (
        warnings[-1] == "rule old-sessions: and 3 more rows of sessions that another row still refers to; not deleted"
    )
    assert shown.action("retention")["warnings"] == warnings
