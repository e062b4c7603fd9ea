"""retention: a refusal that no foreign key declares, which maintctl finds
only as it deletes (a trigger, a SET DEFAULT to no row), leaves those rows,
named, and the rest go; one that undoes its whole transaction (at COMMIT, or
a trigger's ROLLBACK) leaves only the batch it is found in; a foreign key
SQLite refuses every deletion for is named before anything is deleted."""

import pytest
from test_retention_references import SESSIONS, SESSIONS_RULE, audited, retention, rules, session_ids, sessions

ONE_AT_A_TIME = {"MAINTCTL_BATCH_SIZE": "1"}
NOTES_RULE = (
    '[[retention]]\nname = "old-notes"\ntable = "session_notes"\ntimestamp = "written_at"\nolder_than = "30d"\n'
)

# What refuses a deletion that no foreign key declares: maintctl finds it only as it deletes.
UNFORESEEN = {
    "a trigger that aborts": (
        (
            "CREATE TRIGGER keep_vip BEFORE DELETE ON sessions WHEN old.user_id = 1002"
            " BEGIN SELECT RAISE(ABORT, 'VIP sessions stay'); END"
        ),
        "VIP sessions stay",
    ),
    "a trigger that fails": (
        (
            "CREATE TRIGGER keep_vip BEFORE DELETE ON sessions WHEN old.user_id = 1002"
            " BEGIN SELECT RAISE(FAIL, 'VIP sessions stay'); END"
        ),
        "VIP sessions stay",
    ),
    "SET DEFAULT to no row": (
        (
            "CREATE TABLE session_notes (session_id INTEGER DEFAULT 0 REFERENCES sessions (id) ON DELETE SET DEFAULT);"
            " INSERT INTO session_notes VALUES (2)"
        ),
        "FOREIGN KEY constraint failed",
    ),
}


@pytest.mark.parametrize("schema, why", UNFORESEEN.values(), ids=UNFORESEEN)
def test_a_refusal_no_foreign_key_declares_leaves_that_row_named_and_the_rest_go(maintctl, core, schema, why):
    core.sql(SESSIONS)
    core.connection.executescript(schema)
    sessions(core, 5)
    rules(core, SESSIONS_RULE)

    result = retention(maintctl, core)
    again = retention(maintctl, core)

    assert result.code == 0, result
    assert result.action("retention")["counts"]["deleted"] == 4
    assert result.action("retention")["warnings"] == [
        f"rule old-sessions: sessions id 2: deleting it failed ({why}); not deleted"
    ]
    assert session_ids(core) == [2]
    assert audited(core)[0] == ("old-sessions", {"rows": 4})
    assert (again.code, again.action("retention")["counts"]["deleted"]) == (0, 0)


KEEPS_VIPS_SILENTLY = (
    "CREATE TRIGGER keep_vip BEFORE DELETE ON sessions WHEN old.user_id = 1002 BEGIN SELECT RAISE(IGNORE); END"
)
ABORTS_FOR_1004 = (
    "CREATE TRIGGER keep_1004 BEFORE DELETE ON sessions WHEN old.user_id = 1004 BEGIN SELECT RAISE(ABORT, 'kept'); END"
)


@pytest.mark.parametrize("aborting", [False, True], ids=["in a batch", "a row at a time"])
def test_a_row_a_trigger_keeps_without_a_word_is_named_as_left(maintctl, core, aborting):
    core.sql(SESSIONS)
    core.sql(KEEPS_VIPS_SILENTLY)
    if aborting:
        core.sql(ABORTS_FOR_1004)
    sessions(core, 5)
    rules(core, SESSIONS_RULE)

    result = retention(maintctl, core)
    again = retention(maintctl, core)

    assert result.code == 0, result
    left = ["rule old-sessions: sessions id 2: a trigger kept it (RAISE(IGNORE)); not deleted"]
    if aborting:
        left.append("rule old-sessions: sessions id 4: deleting it failed (kept); not deleted")
    assert result.action("retention")["counts"]["deleted"] == 5 - len(left)
    assert sorted(result.action("retention")["warnings"]) == left
    assert session_ids(core) == ([2, 4] if aborting else [2])
    assert sorted(again.action("retention")["warnings"]) == left  # said again each pass, as rows held are


# Refusals that undo the whole transaction: found at its COMMIT, or by a trigger that rolls it back.
UNDOING = {
    "a deferred SET DEFAULT to no row": (
        (
            "CREATE TABLE session_notes (session_id INTEGER DEFAULT 0 REFERENCES sessions (id) ON DELETE SET DEFAULT"
            " DEFERRABLE INITIALLY DEFERRED); INSERT INTO session_notes VALUES (2)"
        ),
        "FOREIGN KEY constraint failed",
    ),
    "a trigger that rolls back": (
        (
            "CREATE TRIGGER keep_vip BEFORE DELETE ON sessions WHEN old.user_id = 1002"
            " BEGIN SELECT RAISE(ROLLBACK, 'VIP sessions stay'); END"
        ),
        "VIP sessions stay",
    ),
}


@pytest.mark.parametrize("schema, why", UNDOING.values(), ids=UNDOING)
def test_a_refusal_that_undoes_its_transaction_leaves_that_batch_named_and_the_rest_go(maintctl, core, schema, why):
    core.sql(SESSIONS)
    core.connection.executescript(schema)
    sessions(core, 5)
    rules(core, SESSIONS_RULE)

    result = retention(maintctl, core, env={**ONE_AT_A_TIME, "MAINTCTL_HOLD": "0"})

    assert result.code == 0, result
    assert result.action("retention")["counts"]["deleted"] == 4
    assert result.action("retention")["warnings"] == [
        f"rule old-sessions: sessions id 2: its transaction failed ({why}); not deleted"
    ]
    assert session_ids(core) == [2]
    assert audited(core)[0] == ("old-sessions", {"rows": 4})


def test_a_foreign_key_sqlite_refuses_every_deletion_for_is_named_before_anything_is_deleted(maintctl, core):
    core.sql(SESSIONS)
    core.sql("CREATE TABLE session_notes (user_id INTEGER REFERENCES sessions (user_id))")  # not unique alone
    sessions(core, 3)
    rules(core, NOTES_RULE.replace("session_notes", "sessions").replace("written_at", "started_at"), SESSIONS_RULE)
    named = (
        'rule old-notes: SQLite refuses to delete from sessions: foreign key mismatch - "session_notes" referencing'
        ' "sessions"'
    )

    shown = retention(maintctl, core, "--dry-run")
    result = retention(maintctl, core)

    assert (shown.code, shown.action("retention")["error"]) == (1, named)
    assert (result.code, result.action("retention")["error"]) == (1, named)
    assert session_ids(core) == [1, 2, 3]


def test_a_transaction_of_many_batches_undone_is_tried_again_a_batch_at_a_time(maintctl, core):
    core.sql(SESSIONS)
    core.connection.executescript(UNDOING["a deferred SET DEFAULT to no row"][0])
    sessions(core, 5)
    rules(core, SESSIONS_RULE)

    result = retention(maintctl, core, env={"MAINTCTL_BATCH_SIZE": "2"})  # one transaction of three batches

    assert result.code == 0, result
    assert result.action("retention")["counts"]["deleted"] == 3
    assert result.action("retention")["warnings"] == [
        (
            "rule old-sessions: sessions id 1 to id 2 (2 rows): their transaction failed (FOREIGN KEY constraint failed);"
            " not deleted"
        )
    ]
    assert session_ids(core) == [1, 2]
    assert audited(core)[0] == ("old-sessions", {"rows": 3})


def test_a_table_that_refuses_every_deletion_has_a_hundred_rows_named_and_the_rest_counted(maintctl, core):
    core.sql(SESSIONS)
    core.sql("CREATE TRIGGER append_only BEFORE DELETE ON sessions BEGIN SELECT RAISE(ABORT, 'sessions are kept'); END")
    sessions(core, 105)
    rules(core, SESSIONS_RULE)

    result = retention(maintctl, core, env={"MAINTCTL_BATCH_SIZE": "40"})

    warnings = result.action("retention")["warnings"]
    assert result.code == 0, result
    assert result.action("retention")["counts"]["deleted"] == 0
    assert len(warnings) == 101
    assert warnings[0] == "rule old-sessions: sessions id 1: deleting it failed (sessions are kept); not deleted"
    assert warnings[-1] == "rule old-sessions: and 5 more rows of sessions whose deletion failed; not deleted"
    assert audited(core) == []
    assert len(session_ids(core)) == 105
