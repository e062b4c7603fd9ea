"""Shapes the app's tables may take beyond the contract's columns: another
table that holds a row by a foreign key (the row is reported by what holds
it and left; the others are done, in batches of 1), and memory_tags WITHOUT
ROWID."""

import json

import pytest

LATER = "2026-11-26T12:00:00.000Z"
BATCHES_OF_ONE = {"MAINTCTL_BATCH_SIZE": "1"}

# Foreign keys that keep SQLite from deleting the memory they refer to.
HOLDING = {
    "no action": "memory_id TEXT REFERENCES memories (id)",
    "restrict": "memory_id TEXT REFERENCES memories (id) ON DELETE RESTRICT",
    "deferred": "memory_id TEXT REFERENCES memories (id) DEFERRABLE INITIALLY DEFERRED",
    "set null into not null": "memory_id TEXT NOT NULL REFERENCES memories ON DELETE SET NULL",
}


def expire_pending(maintctl, core, *extra):
    return maintctl("expire-pending", "--db", core.path, "--now", LATER, "--json", *extra, env=BATCHES_OF_ONE)


def pending_ids(core) -> list[str]:
    return [memory_id for (memory_id,) in core.sql("SELECT id FROM memories WHERE status = 'pending' ORDER BY id")]


@pytest.mark.parametrize("column", HOLDING.values(), ids=HOLDING)
def test_a_memory_another_table_holds_is_reported_and_the_others_expire(maintctl, core, column):
    core.sql(f"CREATE TABLE memory_shares ({column}, shared_with INTEGER)")
    core.memory("held", status="pending", expires="2026-10-01")  # first in the scan
    core.memory("free", status="pending", expires="2026-11-01")
    core.sql("INSERT INTO memory_shares VALUES ('held', 1002)")

    shown = expire_pending(maintctl, core, "--dry-run")
    first = expire_pending(maintctl, core)
    second = expire_pending(maintctl, core)

    warning = "memory held: memory_shares (memory_id) still refers to it; not expired"
    assert [item["id"] for item in shown.action("expire-pending")["planned"]] == ["free"]
    assert first.code == 0, first
    assert first.action("expire-pending")["counts"]["expired"] == 1
    assert (first.action("expire-pending")["warnings"], first.action("expire-pending")["notes"]) == ([warning], [])
    assert pending_ids(core) == ["held"]
    assert (second.code, second.action("expire-pending")["warnings"]) == (0, [warning])


def test_a_row_held_through_a_cascade_is_named_with_the_table_on_the_way(maintctl, core):
    core.sql("CREATE TABLE reminder_log (reminder_id TEXT REFERENCES reminders (id), sent_at TEXT)")
    core.memory("held", status="pending", expires="2026-10-01")
    core.memory("free", status="pending", expires="2026-11-01")
    core.reminder("r1", memory_id="held", fire_at="2027-01-01")  # deleted with its memory, by cascade
    core.reminder("r2", memory_id="free", fire_at="2027-01-01")
    core.sql("INSERT INTO reminder_log VALUES ('r1', '2026-10-02')")

    result = expire_pending(maintctl, core)

    assert result.code == 0, result
    assert result.action("expire-pending")["warnings"] == [
        "memory held: reminder_log (reminder_id) through reminders still refers to it; not expired"
    ]
    assert pending_ids(core) == ["held"]
    assert core.sql("SELECT id FROM reminders") == [("r1",)]


def test_a_tag_another_table_holds_is_reported_and_the_others_expire(maintctl, core):
    core.sql(
        "CREATE TABLE tag_votes (memory_id TEXT, tag TEXT, user_id INTEGER,"
        " FOREIGN KEY (memory_id, tag) REFERENCES memory_tags (memory_id, tag))"
    )
    core.tag("m1", "held", suggested_at="2026-01-01")
    core.tag("m1", "free", suggested_at="2026-02-01")
    core.sql("INSERT INTO tag_votes VALUES ('m1', 'held', 1002)")

    result = maintctl("expire-tags", "--db", core.path, "--now", LATER, "--json", env=BATCHES_OF_ONE)

    assert result.code == 0, result
    assert result.action("expire-tags")["counts"] == {"expired": 1}
    assert result.action("expire-tags")["warnings"] == [
        "tag 'held' on memory m1: tag_votes (memory_id, tag) still refers to it; not expired"
    ]
    assert core.sql("SELECT tag FROM memory_tags") == [("held",)]


def test_cascades_that_let_a_memory_go_hold_nothing(maintctl, core):
    core.sql("CREATE TABLE memory_links (memory_id TEXT REFERENCES memories (id) ON DELETE CASCADE, url TEXT)")
    core.sql("CREATE TABLE memory_notes (memory_id TEXT REFERENCES memories (id) ON DELETE SET NULL, note TEXT)")
    core.memory("p1", status="pending", expires="2026-11-01")
    core.sql("INSERT INTO memory_links VALUES ('p1', 'https://example.com')")
    core.sql("INSERT INTO memory_notes VALUES ('p1', 'note')")

    result = expire_pending(maintctl, core)

    assert result.code == 0, result
    assert result.action("expire-pending")["counts"]["expired"] == 1
    assert result.action("expire-pending")["warnings"] == []
    assert core.sql("SELECT count(*) FROM memory_links") == [(0,)]
    assert core.sql("SELECT memory_id FROM memory_notes") == [(None,)]


def test_memory_tags_without_rowid_are_claimed_by_their_primary_key(maintctl, core):
    core.sql("DROP TABLE memory_tags")
    core.sql(
        "CREATE TABLE memory_tags (memory_id TEXT NOT NULL REFERENCES memories (id) ON DELETE CASCADE,"
        " tag TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'suggested', suggested_at TEXT,"
        " PRIMARY KEY (memory_id, tag)) WITHOUT ROWID"
    )
    assert maintctl("init-db", "--db", core.path).code == 0  # its indexes, again
    core.tag("m1", "old", suggested_at="2026-01-01")
    core.tag("m1", "older", suggested_at="2025-12-01")
    core.tag("m2", "old", suggested_at="2026-01-01 10:00:00")
    core.tag("m2", "new", suggested_at="2026-11-25T00:00:00.000Z")
    core.tag("m2", "kept", suggested_at="2026-01-01", status="confirmed")
    run = ("expire-tags", "--db", core.path, "--now", LATER, "--json")

    shown = maintctl(*run, "--dry-run")
    first = maintctl(*run, env={"MAINTCTL_BATCH_SIZE": "2"})
    second = maintctl(*run)

    assert len(shown.action("expire-tags")["planned"]) == 3
    assert first.code == 0, first
    assert (first.action("expire-tags")["counts"], first.action("expire-tags")["notes"]) == ({"expired": 3}, [])
    assert core.sql("SELECT memory_id, tag FROM memory_tags ORDER BY memory_id, tag") == [("m2", "kept"), ("m2", "new")]
    audited = sorted((row[1], json.loads(row[4])["tag"]) for row in core.audit("memory"))
    assert audited == [("m1", "old"), ("m1", "older"), ("m2", "old")]
    assert (second.code, second.action("expire-tags")["counts"]) == (0, {"expired": 0})


# Constraints of the app's that refuse a recurring reminder's next one.
REFUSING = {
    "unique": "CREATE UNIQUE INDEX reminders_one_per_slot ON reminders (memory_id, fire_at)",
    "trigger": (
        "CREATE TRIGGER no_reminders_at_midnight BEFORE INSERT ON reminders WHEN NEW.fire_at LIKE '%T00:00:00.000Z'"
        " BEGIN SELECT RAISE(ABORT, 'no reminders at midnight'); END"
    ),
}


# A table of the app's may say what a conflict does (ROLLBACK would end the
# transaction, IGNORE and REPLACE would not say so): maintctl's own OR ABORT
# holds whatever it says.
for _clause in ("ROLLBACK", "IGNORE", "REPLACE"):
    REFUSING[f"unique on conflict {_clause.lower()}"] = (
        "CREATE TABLE reminders (id TEXT PRIMARY KEY, memory_id TEXT, owner_user_id INTEGER, fire_at TEXT,"
        f" recurrence_minutes INTEGER, fired INTEGER NOT NULL DEFAULT 0, UNIQUE (memory_id, fire_at) ON CONFLICT {_clause})"
    )


@pytest.mark.parametrize("constraint", REFUSING.values(), ids=REFUSING)
def test_a_next_reminder_the_app_refuses_leaves_that_one_fired_once_and_the_others_fire(maintctl, core, constraint):
    if constraint.startswith("CREATE TABLE"):
        core.sql("DROP TABLE reminders")
        core.sql(constraint)
    core.reminder("refused", fire_at="2026-11-25T23:00:00.000Z", recurrence=60)  # next: midnight, where r2 is
    core.reminder("r2", fire_at="2026-11-26T00:00:00.000Z")
    core.reminder("r3", memory_id="m2", fire_at="2026-11-25T22:15:00.000Z", recurrence=60)  # next: 00:15
    if not constraint.startswith("CREATE TABLE"):
        core.sql(constraint)

    result = maintctl("fire-reminders", "--db", core.path, "--now", "2026-11-25T23:30:00.000Z", "--json")

    assert result.code == 0, result
    assert result.action("fire-reminders")["counts"] == {"fired": 2, "created": 1}
    (warning,) = result.action("fire-reminders")["warnings"]
    assert warning.startswith("reminder refused: its next reminder was refused (")
    assert warning.endswith("); fired once, no next reminder")
    assert core.sql("SELECT id FROM reminders WHERE fired = 1 ORDER BY id") == [("r3",), ("refused",)]
    assert core.sql("SELECT fire_at FROM reminders WHERE fired = 0 ORDER BY fire_at") == [
        ("2026-11-26T00:00:00.000Z",),
        ("2026-11-26T00:15:00.000Z",),
    ]
    assert len([row for row in core.audit("reminder") if row[2] == "created"]) == 1
