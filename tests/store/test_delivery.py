"""Notifications reach the stream once: Redis unset, unreachable, refusing,
a retry after a run died between XADD and commit, two runs delivering at once."""

import json

import pytest
import redis
from conftest import NOW, RedisServer, free_port, start_firing, stream_entries

from maintctl.store.outbox import SEND_ONCE_LUA, dedup_prefix


def database_id(core) -> str:
    (row,) = core.sql("SELECT value FROM maintctl_meta WHERE key = 'database_id'")
    return row[0]


def fire(maintctl, core, *extra, **kwargs):
    return maintctl("fire-reminders", "--db", core.path, "--now", NOW, *extra, **kwargs)


def test_without_a_redis_url_notifications_stay_queued_and_the_run_says_so(maintctl, core):
    core.reminder("r1")
    core.reminder("r2", memory_id="m2")

    result = fire(maintctl, core)

    assert result.code == 0, result
    assert "2 queued, not delivered: no Redis URL is set" in result.out
    assert [(msg_id, delivered) for msg_id, _, delivered in core.outbox()] == [
        (f"reminder:r1:{NOW}", None),
        (f"reminder:r2:{NOW}", None),
    ]


def test_queued_notifications_are_delivered_once_by_the_next_run_that_reaches_redis(maintctl, core, redis_url):
    core.reminder("r1")
    fire(maintctl, core)

    first = fire(maintctl, core, "--redis-url", redis_url)
    second = fire(maintctl, core, "--redis-url", redis_url)

    assert first.code == 0 and second.code == 0
    assert "1 delivered" in first.out
    assert [entry["msg_id"] for entry in stream_entries(redis_url)] == [f"reminder:r1:{NOW}"]
    assert [delivered for _, _, delivered in core.outbox()] == [NOW]


def test_redis_url_from_the_environment(maintctl, core, redis_url):
    core.reminder("r1")

    result = fire(maintctl, core, env={"REDIS_URL": redis_url})

    assert result.code == 0
    assert len(stream_entries(redis_url)) == 1


def test_unreachable_redis_keeps_them_queued_and_exits_1_then_the_next_run_delivers(maintctl, core, redis_url):
    core.reminder("r1")
    nowhere = f"redis://127.0.0.1:{free_port()}/0"

    down = fire(maintctl, core, "--redis-url", nowhere)

    assert down.code == 1
    assert core.sql("SELECT count(*) FROM reminders WHERE fired = 1") == [(1,)]
    assert "notifications not delivered" in down.err and "1 stay queued" in down.err
    assert "Traceback" not in down.err
    up = fire(maintctl, core, "--redis-url", redis_url)
    assert up.code == 0
    assert [entry["msg_id"] for entry in stream_entries(redis_url)] == [f"reminder:r1:{NOW}"]


def test_a_retry_after_a_run_died_between_xadd_and_commit_adds_no_second_entry(maintctl, core, redis_url):
    core.reminder("r1")
    core.reminder("r2", memory_id="m2")
    fire(maintctl, core)  # queued, not delivered
    # What a run killed after its XADD of r1 and before marking it delivered leaves behind:
    client = redis.Redis.from_url(redis_url)
    msg_id, message, _ = core.outbox()[0]
    client.register_script(SEND_ONCE_LUA)(
        keys=["notify:telegram"],
        args=[dedup_prefix("notify:telegram", database_id(core)), 3600, json.dumps([[msg_id, message]])],
    )

    result = fire(maintctl, core, "--redis-url", redis_url, "--json")

    assert result.code == 0
    assert sorted(entry["msg_id"] for entry in stream_entries(redis_url)) == [
        f"reminder:r1:{NOW}",
        f"reminder:r2:{NOW}",
    ]
    assert result.json()["notifications"] == {
        "stream": "notify:telegram",
        "redis": redis_url,
        "delivered": 2,
        "already_in_stream": 1,
        "streams": {"notify:telegram": 2},
        "queued": 0,
        "error": None,
    }


def test_two_runs_delivering_the_same_backlog_at_once_add_each_entry_once(maintctl, core, redis_url, tmp_path):
    """Each run has a lock file of its own: as on a filesystem where locking does not work."""
    core.due_reminders(3000, recurring=False)
    assert maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--quiet").code == 0  # queued, no Redis

    runs = [
        start_firing(
            core,
            tmp_path,
            "--redis-url",
            redis_url,
            env={"MAINTCTL_BATCH_SIZE": "200", "MAINTCTL_LOCK_FILE": str(tmp_path / f"lock{index}")},
        )
        for index in range(2)
    ]
    codes = [run.wait(timeout=120) for run in runs]

    assert codes == [0, 0]
    entries = stream_entries(redis_url)
    assert len(entries) == 3000
    assert len({entry["msg_id"] for entry in entries}) == 3000


def test_the_stream_can_be_named(maintctl, core, redis_url):
    core.reminder("r1")

    fire(maintctl, core, "--redis-url", redis_url, env={"MAINTCTL_STREAM": "notify:test"})

    assert len(stream_entries(redis_url, "notify:test")) == 1
    assert stream_entries(redis_url) == []


@pytest.fixture
def locked_redis(tmp_path):
    server = RedisServer(tmp_path, "--requirepass", "s3cr3t-pw").start()
    yield server
    server.stop()


def test_a_refused_password_exits_1_and_is_never_shown(maintctl, core, locked_redis):
    core.reminder("r1")
    url = f"redis://:wrong-pw-123@127.0.0.1:{locked_redis.port}/0"

    result = fire(maintctl, core, "--redis-url", url)

    assert result.code == 1
    assert "wrong-pw-123" not in result.out + result.err
    assert "redis://:***@127.0.0.1" in result.err
    assert core.sql("SELECT count(*) FROM maintctl_outbox WHERE delivered_at IS NULL") == [(1,)]


def test_the_right_password_delivers_and_is_never_shown(maintctl, core, locked_redis):
    core.reminder("r1")
    url = f"redis://:s3cr3t-pw@127.0.0.1:{locked_redis.port}/0"

    result = fire(maintctl, core, "--redis-url", url, "--json")

    assert result.code == 0, result
    assert "s3cr3t-pw" not in result.out + result.err
    assert len(redis.Redis(port=locked_redis.port, password="s3cr3t-pw").xrange("notify:telegram")) == 1


def test_run_all_delivers_reminders_and_reprompts(maintctl, core, redis_url):
    core.reminder("r1")
    core.event("e1", pending_since="2026-11-20T00:00:00.000Z")

    result = maintctl("run-all", "--db", core.path, "--now", NOW, "--redis-url", redis_url)

    assert result.code == 0, result
    assert [entry["data"]["message_type"] for entry in stream_entries(redis_url)] == ["reminder", "event_reprompt"]


def test_expire_pending_alone_does_not_touch_redis(maintctl, core):
    core.reminder("r1")
    fire(maintctl, core)
    nowhere = f"redis://127.0.0.1:{free_port()}/0"

    result = maintctl("expire-pending", "--db", core.path, "--now", NOW, "--redis-url", nowhere)

    assert result.code == 0, result


@pytest.fixture
def awkward_redis(tmp_path):
    server = RedisServer(tmp_path, "--requirepass", "Secret#Part/Two?Three").start()
    yield server
    server.stop()


PIECES = ("Secret", "Part", "Two", "Three")


@pytest.mark.parametrize("command", ["run-all", "fire-reminders", "status", "doctor"])
def test_a_password_with_hash_slash_and_question_mark_unencoded_is_refused_and_never_shown(
    maintctl, core, awkward_redis, command
):
    core.reminder("r1")
    core.tag("m1", "stale", suggested_at="2026-11-01T00:00:00.000Z")
    url = f"redis://:Secret#Part/Two?Three@127.0.0.1:{awkward_redis.port}/0"

    now = ["--now", NOW] if command != "doctor" else []

    result = maintctl(command, "--db", core.path, *now, "--redis-url", url, "--json")

    shown = result.out + result.err + repr(core.sql("SELECT * FROM maintctl_runs"))
    assert "Traceback" not in shown
    assert not [piece for piece in PIECES if piece in shown], shown
    assert "percent-encode" in shown
    if command in ("run-all", "fire-reminders"):
        assert result.code == 2
        assert result.json()["notifications"]["error"].startswith("--redis-url: the URL cannot be read, not shown")
        assert result.action("fire-reminders")["counts"]["fired"] == 1  # the actions ran; it stays queued
        assert result.json()["notifications"]["queued"] == 1
    else:
        assert result.code == 1  # status and doctor: a check that fails
    if command == "run-all":
        assert result.action("expire-tags")["counts"] == {"expired": 1}


def test_the_same_password_percent_encoded_delivers_and_is_never_shown(maintctl, core, awkward_redis):
    core.reminder("r1")
    url = f"redis://:Secret%23Part%2FTwo%3FThree@127.0.0.1:{awkward_redis.port}/0"

    result = maintctl("run-all", "--db", core.path, "--now", NOW, "--redis-url", url, "--json")
    status = maintctl("status", "--db", core.path, "--now", NOW, "--redis-url", url, "--json")

    assert result.code == 0, result
    assert result.json()["notifications"]["redis"] == f"redis://:***@127.0.0.1:{awkward_redis.port}/0"
    client = redis.Redis(port=awkward_redis.port, password="Secret#Part/Two?Three")
    assert len(client.xrange("notify:telegram")) == 1
    assert status.code == 0, status
    assert status.json()["redis"]["answers"] is True
    shown = result.out + result.err + status.out + status.err
    assert not [piece for piece in PIECES if piece in shown]


def test_status_says_when_redis_does_not_answer_naming_host_and_port_only(maintctl, core):
    port = free_port()

    result = maintctl("status", "--db", core.path, "--redis-url", f"redis://:hunter2@127.0.0.1:{port}/0")

    assert result.code == 1
    assert f"redis://:***@127.0.0.1:{port}/0" in result.out + result.err
    assert "hunter2" not in result.out + result.err


def test_in_text_the_refused_url_is_one_error_line(maintctl, core, awkward_redis):
    core.reminder("r1")
    url = f"redis://:Secret#Part/Two?Three@127.0.0.1:{awkward_redis.port}/0"

    result = maintctl("run-all", "--db", core.path, "--now", NOW, "--redis-url", url)

    assert result.code == 2
    (line,) = [line for line in result.err.splitlines() if line.startswith("maintctl: error:")]
    assert line.startswith("maintctl: error: --redis-url: the URL cannot be read, not shown (percent-encode")
    assert "fire-reminders  ok       fired 1" in result.out


@pytest.mark.parametrize(
    "tail",
    ["redis..internal:6379/0", f"{'a' * 64}.internal:6379/0", "127.0.0.1:6379/0?socket_timeout=-1",
     "127.0.0.1:6379/0?socket_connect_timeout=nan", "127.0.0.1:6379/0?socket_timeout=1e400", "127.0.0.1/0?path=/x"],
)  # fmt: skip
def test_a_url_the_socket_layer_would_choke_on_is_refused_and_every_action_runs(maintctl, core, tail):
    core.reminder("r1")
    core.tag("m1", "stale", suggested_at="2026-11-01T00:00:00.000Z")

    result = maintctl("run-all", "--db", core.path, "--now", NOW, "--redis-url", f"redis://:hunter2@{tail}", "--json")
    status = maintctl("status", "--db", core.path, "--now", NOW, "--redis-url", f"redis://:hunter2@{tail}", "--json")

    assert result.code == 2, result
    assert not [action for action in result.json()["actions"] if action["status"] == "failed"]
    assert result.json()["notifications"]["queued"] == 1
    assert status.code == 1
    assert "hunter2" not in result.out + result.err + status.out + status.err


def test_a_reminder_the_app_sets_again_is_notified_again(maintctl, core, redis_url):
    core.reminder("r1", fire_at="2026-11-22T09:00:00.000Z")
    first = maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--redis-url", redis_url)
    core.sql("UPDATE reminders SET fired = 0, fire_at = '2026-11-22T10:00:00.000Z' WHERE id = 'r1'")  # snoozed

    again = maintctl(
        "fire-reminders", "--db", core.path, "--now", "2026-11-22T10:00:30Z", "--redis-url", redis_url, "--json"
    )

    assert first.code == again.code == 0
    assert again.json()["notifications"]["already_in_stream"] == 0
    assert [entry["data"]["content"]["fire_at"] for entry in stream_entries(redis_url)] == [
        "2026-11-22T09:00:00.000Z",
        "2026-11-22T10:00:00.000Z",
    ]


def test_databases_sharing_a_redis_each_deliver_their_own(maintctl, core, redis_url, tmp_path):
    from conftest import new_core

    (tmp_path / "other").mkdir()
    other = new_core(tmp_path / "other" / "core.db")
    core.reminder("r1", owner=1001)
    other.reminder("r1", owner=2002)  # the same reminder id in another tenant's database

    results = [
        maintctl("run-all", "--db", database.path, "--now", NOW, "--redis-url", redis_url, "--json")
        for database in (core, other)
    ]

    assert [result.json()["notifications"]["already_in_stream"] for result in results] == [0, 0]
    assert sorted(entry["data"]["user_id"] for entry in stream_entries(redis_url)) == [1001, 2002]
    other.connection.close()
