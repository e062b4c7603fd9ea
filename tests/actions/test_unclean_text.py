"""Text that Python cannot read (not UTF-8) or that JSON cannot carry (a NUL
character) in any column an action reads: never a failed pass, never a row
planned again and again ahead of the good ones (batches of 1, the odd row
first), and the row reported by a key a strict UTF-8 terminal can print."""

import pytest
from conftest import NOW, stream_entries

LATER = "2026-11-26T12:00:00.000Z"
NOT_UTF8 = "CAST(X'ff61' AS TEXT)"  # a stray byte, then 'a'
WITH_NUL = "'a' || char(0) || 'b'"
UNCLEAN = {
    NOT_UTF8: ("X'ff61'", "is not valid UTF-8", b"\xffa"),
    WITH_NUL: ("X'610062'", "holds a NUL character", b"a\x00b"),
}
STRICT = {"PYTHONIOENCODING": "utf-8:strict", "MAINTCTL_BATCH_SIZE": "1"}


def run(maintctl, core, action, *extra):
    return maintctl(action, "--db", core.path, "--now", LATER, *extra, env=STRICT)


# For each action and key column: the odd row (due before the good one), the
# warning ({key} as shown, {reason}), and SQL that counts the odd row as left alone.
KEYS = {
    ("fire-reminders", "id"): (
        "INSERT INTO reminders VALUES ({value}, 'm1', 1001, '2026-10-01', NULL, 0)",
        "reminder {key}: its id or memory_id (m1) {reason}; not fired",
        "SELECT count(*) FROM reminders WHERE fired = 0 AND id != 'good'",
    ),
    ("fire-reminders", "memory_id"): (
        "INSERT INTO memories (id, owner_user_id, content, status) VALUES ({value}, 1001, 'x', 'confirmed');"
        " INSERT INTO reminders VALUES ('bad', {value}, 1001, '2026-10-01', NULL, 0)",
        "reminder bad: its id or memory_id ({key}) {reason}; not fired",
        "SELECT count(*) FROM reminders WHERE fired = 0 AND id = 'bad'",
    ),
    ("expire-pending", "id"): (
        "INSERT INTO memories (id, owner_user_id, content, status, pending_expires_at)"
        " VALUES ({value}, 1001, 'x', 'pending', '2026-10-01')",
        "memory {key}: its id {reason}; not expired",
        "SELECT count(*) FROM memories WHERE status = 'pending' AND id != 'good'",
    ),
    ("expire-tags", "memory_id"): (
        "INSERT INTO memory_tags VALUES ({value}, 'bad', 'suggested', '2026-01-01')",
        "tag 'bad' on memory {key}: its memory_id or tag {reason}; not expired",
        "SELECT count(*) FROM memory_tags WHERE tag = 'bad'",
    ),
    ("expire-tags", "tag"): (
        "INSERT INTO memory_tags VALUES ('m1', {value}, 'suggested', '2026-01-01')",
        "tag {value!r} on memory m1: its memory_id or tag {reason}; not expired",
        "SELECT count(*) FROM memory_tags WHERE tag != 'good'",
    ),
    ("requeue-events", "id"): (
        "INSERT INTO events VALUES ({value}, 1001, 'x', '2026-12-01', 'pending', '2026-01-01')",
        "event {key}: its id {reason}; not re-prompted",
        "SELECT count(*) FROM events WHERE pending_since = '2026-01-01'",
    ),
}


def add_good_row(core, action: str) -> None:
    """Give the action one row that is due, later than the odd one."""
    if action == "fire-reminders":
        core.reminder("good", fire_at="2026-11-01")
    elif action == "expire-pending":
        core.memory("good", status="pending", expires="2026-11-01")
    elif action == "expire-tags":
        core.tag("m1", "good", suggested_at="2026-02-01")
    else:
        core.event("good", pending_since="2026-02-01")


def counts(result, action: str) -> int:
    return next(iter(result.action(action)["counts"].values()))


@pytest.mark.parametrize("value", UNCLEAN, ids=["not-utf8", "nul"])
@pytest.mark.parametrize("action, column", KEYS, ids=[f"{action}-{column}" for action, column in KEYS])
def test_a_key_that_is_not_clean_text_is_reported_and_the_good_row_is_done(maintctl, core, action, column, value):
    core.memory("m1")
    add_good_row(core, action)
    insert, warning, left_alone = KEYS[action, column]
    for statement in insert.format(value=value).split(";"):
        core.sql(statement)
    key, reason, raw = UNCLEAN[value]

    first = run(maintctl, core, action, "--json")
    second = run(maintctl, core, action, "--json")

    assert first.code == 0, first
    assert counts(first, action) == 1  # the good row, behind the odd one in batches of 1
    assert first.action(action)["notes"] == []  # nothing planned that could not be claimed
    expected = warning.format(key=key, reason=reason, value=raw)
    assert first.action(action)["warnings"] == [expected]
    assert core.sql(left_alone) == [(1,)]
    assert (second.code, counts(second, action), second.action(action)["warnings"]) == (0, 0, [expected])


# Each action's timestamp column, with a date-like value that is not UTF-8 or holds a NUL.
TIMESTAMPS = {
    "fire-reminders": (
        "UPDATE reminders SET fire_at = {value} WHERE id = 'bad'",
        "reminder bad: fire_at {raw!r} names no instant; not fired",
    ),
    "expire-pending": (
        "UPDATE memories SET pending_expires_at = {value} WHERE id = 'bad'",
        "memory bad: pending_expires_at {raw!r} names no instant; not expired",
    ),
    "expire-tags": (
        "UPDATE memory_tags SET suggested_at = {value} WHERE tag = 'bad'",
        "tag 'bad' on memory m1: suggested_at {raw!r} names no instant; not expired",
    ),
    "requeue-events": (
        "UPDATE events SET pending_since = {value} WHERE id = 'bad'",
        "event bad: pending_since {raw!r} names no instant; not re-prompted",
    ),
}
DATES = {
    "CAST(X'323032362d30312d3031ff' AS TEXT)": b"2026-01-01\xff",
    "'2026-01-01' || char(0) || 'x'": b"2026-01-01\x00x",
}


@pytest.mark.parametrize("value", DATES, ids=["not-utf8", "nul"])
@pytest.mark.parametrize("action", TIMESTAMPS)
def test_a_timestamp_that_is_not_clean_text_names_no_instant_and_is_reported(maintctl, core, action, value):
    core.memory("m1")
    add_good_row(core, action)
    if action == "fire-reminders":
        core.reminder("bad", fire_at="x")
    elif action == "expire-pending":
        core.memory("bad", status="pending")
    elif action == "expire-tags":
        core.tag("m1", "bad")
    else:
        core.event("bad")
    update, warning = TIMESTAMPS[action]
    core.sql(update.format(value=value))

    result = run(maintctl, core, action, "--json")

    assert result.code == 0, result
    assert counts(result, action) == 1  # the good row, behind the odd one in batches of 1
    assert result.action(action)["notes"] == []
    assert result.action(action)["warnings"] == [warning.format(raw=DATES[value])]


def test_warnings_about_unclean_keys_print_on_a_strict_utf8_terminal(maintctl, core):
    core.memory("m1")
    for action, column in KEYS:
        if column in ("id", "tag"):
            insert = KEYS[action, column][0]
            core.sql(insert.format(value=NOT_UTF8))

    result = run(maintctl, core, "run-all")

    assert result.code == 0, result
    assert "reminder X'ff61': its id or memory_id (m1) is not valid UTF-8; not fired" in result.err
    assert "memory X'ff61': its id is not valid UTF-8; not expired" in result.err
    assert "tag b'\\xffa' on memory m1: its memory_id or tag is not valid UTF-8; not expired" in result.err
    assert "event X'ff61': its id is not valid UTF-8; not re-prompted" in result.err


def test_an_owner_or_recurrence_that_is_not_utf8_still_fires_once_and_is_reported(maintctl, core, redis_url):
    core.memory("m1")
    core.sql(f"UPDATE memories SET owner_user_id = {NOT_UTF8} WHERE id = 'm1'")
    core.reminder("r1", memory_id="m1", fire_at="2026-11-01")
    core.reminder("r2", memory_id="m2", fire_at="2026-11-01")
    core.sql(f"UPDATE reminders SET recurrence_minutes = {NOT_UTF8} WHERE id = 'r2'")

    result = maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--json", "--redis-url", redis_url, env=STRICT)

    assert result.code == 0, result
    assert result.action("fire-reminders")["counts"] == {"fired": 2, "created": 0}
    assert sorted(result.action("fire-reminders")["warnings"]) == [
        "reminder r1: its memory's owner_user_id is not valid UTF-8; sent with U+FFFD for the bad bytes",
        "reminder r2: recurrence_minutes b'\\xffa' is not a positive whole number; fired once, no next reminder",
    ]
    users = {entry["data"]["content"]["reminder_id"]: entry["data"]["user_id"] for entry in stream_entries(redis_url)}
    assert users == {"r1": "\ufffda", "r2": 1001}


MEDIA_PATHS = {**UNCLEAN, "X'ff61'": ("X'ff61'", "", b"\xffa")}  # and bytes, that a dry run shows as SQL writes them


@pytest.mark.parametrize("value", MEDIA_PATHS, ids=["not-utf8", "nul", "bytes"])
def test_a_media_path_that_is_not_clean_text_is_left_alone_and_the_memory_expires(maintctl, core, tmp_path, value):
    core.memory("p1", status="pending", expires="2026-11-01")
    core.sql(f"UPDATE memories SET media_local_path = {value} WHERE id = 'p1'")
    (tmp_path / "media").mkdir()
    shown, _, raw = MEDIA_PATHS[value]

    dry = run(maintctl, core, "expire-pending", "--json", "--dry-run")
    result = run(maintctl, core, "expire-pending", "--json")

    assert dry.code == 0, dry
    assert [item["media_local_path"] for item in dry.action("expire-pending")["planned"]] == [shown]
    assert result.code == 0, result
    assert result.action("expire-pending")["counts"] == {"expired": 1, "files_deleted": 0}
    assert result.action("expire-pending")["warnings"] == [f"memory p1: media path {raw!r} is not text; left alone"]


def test_a_file_that_a_memory_keyed_by_unclean_text_uses_is_kept(maintctl, core, tmp_path):
    photo = tmp_path / "media" / "photo.jpg"
    photo.parent.mkdir()
    photo.write_bytes(b"x")
    core.memory("p1", status="pending", expires="2026-11-01", media="photo.jpg")
    core.sql(
        "INSERT INTO memories (id, owner_user_id, content, status, media_local_path)"
        f" VALUES ({NOT_UTF8}, 1001, 'x', 'confirmed', 'photo.jpg')"
    )

    result = run(maintctl, core, "expire-pending", "--json")

    assert result.code == 0, result
    assert result.action("expire-pending")["counts"] == {"expired": 1, "files_deleted": 0}
    assert result.action("expire-pending")["warnings"] == [
        f"memory p1: media file {str(photo)!r} kept: memory b'\\xffa' uses it"
    ]
    assert photo.exists()
