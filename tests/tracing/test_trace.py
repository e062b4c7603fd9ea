"""trace: one reminder, event re-prompt or job run followed from its row to
the app's reader. A real redis-server whose consumer groups the tests create
and read as the app's sender would; maintctl run as a process; fixed --now."""

import redis
from conftest import NOW, free_port

from maintctl.store.outbox import dedup_prefix

LATER = "2026-11-22T09:45:00.000Z"  # 15 minutes after NOW
SOON = "2026-11-22T09:31:00.000Z"
STUCK = {"MAINTCTL_STUCK_AFTER": "5m"}


def fire(maintctl, core, *redis_option: str, now: str = NOW):
    result = maintctl("fire-reminders", "--db", core.path, "--now", now, *redis_option)
    assert result.code == 0, result
    return result


def trace(maintctl, core, kind: str, item_id: str, *more: str, now: str = SOON, env=None):
    return maintctl("trace", kind, item_id, "--db", core.path, "--now", now, "--json", *more, env=env or STUCK)


def reader(url: str, stream: str = "notify:telegram", group: str = "app") -> redis.Redis:
    """Return a client of the app's reader, its group made at the stream's start."""
    client = redis.Redis.from_url(url)
    client.xgroup_create(stream, group, id="0", mkstream=True)
    return client


def read_one(client: redis.Redis, stream: str = "notify:telegram", group: str = "app", ack: bool = True) -> str:
    """Read the next entry as the app's reader does (and acknowledge it); return its id."""
    ((_, ((entry_id, _),)),) = client.xreadgroup(group, "worker-1", {stream: ">"}, count=1)
    if ack:
        client.xack(stream, group, entry_id)
    return entry_id.decode()


def stream_state(url: str, stream: str = "notify:telegram") -> tuple:
    client = redis.Redis.from_url(url)
    groups = client.xinfo_groups(stream)
    pending = [client.xpending_range(stream, group["name"], "-", "+", 100) for group in groups]
    return (
        client.xlen(stream),
        client.xrange(stream),
        groups,
        [
            [{key: value for key, value in entry.items() if key != "time_since_delivered"} for entry in held]
            for held in pending
        ],
    )


class TestReminders:
    def test_acknowledged_by_the_group_is_exit_0_with_the_contracts_document(self, maintctl, core, redis_url):
        core.reminder("r1")
        client = reader(redis_url)
        fire(maintctl, core, "--redis-url", redis_url)
        entry_id = read_one(client)

        result = trace(maintctl, core, "reminder", "r1", "--redis-url", redis_url)

        assert result.code == 0, result
        document = result.json()
        assert list(document) == ["item", "timeline", "delivery", "verdict"]
        assert document["verdict"] == "acknowledged"
        assert document["item"] == {
            "type": "reminder", "id": "r1", "memory_id": "m1", "owner_user_id": 1001, "fire_at": NOW,
            "fired": True, "recurrence_minutes": None, "successor": None,
        }  # fmt: skip
        assert document["delivery"] == {
            "stream": "notify:telegram",
            "msg_id": f"reminder:r1:{NOW}",
            "entry_id": entry_id,
            "groups": [
                {"group": "app", "read": True, "pending": False, "consumer": None, "idle_ms": None, "deliveries": None}
            ],
        }
        assert all(list(step) == ["at", "stage", "detail"] for step in document["timeline"])
        stages = [step["stage"] for step in document["timeline"]]
        assert stages == ["due", "fired", "queued", "delivered", "row", "acknowledged"]
        assert [step["at"] for step in document["timeline"]][:4] == [NOW] * 4

    def test_read_and_never_acknowledged_is_exit_1_past_the_threshold_and_names_the_consumer(
        self, maintctl, core, redis_url
    ):
        core.reminder("r1")
        client = reader(redis_url)
        fire(maintctl, core, "--redis-url", redis_url)
        read_one(client, ack=False)

        young = trace(maintctl, core, "reminder", "r1", "--redis-url", redis_url, now=SOON)
        stuck = trace(maintctl, core, "reminder", "r1", "--redis-url", redis_url, now=LATER)
        quiet = maintctl(
            "trace", "reminder", "r1", "--db", core.path, "--now", LATER, "--redis-url", redis_url, "--quiet", env=STUCK
        )

        assert (young.code, young.json()["verdict"]) == (0, "read-not-acknowledged"), young
        assert (stuck.code, stuck.json()["verdict"]) == (1, "read-not-acknowledged"), stuck
        (group,) = stuck.json()["delivery"]["groups"]
        assert (group["group"], group["read"], group["pending"], group["consumer"], group["deliveries"]) == (
            "app", True, True, "worker-1", 1,
        )  # fmt: skip
        assert isinstance(group["idle_ms"], int)
        assert quiet.code == 1 and quiet.out == ""
        assert "reminder r1: read-not-acknowledged since 2026-11-22T09:30:00.000Z" in quiet.err
        assert "MAINTCTL_STUCK_AFTER" in quiet.err

    def test_still_queued_without_redis_shows_the_database_side_and_ages_from_when_it_was_queued(self, maintctl, core):
        core.reminder("r1")
        fire(maintctl, core)  # no Redis URL: the notification stays queued
        down = f"redis://:hunter2@127.0.0.1:{free_port()}/0"  # nothing listens there

        unset = trace(maintctl, core, "reminder", "r1")
        unreachable = trace(maintctl, core, "reminder", "r1", "--redis-url", down, now=LATER)

        assert (unset.code, unset.json()["verdict"]) == (0, "queued"), unset
        assert unset.json()["delivery"] == {
            "stream": "notify:telegram", "msg_id": f"reminder:r1:{NOW}", "entry_id": None, "groups": []
        }  # fmt: skip
        assert [step["stage"] for step in unset.json()["timeline"]] == ["due", "fired", "queued", "row"]
        assert (unreachable.code, unreachable.json()["verdict"]) == (1, "queued"), unreachable
        assert "hunter2" not in unreachable.out + unreachable.err

    def test_delivered_while_redis_is_down_now_stays_in_stream_and_says_readers_cannot_be_seen(
        self, maintctl, core, redis_url
    ):
        core.reminder("r1")
        reader(redis_url)
        fire(maintctl, core, "--redis-url", redis_url)
        down = f"redis://:hunter2@127.0.0.1:{free_port()}/0"

        result = trace(maintctl, core, "reminder", "r1", "--redis-url", down, now=LATER)

        assert (result.code, result.json()["verdict"]) == (1, "in-stream"), result
        (last,) = [step for step in result.json()["timeline"] if step["stage"] == "readers"]
        assert "cannot be seen" in last["detail"] and "***" in last["detail"] and "hunter2" not in result.out

    def test_not_due_is_exit_0_and_due_not_fired_is_exit_1_past_the_threshold(self, maintctl, core):
        core.reminder("r1", fire_at="2026-11-22T10:00:00.000Z")
        core.reminder("r2", fire_at="2026-11-22T09:00:00.000Z")

        not_due = trace(maintctl, core, "reminder", "r1")
        overdue = trace(maintctl, core, "reminder", "r2")

        assert (not_due.code, not_due.json()["verdict"], not_due.json()["delivery"]) == (0, "not-due", None)
        assert (overdue.code, overdue.json()["verdict"]) == (1, "due-not-fired"), overdue

    def test_an_unknown_id_is_exit_2_and_named(self, maintctl, core):
        plain = maintctl("trace", "reminder", "nope", "--db", core.path)
        document = maintctl("trace", "event", "nope", "--db", core.path, "--json")

        assert plain.code == 2 and "no reminder 'nope'" in plain.err and "Traceback" not in plain.err
        assert document.code == 2 and document.json()["exit"] == 2 and "no event 'nope'" in document.json()["error"]

    def test_a_stream_without_consumer_groups_has_no_readers(self, maintctl, core, redis_url):
        core.reminder("r1")
        fire(maintctl, core, "--redis-url", redis_url)

        result = trace(maintctl, core, "reminder", "r1", "--redis-url", redis_url, now=LATER)

        assert (result.code, result.json()["verdict"], result.json()["delivery"]["groups"]) == (0, "no-readers", [])

    def test_a_recurring_reminders_successor_is_named(self, maintctl, core, redis_url):
        core.reminder("r1", fire_at="2026-11-22T07:00:00.000Z", recurrence=60)
        fire(maintctl, core, "--redis-url", redis_url)
        ((successor,),) = core.sql("SELECT id FROM reminders WHERE id != 'r1'")

        result = trace(maintctl, core, "reminder", "r1", "--redis-url", redis_url)
        text = maintctl("trace", "reminder", "r1", "--db", core.path, "--now", SOON, env=STUCK)

        assert result.json()["item"]["successor"] == successor
        (step,) = [step for step in result.json()["timeline"] if step["stage"] == "successor"]
        assert step == {
            "at": NOW,
            "stage": "successor",
            "detail": f"next reminder {successor}, due 2026-11-22T10:00:00.000Z",
        }
        assert f"next reminder {successor}" in text.out and text.out.rstrip().endswith("verdict: in-stream")

    def test_once_its_outbox_row_is_pruned_the_entry_is_found_by_its_dedup_key(self, maintctl, core, redis_url):
        core.reminder("r1")
        client = reader(redis_url)
        fire(maintctl, core, "--redis-url", redis_url)
        read_one(client)
        core.sql("DELETE FROM maintctl_outbox")  # as prune does, a week on

        result = trace(maintctl, core, "reminder", "r1", "--redis-url", redis_url)

        assert (result.code, result.json()["verdict"]) == (0, "acknowledged"), result
        (database_id,) = core.sql("SELECT value FROM maintctl_meta WHERE key = 'database_id'")[0]
        key = dedup_prefix("notify:telegram", database_id) + f"reminder:r1:{NOW}"
        assert result.json()["delivery"]["entry_id"] == client.get(key).decode()


def test_trace_changes_nothing_in_the_stream_its_groups_or_the_database(maintctl, core, redis_url):
    core.reminder("r1")
    core.reminder("r2", memory_id="m2")
    client = reader(redis_url)
    client.xgroup_create("notify:telegram", "other", id="0")
    fire(maintctl, core, "--redis-url", redis_url)
    read_one(client, ack=False)  # r1: pending in app, unread in other
    before, digest = stream_state(redis_url), core.digest()

    for reminder_id in ("r1", "r2"):
        result = trace(maintctl, core, "reminder", reminder_id, "--redis-url", redis_url)
        assert result.json()["verdict"] == "in-stream", result  # the group `other` has read neither

    assert stream_state(redis_url) == before
    assert core.digest() == digest


def test_an_event_reprompt_is_traced_to_its_reader(maintctl, core, redis_url):
    core.event("e1", pending_since="2026-11-21T09:00:00.000Z")
    client = reader(redis_url)
    requeued = maintctl("requeue-events", "--db", core.path, "--now", NOW, "--redis-url", redis_url)
    assert requeued.code == 0, requeued
    entry_id = read_one(client)

    result = trace(maintctl, core, "event", "e1", "--redis-url", redis_url)

    assert (result.code, result.json()["verdict"]) == (0, "acknowledged"), result
    assert result.json()["item"]["status"] == "pending"
    assert result.json()["delivery"]["msg_id"] == f"event_reprompt:e1:{NOW}"
    assert result.json()["delivery"]["entry_id"] == entry_id
    assert "requeued" in [step["stage"] for step in result.json()["timeline"]]


def test_a_job_run_is_traced_on_the_jobs_stream_and_a_worker_holding_it_is_named(maintctl, core, redis_url):
    core.job("nightly")
    client = reader(redis_url, "tasks", "workers")
    enqueued = maintctl("enqueue-jobs", "--db", core.path, "--now", NOW, "--redis-url", redis_url)
    assert enqueued.code == 0, enqueued
    ((run_id,),) = core.sql("SELECT id FROM maintctl_job_runs")
    read_one(client, "tasks", "workers", ack=False)

    result = trace(maintctl, core, "job-run", run_id, "--redis-url", redis_url)
    unknown = trace(maintctl, core, "job-run", "no-such-run")

    assert (result.code, result.json()["verdict"]) == (0, "read-not-acknowledged"), result
    delivery = result.json()["delivery"]
    assert (delivery["stream"], delivery["msg_id"]) == ("tasks", f"job:{run_id}")
    assert [group["consumer"] for group in delivery["groups"]] == ["worker-1"]
    assert result.json()["item"]["status"] == "running"
    assert unknown.code == 2 and "no job run 'no-such-run'" in unknown.json()["error"]


def test_plain_text_for_cron_mail_names_each_stage_and_the_verdict(maintctl, core, redis_url):
    core.reminder("r1")
    client = reader(redis_url)
    fire(maintctl, core, "--redis-url", redis_url)
    read_one(client)

    result = maintctl("trace", "reminder", "r1", "--db", core.path, "--now", SOON, "--redis-url", redis_url)

    assert result.code == 0, result
    lines = result.out.splitlines()
    assert lines[0] == "reminder r1"
    assert any(line.startswith(f"{NOW}  delivered") for line in lines)
    assert "group app: read and acknowledged" in result.out
    assert lines[-1] == "verdict: acknowledged"
    assert "\x1b" not in result.out  # no terminal's colours in a mail


def test_on_a_redis_cluster_the_stream_is_read_on_its_node_whichever_node_is_named(maintctl, core, cluster):
    from redis.cluster import RedisCluster

    core.reminder("r1")
    client = RedisCluster.from_url(cluster.url_of(0))
    client.xgroup_create("notify:telegram", "app", id="0", mkstream=True)
    holder = cluster.master_of("notify:telegram")
    elsewhere = next(server for server in cluster.servers if server is not holder)
    fire(maintctl, core, "--redis-url", elsewhere.url)
    ((_, ((entry_id, _),)),) = client.xreadgroup("app", "worker-1", {"notify:telegram": ">"}, count=1)

    pending = trace(maintctl, core, "reminder", "r1", "--redis-url", elsewhere.url, now=LATER)
    client.xack("notify:telegram", "app", entry_id)
    acknowledged = trace(maintctl, core, "reminder", "r1", "--redis-url", elsewhere.url, now=LATER)

    assert pending.code == 1, pending
    assert pending.json()["verdict"] == "read-not-acknowledged"
    (group,) = pending.json()["delivery"]["groups"]
    assert (group["group"], group["pending"], group["consumer"], group["deliveries"]) == ("app", True, "worker-1", 1)
    assert pending.json()["delivery"]["entry_id"] == entry_id.decode()
    assert acknowledged.code == 0 and acknowledged.json()["verdict"] == "acknowledged", acknowledged


def test_an_events_trace_follows_its_own_reprompt_not_one_of_an_event_whose_id_begins_with_its_own(
    maintctl, core, redis_url
):
    core.event("e", pending_since="2026-11-21T09:00:00.000Z")
    client = reader(redis_url)
    assert maintctl("requeue-events", "--db", core.path, "--now", NOW, "--redis-url", redis_url).code == 0
    entry_id = read_one(client)  # e's re-prompt: read and acknowledged
    core.event("e:x", pending_since="2026-11-21T09:10:00.000Z")
    later = maintctl("requeue-events", "--db", core.path, "--now", SOON, "--redis-url", redis_url)
    assert later.code == 0, later  # e:x's re-prompt: never read

    result = trace(maintctl, core, "event", "e", "--redis-url", redis_url, now=LATER)

    assert (result.code, result.json()["verdict"]) == (0, "acknowledged"), result
    assert result.json()["delivery"]["msg_id"] == f"event_reprompt:e:{NOW}"
    assert result.json()["delivery"]["entry_id"] == entry_id
    assert "e:x" not in result.out


def test_a_reminders_timeline_holds_no_notification_of_a_reminder_whose_id_begins_with_its_own(
    maintctl, core, redis_url
):
    core.reminder("a")
    core.reminder("a:x", memory_id="m2")
    fire(maintctl, core, "--redis-url", redis_url)

    result = trace(maintctl, core, "reminder", "a", "--redis-url", redis_url)

    queued = [step["detail"] for step in result.json()["timeline"] if step["stage"] == "queued"]
    assert queued == [f"reminder:a:{NOW} queued in maintctl_outbox"], result


def test_an_id_with_line_breaks_or_markup_is_shown_as_one_line_in_mail_and_on_a_terminal(
    maintctl, core, redis_url, tmp_path
):
    from conftest import on_a_terminal

    core.reminder("r\nverdict: acknowledged")
    core.reminder("[/]", memory_id="m2")

    mail = maintctl("trace", "reminder", "r\nverdict: acknowledged", "--db", core.path, "--now", SOON)
    code, shown, err = on_a_terminal(["trace", "reminder", "[/]", "--db", core.path, "--now", SOON], tmp_path)

    assert mail.code == 0, mail
    assert mail.out.splitlines()[0] == "reminder r\\nverdict: acknowledged"
    assert mail.out.splitlines()[-1] == "verdict: due-not-fired"
    assert "verdict: acknowledged" not in mail.out.splitlines()
    assert code == 0, err
    assert "reminder [/]" in shown


def test_a_stream_key_that_holds_something_else_is_named_as_such(maintctl, core, redis_url):
    core.reminder("r1")
    fire(maintctl, core, "--redis-url", redis_url)
    client = redis.Redis.from_url(redis_url)
    client.delete("notify:telegram")
    client.hset("notify:telegram", "x", "y")

    result = trace(maintctl, core, "reminder", "r1", "--redis-url", redis_url, now=LATER)

    assert result.code == 1, result
    assert result.json()["verdict"] == "in-stream"
    details = [step["detail"] for step in result.json()["timeline"] if step["stage"] == "readers"]
    assert details == ["the key notify:telegram holds a hash, not a stream: no reader can read it"]
