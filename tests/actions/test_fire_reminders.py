import json

import pytest
from conftest import NOW, stream_entries


def fire(maintctl, core, *extra, **kwargs):
    return maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--json", *extra, **kwargs)


def fired_ids(core):
    return {reminder_id for (reminder_id,) in core.sql("SELECT id FROM reminders WHERE fired = 1")}


def test_selection_boundaries_exactly_now_fires_and_a_millisecond_later_does_not(maintctl, core):
    core.reminder("before", fire_at="2026-11-22T09:29:59.999Z")
    core.reminder("exactly", fire_at=NOW)
    core.reminder("after", fire_at="2026-11-22T09:30:00.001Z")
    core.reminder("already", fire_at="2026-11-22T09:00:00.000Z", fired=1)

    result = fire(maintctl, core)

    assert result.code == 0, result
    assert result.action("fire-reminders")["counts"] == {"fired": 2, "created": 0}
    assert fired_ids(core) == {"before", "exactly", "already"}


def test_each_firing_is_audited_and_queued_with_the_contract_message(maintctl, core, redis_url):
    core.memory("m7", owner=4242, content="Pay the rent")
    core.reminder("r7", memory_id="m7", owner=4242, fire_at="2026-11-22T08:00:00.000Z")

    result = fire(maintctl, core, "--redis-url", redis_url)

    assert result.code == 0, result
    assert core.audit("reminder") == [("reminder", "r7", "fired", "system:scheduler", None, NOW)]
    assert stream_entries(redis_url) == [
        {
            "id": stream_entries(redis_url)[0]["id"],
            "msg_id": "reminder:r7:2026-11-22T08:00:00.000Z",
            "data": {
                "user_id": 4242,
                "message_type": "reminder",
                "content": {
                    "reminder_id": "r7",
                    "memory_id": "m7",
                    "memory_content": "Pay the rent",
                    "fire_at": "2026-11-22T08:00:00.000Z",
                },
            },
        }
    ]


def test_the_user_is_the_memory_owner(maintctl, core, redis_url):
    core.memory("m1", owner=1001)
    core.reminder("r1", memory_id="m1", owner=2002)

    fire(maintctl, core, "--redis-url", redis_url)

    assert [entry["data"]["user_id"] for entry in stream_entries(redis_url)] == [1001]


def test_a_second_run_changes_nothing(maintctl, core, redis_url):
    core.reminder("r1", recurrence=60)
    core.reminder("r2", fire_at="2026-11-22T09:00:00.000Z")
    first = fire(maintctl, core, "--redis-url", redis_url)
    snapshot = core.data_digest()

    second = fire(maintctl, core, "--redis-url", redis_url)

    assert first.action("fire-reminders")["counts"] == {"fired": 2, "created": 1}
    assert second.code == 0
    assert second.action("fire-reminders")["counts"] == {"fired": 0, "created": 0}
    assert core.data_digest() == snapshot
    assert len(stream_entries(redis_url)) == 2


def test_the_actor_can_be_named(maintctl, core):
    core.reminder("r1")

    fire(maintctl, core, env={"MAINTCTL_ACTOR": "ops:alice"})

    assert core.audit("reminder")[0][3] == "ops:alice"


class TestRecurrence:
    def test_next_occurrence_is_one_period_on_when_run_on_time(self, maintctl, core):
        core.reminder("r1", fire_at="2026-11-22T09:00:00.000Z", recurrence=60)

        result = fire(maintctl, core)

        successors = core.sql(
            "SELECT id, memory_id, owner_user_id, fire_at, recurrence_minutes, fired FROM reminders WHERE id != 'r1'"
        )
        assert len(successors) == 1
        new_id, memory_id, owner, fire_at, recurrence, fired = successors[0]
        assert (memory_id, owner, fire_at, recurrence, fired) == ("m1", 1001, "2026-11-22T10:00:00.000Z", 60, 0)
        assert result.action("fire-reminders")["counts"] == {"fired": 1, "created": 1}
        assert core.audit("reminder")[1] == (
            "reminder",
            new_id,
            "created",
            "system:scheduler",
            json.dumps({"source": "recurrence"}),
            NOW,
        )

    def test_missed_occurrences_are_coalesced_into_one_firing(self, maintctl, core, redis_url):
        # hourly, last due 09:00 three days ago: 72 occurrences since; the next after now is 10:00 today
        core.reminder("r1", fire_at="2026-11-19T09:00:00.000Z", recurrence=60)

        fire(maintctl, core, "--redis-url", redis_url)

        assert len(stream_entries(redis_url)) == 1
        (successor,) = core.sql("SELECT id, fire_at FROM reminders WHERE fired = 0")
        assert successor[1] == "2026-11-22T10:00:00.000Z"
        created = [row for row in core.audit("reminder") if row[2] == "created"]
        assert json.loads(created[0][4]) == {"source": "recurrence", "skipped_occurrences": 72}

    def test_an_occurrence_landing_exactly_on_now_is_skipped_for_the_one_after(self, maintctl, core):
        core.reminder("r1", fire_at="2026-11-22T09:00:00.000Z", recurrence=30)

        fire(maintctl, core)

        assert core.sql("SELECT fire_at FROM reminders WHERE fired = 0") == [("2026-11-22T10:00:00.000Z",)]
        created = [row for row in core.audit("reminder") if row[2] == "created"]
        assert json.loads(created[0][4])["skipped_occurrences"] == 1

    def test_successor_counts_from_the_instant_of_a_non_canonical_fire_at(self, maintctl, core):
        core.reminder("r1", fire_at="2026-11-22 14:45:00+05:30", recurrence=1440)  # 09:15Z

        fire(maintctl, core)

        assert core.sql("SELECT fire_at FROM reminders WHERE fired = 0") == [("2026-11-23T09:15:00.000Z",)]

    @pytest.mark.parametrize("recurrence", [0, -15])
    def test_recurrence_of_zero_or_less_fires_once_and_is_reported(self, maintctl, core, recurrence):
        core.reminder("r1", recurrence=recurrence)

        result = fire(maintctl, core)

        assert result.code == 0
        assert fired_ids(core) == {"r1"}
        assert core.sql("SELECT count(*) FROM reminders") == [(1,)]
        action = result.action("fire-reminders")
        assert action["counts"] == {"fired": 1, "created": 0}
        assert any("r1" in warning and "recurrence_minutes" in warning for warning in action["warnings"])

    def test_recurrence_beyond_the_last_representable_instant_fires_once_and_is_reported(self, maintctl, core):
        core.reminder("r1", recurrence=2**62)

        result = fire(maintctl, core)

        assert fired_ids(core) == {"r1"}
        assert core.sql("SELECT count(*) FROM reminders") == [(1,)]
        assert "year 9999" in result.action("fire-reminders")["warnings"][0]

    def test_successor_keeps_the_apps_other_columns(self, maintctl, core):
        core.sql("ALTER TABLE reminders ADD COLUMN channel TEXT DEFAULT 'telegram'")
        core.reminder("r1", recurrence=60)
        core.sql("UPDATE reminders SET channel = 'sms' WHERE id = 'r1'")

        fire(maintctl, core)

        assert core.sql("SELECT channel FROM reminders WHERE fired = 0") == [("sms",)]


class TestTimestampForms:
    @pytest.mark.parametrize(
        "fire_at, due",
        [
            ("2026-11-22 09:30:00", True),  # a space, no fraction
            ("2026-11-22 09:30:01", False),
            ("2026-11-22T09:30", True),  # no seconds
            ("2026-11-22T09:30:00Z", True),
            ("2026-11-22T15:00:00+05:30", True),  # = 09:30Z
            ("2026-11-22T15:00:01+05:30", False),
            ("2026-11-22T19:29:00+10:00", True),  # sorts after now as text, is before it
            ("2026-11-22T04:30:00-05:00", True),  # = 09:30Z
            ("2026-11-22T04:30:01-05:00", False),
            ("2026-11-22 04:31:00-05:00", False),  # sorts before now as text, is after it
            ("2026-11-22", True),  # midnight
            ("2026-11-23", False),
            ("2026-11-21T23:59:59.999+14:00", True),
            ("2461366.5", True),  # a Julian day number: midnight
        ],
    )
    def test_compared_by_the_instant_named(self, maintctl, core, fire_at, due):
        core.reminder("r1", fire_at=fire_at)

        result = fire(maintctl, core)

        assert result.code == 0, result
        assert fired_ids(core) == ({"r1"} if due else set())

    @pytest.mark.parametrize("fire_at", ["tomorrow", "", "2026-11-22T25:00:00Z", "2026-11-22 09:30:00 UTC", None])
    def test_a_value_naming_no_instant_is_reported_and_does_not_stop_the_pass(self, maintctl, core, fire_at):
        core.reminder("bad", fire_at=fire_at)
        core.reminder("good", memory_id="m2")

        result = fire(maintctl, core)

        assert result.code == 0, result
        assert fired_ids(core) == {"good"}
        assert result.action("fire-reminders")["warnings"] == [
            f"reminder bad: fire_at {fire_at!r} names no instant; not fired"
        ]

    def test_unreadable_values_are_reported_on_stderr_in_text_mode(self, maintctl, core):
        core.reminder("bad", fire_at="tomorrow")

        result = maintctl("fire-reminders", "--db", core.path, "--now", NOW)

        assert result.code == 0
        assert "reminder bad: fire_at 'tomorrow' names no instant" in result.err


def test_a_reminder_whose_memory_is_gone_is_reported_not_fired(maintctl, core):
    core.reminder("orphan", memory_id="m1")
    core.sql("DELETE FROM memories WHERE id = 'm1'")  # the app's connection enforces no foreign keys

    result = fire(maintctl, core)

    assert result.code == 0
    assert fired_ids(core) == set()
    assert result.action("fire-reminders")["warnings"] == ["reminder orphan: its memory m1 is gone; not fired"]


def test_many_due_reminders_are_fired_across_batches(maintctl, core, redis_url):
    core.due_reminders(1234)

    result = fire(maintctl, core, "--redis-url", redis_url, env={"MAINTCTL_BATCH_SIZE": "100"})

    assert result.action("fire-reminders")["counts"] == {"fired": 1234, "created": 124}
    assert core.sql("SELECT count(*) FROM reminders WHERE fired = 1") == [(1234,)]
    entries = stream_entries(redis_url)
    assert len(entries) == 1234 and len({entry["msg_id"] for entry in entries}) == 1234
    assert core.sql("SELECT count(*) FROM audit_log WHERE action = 'fired'") == [(1234,)]


def test_dry_run_lists_the_plan_and_changes_not_a_byte(maintctl, core, redis_url):
    core.reminder("r1", fire_at="2026-11-19T09:00:00.000Z", recurrence=60)
    core.reminder("r2", memory_id="m2")
    core.reminder("later", memory_id="m3", fire_at="2026-11-23T00:00:00.000Z")
    before = core.digest()

    result = fire(maintctl, core, "--dry-run", "--redis-url", redis_url)

    assert result.code == 0, result
    assert core.digest() == before
    assert stream_entries(redis_url) == []
    action = result.action("fire-reminders")
    assert action["counts"] == {"fired": 2, "created": 1}
    planned = {item["id"]: item for item in action["planned"]}
    assert set(planned) == {"r1", "r2"}
    assert planned["r1"]["next_fire_at"] == "2026-11-22T10:00:00.000Z"
    assert planned["r1"]["skipped_occurrences"] == 72


def test_dry_run_text_shows_each_reminder(maintctl, core):
    core.reminder("r1")

    result = maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--dry-run")

    assert result.code == 0
    assert "dry run" in result.out
    assert "reminder r1 for user 1001" in result.out
    assert fired_ids(core) == set()


def test_concurrent_runs_past_the_lock_fire_each_reminder_once(core, redis_url, tmp_path):
    """Each run has a lock file of its own: as on a filesystem where locking does not work."""
    from conftest import start_firing

    core.due_reminders(4000)

    runs = [
        start_firing(
            core,
            tmp_path,
            "--redis-url",
            redis_url,
            env={"MAINTCTL_BATCH_SIZE": "250", "MAINTCTL_LOCK_FILE": str(tmp_path / f"lock{index}")},
        )
        for index in range(3)
    ]
    codes = [run.wait(timeout=120) for run in runs]

    assert codes == [0, 0, 0], [run.stderr.read() for run in runs]
    assert core.sql("SELECT count(*) FROM reminders WHERE fired = 1") == [(4000,)]
    assert core.sql("SELECT count(*) FROM reminders WHERE fired = 0") == [(400,)]  # one successor each
    assert core.sql("SELECT count(*), count(DISTINCT entity_id) FROM audit_log WHERE action = 'fired'") == [
        (4000, 4000)
    ]
    entries = stream_entries(redis_url)
    assert len(entries) == 4000 and len({entry["msg_id"] for entry in entries}) == 4000
