"""status watches the app's readers: each consumer group of the streams maintctl writes, on a real Redis, read
and acknowledged (or not) by the test as the app's Telegram sender and the jobs' workers would."""

from datetime import UTC, datetime, timedelta

import redis
from conftest import NOW, free_port

STREAM = "notify:telegram"


def at(entry_id: str, minutes: float) -> str:
    """Return the instant `minutes` after Redis added the entry (its id's milliseconds), as --now takes it."""
    added = datetime.fromtimestamp(int(entry_id.split("-")[0]) / 1000, UTC)
    return (added + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def fire(maintctl, core, redis_url: str, reminder_id: str) -> str:
    """Fire one reminder through maintctl to the stream; return its entry's id."""
    core.reminder(reminder_id, memory_id=f"m-{reminder_id}")
    fired = maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--redis-url", redis_url)
    assert fired.code == 0, fired
    (entry_id,) = core.sql("SELECT stream_id FROM maintctl_outbox WHERE msg_id LIKE ?", f"reminder:{reminder_id}:%")[0]
    return entry_id


def status(maintctl, core, redis_url: str, now: str, *more: str, env: dict | None = None):
    return maintctl("status", "--db", core.path, "--redis-url", redis_url, "--now", now, *more, env=env)


def readers(result, stream: str = STREAM) -> dict:
    return next(found for found in result.json()["streams"] if found["stream"] == stream)


def group_of(result, group: str = "sender", stream: str = STREAM) -> dict:
    return next(found for found in readers(result, stream)["groups"] if found["group"] == group)


class Sender:
    """The app's Telegram sender: a consumer of the group `sender`, reading and acknowledging as it is told."""

    def __init__(self, url: str, stream: str = STREAM, group: str = "sender", client=None):
        self.client = client or redis.Redis.from_url(url)
        self.stream, self.group = stream, group
        self.client.xgroup_create(stream, group, id="0", mkstream=True)

    def read(self) -> list[str]:
        replies = self.client.xreadgroup(self.group, "bot-1", {self.stream: ">"})
        return [entry_id.decode() for _, entries in replies for entry_id, _ in entries]

    def acknowledge(self, entry_ids: list[str]) -> None:
        self.client.xack(self.stream, self.group, *entry_ids)


def test_a_reader_that_stops_acknowledging_turns_status_to_exit_1_and_back_to_0_when_it_catches_up(
    maintctl, core, redis_url
):
    sender = Sender(redis_url)
    first = fire(maintctl, core, redis_url, "r1")
    sender.acknowledge(sender.read())
    caught_up = status(maintctl, core, redis_url, at(first, 60), "--json")
    second = fire(maintctl, core, redis_url, "r2")
    assert sender.read() == [second]  # handed to the sender, which dies before acknowledging it

    young = status(maintctl, core, redis_url, at(second, 4), "--json")
    stuck = status(maintctl, core, redis_url, at(second, 6), "--json")
    told = status(maintctl, core, redis_url, at(second, 6))
    sender.acknowledge([second])
    back = status(maintctl, core, redis_url, at(second, 6), "--json")

    assert caught_up.code == 0, caught_up
    assert group_of(caught_up) | {"last_delivered_id": None} == {
        "group": "sender",
        "consumers": 1,
        "lag": 0,
        "lag_exact": True,
        "pending": 0,
        "last_delivered_id": None,
        "oldest_unacknowledged_seconds": None,
        "oldest_pending_id": None,
        "oldest_pending_seconds": None,
        "oldest_unread_id": None,
        "oldest_unread_seconds": None,
    }
    assert young.code == 0, young
    assert group_of(young)["pending"] == 1 and group_of(young)["oldest_unacknowledged_seconds"] == 240
    assert stuck.code == 1
    assert group_of(stuck)["oldest_pending_id"] == second and group_of(stuck)["oldest_pending_seconds"] == 360
    assert stuck.json()["attention"] == [
        (
            f"stream {STREAM}, group sender: an entry has waited 6 min, handed to it and not acknowledged"
            " (more than MAINTCTL_STUCK_AFTER, 5 min): the app's reader is down (1 pending, lag 0)"
        )
    ]
    assert told.code == 1 and "stream notify:telegram, group sender: lag 0, 1 pending" in told.out
    assert "maintctl: attention: stream notify:telegram, group sender: an entry has waited 6 min" in told.err
    assert back.code == 0, back
    assert group_of(back)["pending"] == 0 and group_of(back)["oldest_unacknowledged_seconds"] is None


def test_entries_never_handed_to_a_group_past_the_threshold_are_stuck_too(maintctl, core, redis_url):
    sender = Sender(redis_url)
    first = fire(maintctl, core, redis_url, "r1")
    second = fire(maintctl, core, redis_url, "r2")  # the sender is down: nothing reads either

    young = status(maintctl, core, redis_url, at(second, 1), "--json", env={"MAINTCTL_STUCK_AFTER": "2m"})
    stuck = status(maintctl, core, redis_url, at(first, 3), "--json", env={"MAINTCTL_STUCK_AFTER": "2m"})
    assert sender.read() == [first, second]
    sender.acknowledge([first, second])
    back = status(maintctl, core, redis_url, at(first, 3), "--json", env={"MAINTCTL_STUCK_AFTER": "2m"})

    assert young.code == 0, young
    assert stuck.code == 1
    found = group_of(stuck)
    assert (found["lag"], found["pending"], found["oldest_unread_id"]) == (2, 0, first)
    assert found["oldest_unread_seconds"] == found["oldest_unacknowledged_seconds"] == 180
    assert (
        "stream notify:telegram, group sender: an entry has waited 3 min, not yet handed to it"
        in (stuck.json()["attention"][0])
    )
    assert back.code == 0, back
    assert group_of(back)["lag"] == 0


def test_a_stream_without_a_consumer_group_is_reported_as_such_and_is_not_a_failure(maintctl, core, redis_url):
    entry = fire(maintctl, core, redis_url, "r1")

    document = status(maintctl, core, redis_url, at(entry, 60), "--json")
    text = status(maintctl, core, redis_url, at(entry, 60))

    assert document.code == 0, document
    assert readers(document) == {
        "stream": STREAM,
        "exists": True,
        "length": 1,
        "no_groups": True,
        "groups": [],
        "error": None,
    }
    assert readers(document, "tasks") | {"exists": False} == readers(document, "tasks")  # never written yet
    assert readers(document, "tasks")["no_groups"] is True
    assert text.code == 0
    assert "stream notify:telegram: no consumer group: its reader cannot be watched" in text.out
    assert "stream tasks: no consumer group (it does not exist yet): its reader cannot be watched" in text.out
    assert maintctl("status", "--db", core.path, "--redis-url", redis_url, "--now", at(entry, 60), "--quiet").out == ""


def test_the_jobs_stream_is_watched_too(maintctl, core, redis_url):
    core.job("nightly")
    workers = Sender(redis_url, stream="tasks", group="workers")
    enqueued = maintctl("enqueue-jobs", "--db", core.path, "--now", NOW, "--redis-url", redis_url)
    assert enqueued.code == 0, enqueued
    (entry,) = [entry_id.decode() for entry_id, _ in workers.client.xrange("tasks")]

    stuck = status(maintctl, core, redis_url, at(entry, 10), "--json")
    workers.acknowledge(workers.read())
    back = status(maintctl, core, redis_url, at(entry, 10), "--json")

    assert stuck.code == 1
    assert group_of(stuck, "workers", "tasks")["lag"] == 1
    assert [line for line in stuck.json()["attention"] if "stream tasks, group workers" in line]
    assert back.code == 0, back


def test_a_lag_redis_cannot_tell_is_counted(maintctl, core, redis_url):
    sender = Sender(redis_url)
    entries = [fire(maintctl, core, redis_url, f"r{index}") for index in range(3)]
    sender.client.xdel(STREAM, entries[1])  # Redis 7 then says its lag is NULL
    assert sender.client.xinfo_groups(STREAM)[0]["lag"] is None

    result = status(maintctl, core, redis_url, at(entries[0], 1), "--json")

    assert result.code == 0, result
    assert (group_of(result)["lag"], group_of(result)["lag_exact"]) == (2, True)


def test_on_a_redis_cluster_the_stream_is_read_on_its_node(maintctl, core, cluster):
    from redis.cluster import RedisCluster

    other = next(index for index, server in enumerate(cluster.servers) if server is not cluster.master_of(STREAM))
    url = cluster.url_of(other)  # a node that does not hold the stream: the cluster client follows its slot
    sender = Sender(url, client=RedisCluster.from_url(url))
    entry = fire(maintctl, core, url, "r1")
    assert sender.read() == [entry]

    stuck = status(maintctl, core, url, at(entry, 6), "--json")
    sender.acknowledge([entry])
    back = status(maintctl, core, url, at(entry, 6), "--json")

    assert stuck.code == 1, stuck
    assert group_of(stuck)["pending"] == 1 and group_of(stuck)["oldest_pending_seconds"] == 360
    assert "stream notify:telegram, group sender" in stuck.json()["attention"][0]
    assert back.code == 0, back


def test_redis_down_is_said_without_a_traceback(maintctl, core):
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"

    document = maintctl("status", "--db", core.path, "--redis-url", url, "--now", NOW, "--json")
    text = maintctl("status", "--db", core.path, "--redis-url", url, "--now", NOW)

    assert document.code == 1 and document.json()["streams"] is None
    assert document.json()["attention"][0].startswith("Redis does not answer")
    assert text.code == 1 and "Traceback" not in text.out + text.err and "hunter2" not in text.out + text.err
    assert "stream " not in text.out


def test_a_key_of_the_streams_name_that_is_not_a_stream_is_named(maintctl, core, redis_url):
    redis.Redis.from_url(redis_url).set("tasks", "not a stream")

    result = status(maintctl, core, redis_url, NOW, "--json")

    assert result.code == 1
    assert readers(result, "tasks")["error"] == "the key tasks holds a string, not a stream"
    assert "stream tasks: the key tasks holds a string, not a stream" in result.json()["attention"]


def test_a_group_whose_name_is_not_utf8_is_watched_like_any_other(maintctl, core, redis_url):
    client = redis.Redis.from_url(redis_url)
    Sender(redis_url, group=b"sender\xff", client=client)
    entry_id = fire(maintctl, core, redis_url, "r1")
    client.xreadgroup(b"sender\xff", "bot-1", {STREAM: ">"})  # read, never acknowledged

    result = status(maintctl, core, redis_url, at(entry_id, 10), "--json")
    traced = maintctl(
        "trace", "reminder", "r1", "--db", core.path, "--redis-url", redis_url, "--now", at(entry_id, 10), "--json"
    )

    assert result.code == 1, result
    assert group_of(result, "sender\ufffd")["pending"] == 1
    (attention,) = result.json()["attention"]
    assert attention.startswith(f"stream {STREAM}, group sender\ufffd: an entry has waited 10 min")
    assert (traced.code, traced.json()["verdict"]) == (1, "read-not-acknowledged"), traced
    assert traced.json()["delivery"]["groups"][0]["consumer"] == "bot-1"
