"""The app's recurring jobs: definitions, enqueueing on the tasks stream,
coalescing, overlap, timeouts, results, and what status, stats and history
say of them. A real redis-server, real SQLite files, fixed --now instants."""

import json
from datetime import datetime, timedelta

import pytest
import redis
from conftest import NOW, stream_entries

LATER = "2099-01-01T00:00:00.000Z"  # long after NOW: every run enqueued at NOW has timed out


def at(minutes: float, start: str = NOW) -> str:
    instant = datetime.fromisoformat(start.replace("Z", "+00:00")) + timedelta(minutes=minutes)
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


def runs(core) -> list[tuple]:
    return core.sql(
        "SELECT job, status, scheduled_for, skipped_occurrences, by_hand FROM maintctl_job_runs ORDER BY rowid"
    )


def run_ids(core, status: str | None = None) -> list[str]:
    if status is None:
        return [row[0] for row in core.sql("SELECT id FROM maintctl_job_runs ORDER BY rowid")]
    return [row[0] for row in core.sql("SELECT id FROM maintctl_job_runs WHERE status = ? ORDER BY rowid", status)]


def report(url: str, run_id: str, status: str = "success", **more) -> None:
    """Report a run's result as a worker does."""
    data = {"job_run_id": run_id, "status": status, **more}
    redis.Redis.from_url(url).xadd("tasks:results", {"data": json.dumps(data)})


def tasks(url: str) -> list[dict]:
    return stream_entries(url, "tasks")


def enqueue(maintctl, core, url: str | None, now: str = NOW, *more: str):
    redis_option = ("--redis-url", url) if url else ()
    return maintctl("enqueue-jobs", "--db", core.path, "--now", now, "--json", *redis_option, *more)


class TestDefinitions:
    def test_a_job_added_is_listed_with_its_schedule_and_is_due_at_once(self, maintctl, core):
        added = maintctl(
            "job", "add", "profile", "--type", "profile_maintenance", "--every", "60m", "--bot", "42",
            "--config", '{"entity_id": "nick", "entity_type": "user"}', "--db", core.path, "--now", NOW,
        )  # fmt: skip

        listed = maintctl("job", "list", "--db", core.path, "--now", NOW, "--json")

        assert added.code == 0, added
        assert added.out == "job profile added: every 1h, due now\n"
        (job,) = listed.json()["jobs"]
        assert {key: job[key] for key in ("name", "type", "bot", "enabled", "schedule", "next_run", "last_run")} == {
            "name": "profile",
            "type": "profile_maintenance",
            "bot": "42",
            "enabled": True,
            "schedule": "every 1h",
            "next_run": NOW,
            "last_run": None,
        }
        assert job["config"] == {"entity_id": "nick", "entity_type": "user"}
        assert job["timeout"] == "1h"

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            (("--every", "1h", "--config", "{nope"), "--config: not JSON"),
            (("--every", "1h", "--config", "[1, 2]"), "--config: a JSON object is needed ({...}), not list"),
            (("--every", "0s"), "--every: "),
            (("--every", "soon"), "--every: "),
            (("--cron", "0 3 * * * *"), "has 6 fields; a cron expression has five"),
            (("--cron", "61 * * * *"), "is not a cron expression"),
            (("--cron", "0 3 * * *", "--tz", "Mars/Olympus"), "is not a time zone"),
            (("--every", "1h", "--tz", "Europe/Berlin"), "--tz goes with --cron"),
            (("--every", "1h", "--cron", "0 3 * * *"), "give --every or --cron, not both"),
            ((), "a job needs a schedule: give --every DURATION or --cron EXPR"),
            (("--every", "1h", "--timeout", "0s"), "--timeout: "),
            (("--every", "500ms"), "--every: "),
            (("--every", "0.5s"), "is too often: a job runs at most once a second"),
        ],
    )
    def test_a_bad_definition_is_refused_in_one_line_and_nothing_is_kept(self, maintctl, core, options, message):
        result = maintctl("job", "add", "j", "--type", "t", *options, "--db", core.path)

        assert result.code == 2, result
        assert result.err.startswith("maintctl: error: ") and result.err.count("\n") == 1
        assert message in result.err
        assert core.sql("SELECT count(*) FROM maintctl_jobs") == [(0,)]

    def test_a_name_in_use_is_refused(self, maintctl, core):
        core.job("nightly")

        result = maintctl("job", "add", "nightly", "--type", "t", "--every", "1d", "--db", core.path, "--json")

        assert result.code == 2
        assert result.json()["error"] == "a job named 'nightly' exists already (maintctl job remove nightly first)"
        assert core.sql("SELECT type FROM maintctl_jobs") == [("profile_maintenance",)]

    @pytest.mark.parametrize(
        "command", [("job", "remove"), ("job", "pause"), ("job", "resume"), ("job", "run"), ("history", "--job")]
    )
    def test_an_unknown_name_is_exit_2_and_named(self, maintctl, core, command):
        result = maintctl(*command, "nosuch", "--db", core.path)

        assert result.code == 2, result
        assert "no job is named 'nosuch'" in result.err

    @pytest.mark.parametrize(
        "spoil",
        [
            "config = '{nope'",
            "config = '[1]'",
            "every_seconds = -5",
            "every_seconds = 1e300",
            "added_at = 'whenever'",
            "timeout_seconds = 0",
            "every_seconds = NULL",
            "cron = '0 3 * * * *', every_seconds = NULL",
        ],
    )
    def test_a_definition_spoiled_by_hand_holds_back_that_job_alone(self, maintctl, core, redis_url, spoil):
        core.job("good")
        core.job("spoiled")
        core.sql(f"UPDATE maintctl_jobs SET {spoil} WHERE name = 'spoiled'")

        result = enqueue(maintctl, core, redis_url)
        status = maintctl("status", "--db", core.path, "--now", NOW, "--quiet")
        listed = maintctl("job", "list", "--db", core.path, "--now", NOW)

        assert result.code == 0, result
        assert [entry["data"]["job"] for entry in tasks(redis_url)] == ["good"]
        (warning,) = result.action("enqueue-jobs")["warnings"]
        assert warning.startswith("spoiled: its schedule cannot be kept: ")
        assert status.code == 1 and "job spoiled: " in status.err
        assert listed.code == 0 and "unreadable" in listed.out

    def test_remove_forgets_the_job_keeps_its_runs_and_a_job_added_again_under_its_name_is_due_at_once(
        self, maintctl, core
    ):
        core.job("nightly", every="1d")
        enqueue(maintctl, core, None)

        removed = maintctl("job", "remove", "nightly", "--db", core.path, "--now", at(1))
        core.job("nightly", every="1h", added_at=at(2))
        again = enqueue(maintctl, core, None, at(3))

        assert removed.code == 0 and removed.out == "job nightly removed; 1 run not yet sent withdrawn\n"
        assert again.action("enqueue-jobs")["counts"]["enqueued"] == 1
        assert core.sql("SELECT status, scheduled_for, error FROM maintctl_job_runs ORDER BY rowid") == [
            ("failed", NOW, "the job was removed"),
            ("pending", at(2), None),
        ]


class TestEnqueueing:
    def test_a_run_is_one_message_on_the_tasks_stream_in_the_contracts_form(self, maintctl, core, redis_url):
        core.job("nightly")

        result = enqueue(maintctl, core, redis_url)

        assert result.code == 0, result
        assert result.action("enqueue-jobs")["counts"] == {"enqueued": 1, "skipped": 0, "results": 0, "timed_out": 0}
        (entry,) = tasks(redis_url)
        (run_id,) = run_ids(core)
        assert entry["msg_id"] == f"job:{run_id}"
        assert entry["data"] == {
            "job": "nightly",
            "job_type": "profile_maintenance",
            "bot_id": "*",
            "config": {"entity_id": "nick"},
            "job_run_id": run_id,
            "scheduled_for": NOW,
            "skipped_occurrences": 0,
        }
        assert runs(core) == [("nightly", "running", NOW, 0, 0)]
        assert stream_entries(redis_url) == []  # nothing on the notifications' stream

    def test_the_next_run_comes_an_interval_later_and_not_before(self, maintctl, core, redis_url):
        core.job("nightly", every="1h")
        enqueue(maintctl, core, redis_url)
        report(redis_url, run_ids(core)[0])

        early = enqueue(maintctl, core, redis_url, at(59))
        due = enqueue(maintctl, core, redis_url, at(61))

        assert early.action("enqueue-jobs")["counts"]["enqueued"] == 0
        assert due.action("enqueue-jobs")["counts"]["enqueued"] == 1
        assert [row[1:3] for row in runs(core)] == [("success", NOW), ("running", at(60))]

    def test_missed_occurrences_are_coalesced_into_one_run_that_says_how_many(self, maintctl, core, redis_url):
        core.job("nightly", every="1h")
        enqueue(maintctl, core, redis_url)
        report(redis_url, run_ids(core)[0])

        result = enqueue(maintctl, core, redis_url, at(3 * 60 + 30))

        assert result.action("enqueue-jobs")["counts"]["enqueued"] == 1
        assert runs(core)[-1] == ("nightly", "running", at(180), 2, 0)
        assert tasks(redis_url)[-1]["data"]["skipped_occurrences"] == 2

    def test_cron_times_are_kept_in_the_zone_across_a_daylight_saving_change(self, maintctl, core, redis_url):
        # Europe/Berlin springs forward at 02:00 on 2027-03-28: 02:30 that night does not exist.
        added = "2027-03-26T12:00:00.000Z"
        core.job("nightly", cron="30 2 * * *", tz="Europe/Berlin", added_at=added)
        enqueued = []
        for hour in range(0, 4 * 24, 3):  # a pass every three hours, four days
            now = at(hour * 60, added)
            result = enqueue(maintctl, core, redis_url, now)
            if result.action("enqueue-jobs")["counts"]["enqueued"]:
                enqueued.append(now)
                report(redis_url, run_ids(core)[-1])

        assert [row[2] for row in runs(core)] == [
            added,  # due at once
            "2027-03-27T01:30:00.000Z",  # 02:30 CET
            "2027-03-28T01:00:00.000Z",  # 03:00 CEST: the skipped 02:30 runs when the clock gets past it
            "2027-03-29T00:30:00.000Z",  # 02:30 CEST
            "2027-03-30T00:30:00.000Z",
        ]
        assert len(enqueued) == 5

    def test_a_dry_run_lists_what_it_would_enqueue_and_writes_nothing(self, maintctl, core, redis_url):
        core.job("nightly")
        before = core.digest()

        result = enqueue(maintctl, core, redis_url, NOW, "--dry-run")

        assert result.code == 0, result
        (planned,) = result.action("enqueue-jobs")["planned"]
        assert {key: planned[key] for key in ("job", "step", "scheduled_for")} == {
            "job": "nightly",
            "step": "enqueued",
            "scheduled_for": NOW,
        }
        assert core.digest() == before
        assert tasks(redis_url) == []

    def test_without_redis_the_run_waits_pending_and_is_delivered_once_when_redis_is_back(
        self, maintctl, core, redis_url
    ):
        core.job("nightly")

        unset = enqueue(maintctl, core, None)
        down = enqueue(maintctl, core, "redis://127.0.0.1:1/0", at(1))
        back = enqueue(maintctl, core, redis_url, at(2))
        again = enqueue(maintctl, core, redis_url, at(3))

        assert unset.code == 0 and down.code == 1 and back.code == 0 and again.code == 0
        assert len(tasks(redis_url)) == 1
        assert runs(core) == [("nightly", "running", NOW, 0, 0)]

    def test_a_run_killed_between_xadd_and_commit_is_not_enqueued_twice(self, maintctl, core, redis_url):
        from test_delivery import database_id

        from maintctl.store.outbox import SEND_ONCE_LUA, dedup_prefix

        core.job("nightly")
        enqueue(maintctl, core, None)  # the run and its message, queued
        (run_id,) = run_ids(core)
        (message,) = core.sql("SELECT message FROM maintctl_outbox WHERE msg_id = ?", f"job:{run_id}")
        client = redis.Redis.from_url(redis_url)
        client.register_script(SEND_ONCE_LUA)(  # what the killed run had sent
            keys=["tasks"],
            args=[dedup_prefix("tasks", database_id(core)), 3600, json.dumps([[f"job:{run_id}", message[0]]])],
        )

        result = enqueue(maintctl, core, redis_url, at(1))

        assert result.code == 0, result
        assert [entry["msg_id"] for entry in tasks(redis_url)] == [f"job:{run_id}"]
        assert result.json()["notifications"]["already_in_stream"] == 1
        assert runs(core) == [("nightly", "running", NOW, 0, 0)]


class TestOverlapAndTimeouts:
    def test_an_occurrence_while_the_last_run_waits_for_its_result_is_skipped_not_enqueued(
        self, maintctl, core, redis_url
    ):
        core.job("nightly", every="1h", timeout="2h")
        enqueue(maintctl, core, redis_url)

        result = enqueue(maintctl, core, redis_url, at(61))

        assert result.action("enqueue-jobs")["counts"]["skipped"] == 1
        assert len(tasks(redis_url)) == 1
        assert [row[1:3] for row in runs(core)] == [("running", NOW), ("skipped", at(60))]

    def test_a_run_with_no_result_in_time_fails_and_the_job_goes_on(self, maintctl, core, redis_url):
        core.job("nightly", every="1h", timeout="30m")
        enqueue(maintctl, core, redis_url)

        result = enqueue(maintctl, core, redis_url, LATER)

        assert result.code == 0, result
        counts = result.action("enqueue-jobs")["counts"]
        assert counts["timed_out"] == 1 and counts["enqueued"] == 1
        assert [row[1] for row in runs(core)] == ["failed", "running"]
        (error,) = core.sql("SELECT error FROM maintctl_job_runs WHERE status = 'failed'")
        assert error == ("no result within 30m",)
        (warning,) = result.action("enqueue-jobs")["warnings"]
        assert warning.startswith("nightly: run ") and warning.endswith(" failed: no result within 30m")
        assert len(tasks(redis_url)) == 2

    def test_status_exits_1_while_the_last_finished_run_failed(self, maintctl, core, redis_url):
        core.job("nightly", every="1h")
        enqueue(maintctl, core, redis_url)
        report(redis_url, run_ids(core)[0], "failed", error="the model said no")
        enqueue(maintctl, core, redis_url, at(1))

        failing = maintctl("status", "--db", core.path, "--now", at(1), "--quiet")
        report(redis_url, run_ids(core)[0], "success")  # a second result for the same run changes nothing
        enqueue(maintctl, core, redis_url, at(61))
        report(redis_url, run_ids(core)[-1], "success")
        enqueue(maintctl, core, redis_url, at(62))
        recovered = maintctl("status", "--db", core.path, "--now", at(62), "--quiet")

        assert failing.code == 1
        assert failing.err == "maintctl: attention: job nightly: its last run failed: the model said no\n"
        assert recovered.code == 0 and recovered.err == ""
        assert [row[1] for row in runs(core)] == ["failed", "success"]


class TestResults:
    def test_results_are_read_once_each_in_any_order_and_odd_ones_are_reported_not_fatal(
        self, maintctl, core, redis_url
    ):
        core.job("a")
        core.job("b")
        enqueue(maintctl, core, redis_url)
        first, second = run_ids(core)
        report(redis_url, second, "failed", error="rate limited")
        report(redis_url, first, "success", result={"merged": 3})
        report(redis_url, first, "success", result={"merged": 3})  # a worker retrying its report
        report(redis_url, "not-a-run")
        redis.Redis.from_url(redis_url).xadd("tasks:results", {"data": "{not json"})
        redis.Redis.from_url(redis_url).xadd("tasks:results", {"data": json.dumps({"job_run_id": first})})

        result = enqueue(maintctl, core, redis_url, at(1))
        again = enqueue(maintctl, core, redis_url, at(2))

        assert result.code == 0, result
        assert result.action("enqueue-jobs")["counts"]["results"] == 2
        assert again.action("enqueue-jobs")["counts"]["results"] == 0 and again.err == ""
        assert core.sql("SELECT job, status, result, error FROM maintctl_job_runs ORDER BY job") == [
            ("a", "success", '{"merged": 3}', None),
            ("b", "failed", None, "rate limited"),
        ]
        first_entry = result.action("enqueue-jobs")
        assert [warning.split(": ", 1)[1] for warning in first_entry["warnings"]] == [
            "not a result (data is not JSON: Expecting property name enclosed in double quotes:"
            " line 1 column 2 (char 1)); skipped",
            "not a result (status is not success or failed); skipped",
        ]
        assert first_entry["notes"] == [
            "1 results for runs this database does not have (another database's, sharing tasks:results?) skipped",
            "1 results for runs that had their outcome already ignored",
        ]

    def test_history_shows_each_run_with_its_duration(self, maintctl, core, redis_url):
        core.job("nightly")
        enqueue(maintctl, core, redis_url)
        (run_id,) = run_ids(core)
        report(redis_url, run_id, result={"merged": 1})
        enqueue(maintctl, core, redis_url, at(1))

        result = maintctl("history", "--job", "nightly", "--db", core.path, "--json")

        (run,) = result.json()["runs"]
        assert set(run) >= {
            "job_run_id", "status", "scheduled_for", "enqueued_at", "finished_at", "duration_ms", "result", "error",
        }  # fmt: skip
        assert (run["job_run_id"], run["status"], run["result"], run["error"]) == (
            run_id,
            "success",
            {"merged": 1},
            None,
        )
        assert run["enqueued_at"] <= run["finished_at"] and 0 <= run["duration_ms"] < 60_000


class TestPausesAndRunsByHand:
    def test_a_paused_job_is_not_enqueued_job_run_enqueues_it_anyway_and_resume_coalesces(
        self, maintctl, core, redis_url
    ):
        core.job("nightly", every="1h")
        enqueue(maintctl, core, redis_url)
        report(redis_url, run_ids(core)[0])

        paused = maintctl("job", "pause", "nightly", "--db", core.path, "--now", NOW)
        while_paused = maintctl("run-all", "--db", core.path, "--now", at(120), "--redis-url", redis_url, "--json")
        by_hand = maintctl("job", "run", "nightly", "--db", core.path, "--now", at(121), "--redis-url", redis_url)
        report(redis_url, run_ids(core)[-1])
        resumed = maintctl("job", "resume", "nightly", "--db", core.path)
        after = enqueue(maintctl, core, redis_url, at(5 * 60 + 1))

        assert paused.out == "job nightly paused\n" and resumed.out == "job nightly resumed\n"
        assert while_paused.action("enqueue-jobs")["counts"]["enqueued"] == 0
        assert by_hand.code == 0, by_hand
        assert after.action("enqueue-jobs")["counts"]["enqueued"] == 1
        assert runs(core) == [
            ("nightly", "success", NOW, 0, 0),
            ("nightly", "success", at(121), 0, 1),
            ("nightly", "running", at(300), 4, 0),
        ]
        assert len(tasks(redis_url)) == 3


class TestReports:
    def test_stats_give_each_jobs_runs_success_rate_and_durations(self, maintctl, core, redis_url):
        core.job("nightly", every="1h")
        for hour in range(4):
            enqueue(maintctl, core, redis_url, at(hour * 60))
            report(redis_url, run_ids(core)[-1], "failed" if hour == 3 else "success", error="x" if hour == 3 else None)
        enqueue(maintctl, core, redis_url, at(4 * 60 - 1))

        result = maintctl("stats", "--db", core.path, "--now", at(4 * 60), "--json")

        (row,) = next(a for a in result.json()["actions"] if a["action"] == "enqueue-jobs")["jobs"]
        assert (row["job"], row["runs"], row["success_rate"]) == ("nightly", 4, 0.75)
        assert row["avg_duration_ms"] is not None and row["p95_duration_ms"] is not None

    def test_the_metrics_file_has_each_jobs_last_success_duration_and_failures_in_a_row(
        self, maintctl, core, redis_url, tmp_path
    ):
        metrics = tmp_path / "maintctl.prom"
        core.job("nightly", every="1h")
        enqueue(maintctl, core, redis_url)
        report(redis_url, run_ids(core)[-1], "failed", error="x")

        maintctl(
            "enqueue-jobs", "--db", core.path, "--now", at(1), "--redis-url", redis_url,
            env={"MAINTCTL_METRICS_FILE": str(metrics)},
        )  # fmt: skip

        text = metrics.read_text()
        assert 'maintctl_job_consecutive_failures{job="nightly"} 1.0' in text
        assert 'maintctl_job_last_duration_seconds{job="nightly"} ' in text
        assert "maintctl_job_last_success_timestamp_seconds" not in text.replace("# HELP", "").split("# TYPE")[0]

    def test_init_db_sample_adds_the_profile_maintenance_job(self, maintctl, tmp_path):
        result = maintctl("init-db", "--sample", "--db", tmp_path / "demo.db", "--json")

        listed = maintctl("job", "list", "--db", tmp_path / "demo.db", "--json")

        assert result.json()["sample"]["maintctl_jobs"] == 1
        (job,) = listed.json()["jobs"]
        assert (job["name"], job["schedule"], job["bot"], job["config"]) == (
            "profile-maintenance",
            "every 1h",
            "*",
            {"entity_id": "nick", "entity_type": "user"},
        )
