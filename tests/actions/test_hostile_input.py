"""Odd and hostile content: delivered exactly where JSON can carry it, and never stopping the pass."""

import json

import pytest
from conftest import NOW, stream_entries


def fire(maintctl, core, redis_url):
    return maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--redis-url", redis_url, "--json")


@pytest.mark.parametrize(
    "content",
    [
        "quotes \" ' and `backticks`",
        "'); DROP TABLE reminders; --",
        "emoji 🧠🎉 and combining é and right-to-left שלום",
        "a NUL \x00 in the middle, tab\t, newline\n, backslash \\",
        "x" * 1_048_576,  # a megabyte
    ],
    ids=["quotes", "sql", "unicode", "control", "megabyte"],
)
def test_content_is_delivered_byte_exact(maintctl, core, redis_url, content):
    core.memory("m1", content=content)
    core.reminder("r1", memory_id="m1")

    result = fire(maintctl, core, redis_url)

    assert result.code == 0, result.err
    (entry,) = stream_entries(redis_url)
    assert entry["data"]["content"]["memory_content"] == content


def test_ids_with_quotes_and_sql_are_handled_as_data(maintctl, core, redis_url):
    hostile = "r1'); DELETE FROM reminders; --"
    core.reminder(hostile, memory_id="m'1")
    core.reminder("r2", memory_id="m2")

    result = fire(maintctl, core, redis_url)

    assert result.action("fire-reminders")["counts"]["fired"] == 2
    assert core.sql("SELECT count(*) FROM reminders") == [(2,)]
    assert {row[1] for row in core.audit("reminder")} == {hostile, "r2"}
    assert {entry["msg_id"] for entry in stream_entries(redis_url)} == {
        f"reminder:{hostile}:{NOW}",
        f"reminder:r2:{NOW}",
    }


def test_content_that_is_not_utf8_is_sent_with_replacement_characters_and_reported(maintctl, core, redis_url):
    core.memory("m1")
    core.sql("UPDATE memories SET content = CAST(X'6869FF21' AS TEXT) WHERE id = 'm1'")  # 'hi', a stray byte, '!'
    core.reminder("bad", memory_id="m1")
    core.reminder("good", memory_id="m2")

    result = fire(maintctl, core, redis_url)

    assert result.code == 0, result.err
    assert result.action("fire-reminders")["counts"]["fired"] == 2
    contents = {
        entry["data"]["content"]["reminder_id"]: entry["data"]["content"]["memory_content"]
        for entry in stream_entries(redis_url)
    }
    assert contents["bad"] == "hi\ufffd!"
    assert result.action("fire-reminders")["warnings"] == [
        "reminder bad: its memory's content is not valid UTF-8; sent with U+FFFD for the bad bytes"
    ]


def test_an_event_description_that_is_not_utf8_does_not_stop_the_pass(maintctl, core, redis_url):
    core.event("e1", pending_since="2026-11-01T00:00:00.000Z")
    core.sql("UPDATE events SET description = CAST(X'C328' AS TEXT) WHERE id = 'e1'")
    core.event("e2", pending_since="2026-11-01T00:00:00.000Z")

    result = maintctl("requeue-events", "--db", core.path, "--now", NOW, "--redis-url", redis_url, "--json")

    assert result.code == 0, result.err
    assert result.action("requeue-events")["counts"] == {"requeued": 2}
    assert "event e1: text that is not valid UTF-8" in result.action("requeue-events")["warnings"][0]
    assert len(stream_entries(redis_url)) == 2


def test_a_huge_recurrence_is_reported_not_crashed_on(maintctl, core, redis_url):
    core.reminder("r1", recurrence=9_223_372_036_854_775_807)

    result = fire(maintctl, core, redis_url)

    assert result.code == 0
    assert "past year 9999" in result.action("fire-reminders")["warnings"][0]
    assert json.loads(json.dumps(result.json()))  # the document stays valid
