"""One odd row never stops a pass: every value SQLite can hold in the columns
an action reads is acted on by the instant it names (year 0 to 9999 included)
or reported by row, and the rows beside it are done."""

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from conftest import NOW, stream_entries

LATER = "2026-11-26T12:00:00.000Z"  # a few days after the rows' dates below


def run_all(maintctl, core, *extra, env=None):
    return maintctl("run-all", "--db", core.path, "--now", LATER, "--json", *extra, env=env)


def test_a_recurring_reminder_from_year_0_fires_once_with_its_next_occurrence_and_the_rest_fire(maintctl, core):
    core.reminder("ancient", fire_at="0000-06-01 00:00:00", recurrence=60)
    core.reminder("good", memory_id="m2", fire_at="2026-11-26T11:00:00.000Z")

    first = run_all(maintctl, core)
    second = run_all(maintctl, core)

    assert first.code == 0, first
    assert first.action("fire-reminders")["counts"] == {"fired": 2, "created": 1}
    (successor,) = core.sql("SELECT fire_at FROM reminders WHERE fired = 0")
    assert successor == ("2026-11-26T13:00:00.000Z",)  # the first hour after now, counted from year 0
    (created,) = [row for row in core.audit("reminder") if row[2] == "created"]
    days = 146_097 + (date(2026, 11, 26) - date(400, 6, 1)).days  # year 0 has the calendar of year 400
    assert json.loads(created[4])["skipped_occurrences"] == days * 24 + 12  # every hour since, but the one fired
    assert second.action("fire-reminders")["counts"] == {"fired": 0, "created": 0}


# Every column an action compares by instant, with each value that names an
# instant only as far as SQLite goes, or none at all.
TIMESTAMPS = {
    "fire-reminders": ("reminders", "fire_at", "reminder bad: fire_at {value} names no instant; not fired"),
    "expire-pending": (
        "memories",
        "pending_expires_at",
        "memory bad: pending_expires_at {value} names no instant; not expired",
    ),
    "expire-tags": (
        "memory_tags",
        "suggested_at",
        "tag 'bad' on memory m1: suggested_at {value} names no instant; not expired",
    ),
    "requeue-events": ("events", "pending_since", "event bad: pending_since {value} names no instant; not re-prompted"),
}
DUE = ["0000-01-01", "0000-06-01 00:00:00", "0000-12-31T23:59:59.999Z", "1721059.5"]  # year 0: an instant, long due
UNREADABLE = [
    "0000-01-01T00:00:00+05:00",  # 31 December of year -1
    "0",  # Julian day 0: 4714 BC
    "-0001-01-01",
    "now",  # SQLite's clock, not an instant the row names
    "NOW",
    b"2026-11-01",  # bytes, however date-like
]


def add_row(core, action: str, key: str, value) -> None:
    """Give the action a row `key` due by the timestamp value (and pending, suggested or unfired)."""
    if action == "fire-reminders":
        core.reminder(key, memory_id=f"m-{key}", fire_at=value)
    elif action == "expire-pending":
        core.memory(key, status="pending", expires=value)
    elif action == "expire-tags":
        core.tag("m1", key, suggested_at=value)
    else:
        core.event(key, pending_since=value)


def still_there(core, action: str, key: str) -> bool:
    table, column, _ = TIMESTAMPS[action]
    if action == "fire-reminders":
        return core.sql("SELECT fired FROM reminders WHERE id = ?", key) == [(0,)]
    if action == "expire-pending":
        return bool(core.sql("SELECT 1 FROM memories WHERE id = ?", key))
    if action == "expire-tags":
        return bool(core.sql("SELECT 1 FROM memory_tags WHERE tag = ?", key))
    return core.sql("SELECT pending_since FROM events WHERE id = ?", key) != [(LATER,)]


@pytest.mark.parametrize("action", TIMESTAMPS)
@pytest.mark.parametrize("value", DUE)
def test_instants_of_year_0_are_due_and_acted_on(maintctl, core, action, value):
    add_row(core, action, "bad", value)
    add_row(core, action, "good", "2026-11-01T00:00:00.000Z")

    result = run_all(maintctl, core)

    assert result.code == 0, result
    assert result.action(action)["warnings"] == []
    assert not still_there(core, action, "bad")
    assert not still_there(core, action, "good")


@pytest.mark.parametrize("action", TIMESTAMPS)
@pytest.mark.parametrize("value", UNREADABLE, ids=repr)
def test_values_naming_no_instant_are_reported_by_row_and_the_others_done(maintctl, core, action, value):
    add_row(core, action, "bad", value)
    add_row(core, action, "good", "2026-11-01T00:00:00.000Z")

    result = run_all(maintctl, core)
    again = run_all(maintctl, core)

    assert result.code == 0, result
    assert result.action(action)["status"] == "ok"
    assert result.action(action)["warnings"] == [TIMESTAMPS[action][2].format(value=repr(value))]
    assert still_there(core, action, "bad")
    assert not still_there(core, action, "good")
    assert again.action(action)["warnings"] == result.action(action)["warnings"]  # reported on every run


@pytest.mark.parametrize("action", TIMESTAMPS)
def test_a_dry_run_over_odd_rows_is_one_valid_document(maintctl, core, action):
    for index, value in enumerate(DUE + UNREADABLE):
        add_row(core, action, f"odd{index}", value)

    result = maintctl("run-all", "--db", core.path, "--now", LATER, "--json", "--dry-run")

    assert result.code == 0, result
    assert len(result.action(action)["planned"]) == len(DUE)
    assert len(result.action(action)["warnings"]) == len(UNREADABLE)


# SQLite reads any run of spaces and 'T's between date and time: these name
# 00:10 that day, yet sort as text after every canonical instant of the day.
DOUBLED_T = ["2026-11-20TT00:10:00", "2026-11-20TT 00:10", "2026-11-20TTT00:10:00.000Z", "2026-11-20TT00:10+00:00"]
AGES = {"expire-tags": timedelta(days=7), "requeue-events": timedelta(hours=24)}  # how old a row must be to be due


@pytest.mark.parametrize("action", TIMESTAMPS)
@pytest.mark.parametrize("value", DOUBLED_T)
def test_a_doubled_t_is_due_by_the_instant_sqlite_reads_not_hours_later(maintctl, core, action, value):
    add_row(core, action, "doubled", value)
    add_row(core, action, "later", value.replace("00:10", "00:12"))
    now = (datetime(2026, 11, 20, 0, 11, tzinfo=UTC) + AGES.get(action, timedelta(0))).strftime("%Y-%m-%dT%H:%M:%SZ")

    shown = maintctl(action, "--db", core.path, "--now", now, "--json", "--dry-run")
    result = maintctl(action, "--db", core.path, "--now", now, "--json")

    assert [item.get("tag", item["id"]) for item in shown.action(action)["planned"]] == ["doubled"]
    assert result.code == 0, result
    assert result.action(action)["warnings"] == []
    assert next(iter(result.action(action)["counts"].values())) == 1


def test_the_last_instants_of_year_9999_are_not_due_and_not_reported(maintctl, core):
    core.reminder("late", fire_at="9999-12-31 23:59:59.999")
    core.reminder("later", memory_id="m2", fire_at="9999-12-31T23:59:59-05:00")  # past year 9999

    result = run_all(maintctl, core)

    assert result.code == 0, result
    assert result.action("fire-reminders")["counts"]["fired"] == 0
    assert result.action("fire-reminders")["warnings"] == []


class TestRowsKeyedByNullOrBytes:
    """The app's TEXT keys can hold NULL or bytes. Such a row cannot be
    claimed by a guarded statement; it is reported, never planned again and
    again ahead of the rows that can be done."""

    def test_reminders(self, maintctl, core, redis_url):
        core.memory("m1")
        core.sql("INSERT INTO memories (id, owner_user_id, content, status) VALUES (X'6d32', 1001, 'x', 'confirmed')")
        for key, memory in (("NULL", "'m1'"), ("X'0102'", "'m1'"), ("'blob-memory'", "X'6d32'")):
            core.sql(f"INSERT INTO reminders VALUES ({key}, {memory}, 1001, '2026-11-01', NULL, 0)")
        core.reminder("good", memory_id="m1", fire_at="2026-11-01")

        result = maintctl(
            "fire-reminders", "--db", core.path, "--now", LATER, "--json", "--redis-url", redis_url,
            env={"MAINTCTL_BATCH_SIZE": "1"},
        )  # fmt: skip

        assert result.code == 0, result
        assert result.action("fire-reminders")["counts"]["fired"] == 1
        assert sorted(result.action("fire-reminders")["warnings"]) == [
            "reminder NULL: its id or memory_id (m1) is not text; not fired",
            "reminder X'0102': its id or memory_id (m1) is not text; not fired",
            "reminder blob-memory: its id or memory_id (X'6d32') is not text; not fired",
        ]
        assert [entry["msg_id"] for entry in stream_entries(redis_url)] == ["reminder:good:2026-11-01T00:00:00.000Z"]

    def test_memories_tags_and_events(self, maintctl, core):
        core.sql(
            "INSERT INTO memories (id, owner_user_id, content, status, pending_expires_at)"
            " VALUES (X'99', 1001, 'x', 'pending', '2026-11-01')"
        )
        core.memory("gone", status="pending", expires="2026-11-01")
        core.memory("m1")
        core.sql("INSERT INTO memory_tags VALUES ('m1', X'01', 'suggested', '2026-01-01')")
        core.tag("m1", "stale", suggested_at="2026-01-01")
        core.sql("INSERT INTO events VALUES (X'02', 1001, 'x', '2026-12-01', 'pending', '2026-01-01')")
        core.event("asked", pending_since="2026-01-01")

        result = run_all(maintctl, core, env={"MAINTCTL_BATCH_SIZE": "1"})

        assert result.code == 0, result
        assert result.action("expire-pending")["counts"]["expired"] == 1
        assert result.action("expire-pending")["warnings"] == ["memory X'99': its id is not text; not expired"]
        assert result.action("expire-tags")["counts"] == {"expired": 1}
        assert result.action("expire-tags")["warnings"] == [
            "tag b'\\x01' on memory m1: its memory_id or tag is not text; not expired"
        ]
        assert result.action("requeue-events")["counts"] == {"requeued": 1}
        assert result.action("requeue-events")["warnings"] == ["event X'02': its id is not text; not re-prompted"]


def test_bytes_where_the_app_keeps_text_are_sent_as_text(maintctl, core, redis_url):
    core.memory("m1")
    core.sql("UPDATE memories SET content = X'68690021' WHERE id = 'm1'")  # 'hi', NUL, '!' as a BLOB
    core.reminder("r1", memory_id="m1")
    core.event("e1", pending_since="2026-11-01T00:00:00.000Z")
    core.sql("UPDATE events SET description = X'4465ff6e', event_date = X'32303236' WHERE id = 'e1'")

    result = maintctl("run-all", "--db", core.path, "--now", NOW, "--json", "--redis-url", redis_url)

    assert result.code == 0, result
    sent = {entry["msg_id"].split(":")[0]: entry["data"]["content"] for entry in stream_entries(redis_url)}
    assert sent["reminder"]["memory_content"] == "hi\x00!"
    assert sent["event_reprompt"]["description"] == "De\ufffdn"
    assert sent["event_reprompt"]["event_date"] == "2026"
    assert result.action("requeue-events")["warnings"] == [
        "event e1: text that is not valid UTF-8; sent with U+FFFD for the bad bytes"
    ]


def test_a_media_path_held_as_bytes_is_left_alone_and_the_memory_expires(maintctl, core, tmp_path):
    kept = tmp_path / "media" / "kept.jpg"
    kept.parent.mkdir()
    kept.write_bytes(b"x")
    core.memory("p1", status="pending", expires="2026-11-01")
    core.sql("UPDATE memories SET media_local_path = CAST(? AS BLOB) WHERE id = 'p1'", "kept.jpg")

    result = maintctl("expire-pending", "--db", core.path, "--now", LATER, "--json")

    assert result.code == 0, result
    assert result.action("expire-pending")["counts"] == {"expired": 1, "files_deleted": 0}
    assert result.action("expire-pending")["warnings"] == ["memory p1: media path b'kept.jpg' is not text; left alone"]
    assert kept.exists()
