"""The app's jobs against odd clocks, rows spoiled by hand, hostile
definitions and results, and Redis going away."""

import json

import pytest
import redis
from conftest import NOW
from test_jobs import LATER, at, enqueue, report, run_ids, runs, tasks


class TestClocks:
    def test_a_pass_with_a_later_now_does_not_stop_the_job(self, maintctl, core, redis_url):
        core.job("nightly", every="1h")
        enqueue(maintctl, core, redis_url)
        report(redis_url, run_ids(core)[0])

        ahead = enqueue(maintctl, core, redis_url, LATER)  # a clock that ran ahead
        report(redis_url, run_ids(core)[-1])
        back = []
        for minutes in (61, 62, 121):
            back.append(enqueue(maintctl, core, redis_url, at(minutes)))
            report(redis_url, run_ids(core)[-1])

        assert ahead.action("enqueue-jobs")["counts"]["enqueued"] == 1
        assert [result.action("enqueue-jobs")["counts"]["enqueued"] for result in back] == [1, 0, 1]
        assert all(result.action("enqueue-jobs")["warnings"] == [] for result in back)

    def test_a_clock_put_back_makes_no_run_per_pass(self, maintctl, core, redis_url):
        core.job("nightly", every="1h")
        enqueue(maintctl, core, redis_url)
        report(redis_url, run_ids(core)[0])
        enqueue(maintctl, core, redis_url, at(60))
        report(redis_url, run_ids(core)[-1])

        again = [enqueue(maintctl, core, redis_url, at(minutes)) for minutes in (30, 31, 32, 60, 61)]

        assert [result.action("enqueue-jobs")["counts"]["enqueued"] for result in again] == [0, 0, 0, 0, 0]
        assert len(tasks(redis_url)) == 2


class TestSpoiledRows:
    @pytest.mark.parametrize(
        "spoil",
        [
            "UPDATE maintctl_job_runs SET scheduled_for = 'garbage'",
            "UPDATE maintctl_job_runs SET scheduled_for = '2026-11-22 09:30:00'",
            "UPDATE maintctl_job_runs SET enqueued_at = 'garbage'",
            "UPDATE maintctl_job_runs SET enqueued_at = '2026-11-22 09:30:00'",
            "UPDATE maintctl_job_runs SET duration_ms = 'abc', status = 'success'",
            "UPDATE maintctl_job_runs SET error = X'ff', duration_ms = X'ff', status = 'failed'",
            "UPDATE maintctl_job_runs SET result = X'ff00', status = 'success'",
            "UPDATE maintctl_jobs SET added_at = '2026-11-22 09:30:00' WHERE name = 'spoiled'",
            "UPDATE maintctl_jobs SET config = '" + "[" * 5000 + "]" * 5000 + "' WHERE name = 'spoiled'",
            "UPDATE maintctl_jobs SET config = '{\"a\": NaN}' WHERE name = 'spoiled'",
        ],
    )
    def test_a_spoiled_row_never_stops_the_other_jobs_nor_a_command(self, maintctl, core, redis_url, spoil):
        core.job("spoiled")
        enqueue(maintctl, core, redis_url)
        core.sql(spoil)
        core.job("good", added_at=at(1))

        result = enqueue(maintctl, core, redis_url, at(61))
        commands = [
            maintctl("job", "list", "--db", core.path, "--now", at(61), "--json"),
            maintctl("status", "--db", core.path, "--now", at(61), "--json"),
            maintctl("stats", "--db", core.path, "--now", at(61), "--json"),
            maintctl("history", "--job", "spoiled", "--db", core.path, "--json"),
        ]

        assert result.code == 0, result
        assert "good" in [entry["data"]["job"] for entry in tasks(redis_url)]
        for command in commands:
            assert command.code in (0, 1), command  # 1: status, when something needs attention
            assert command.err == "" and isinstance(command.json(), dict)

    def test_job_run_refuses_a_job_whose_definition_cannot_be_read(self, maintctl, core, redis_url):
        core.job("spoiled")
        core.sql("UPDATE maintctl_jobs SET config = '{\"model\": \"x\"' WHERE name = 'spoiled'")

        result = maintctl("job", "run", "spoiled", "--db", core.path, "--now", NOW, "--redis-url", redis_url)

        assert result.code == 2
        assert "job spoiled: its definition cannot be read" in result.err
        assert tasks(redis_url) == []


class TestHostileDefinitions:
    @pytest.mark.parametrize(
        ("options", "message"),
        [
            (("--config", '{"a": NaN}'), "--config: NaN is not JSON that every reader takes"),
            (("--config", '{"a": -Infinity}'), "--config: -Infinity is not JSON that every reader takes"),
            (("--config", "[" * 3000 + "]" * 3000), "--config: nested too deeply"),
            (("--config", '{"a": "\\ud800"}'), "--config: holds a lone surrogate"),
            (("--bot", ""), "--bot: "),
            (("--bot", "4\n2"), "--bot: "),
            (("--type", " "), "--type: "),
        ],
    )
    def test_is_refused_in_one_line_naming_the_option(self, maintctl, core, options, message):
        result = maintctl("job", "add", "j", "--type", "t", "--every", "1h", *options, "--db", core.path)

        assert result.code == 2, result
        assert result.err.count("\n") == 1 and message in result.err
        assert core.sql("SELECT count(*) FROM maintctl_jobs") == [(0,)]

    def test_a_name_beyond_200_characters_is_refused_and_not_echoed_whole(self, maintctl, core):
        result = maintctl("job", "add", "n" * 100_000, "--type", "t", "--every", "1h", "--db", core.path)

        assert result.code == 2
        assert "the job's name: " in result.err and len(result.err) < 400


class TestResultsAndRedis:
    def test_results_wait_unread_while_redis_is_away_and_no_run_times_out_meanwhile(self, maintctl, core, redis_url):
        core.job("nightly", every="1h", timeout="1m")
        enqueue(maintctl, core, redis_url)
        report(redis_url, run_ids(core)[0], result={"ok": True})

        away = enqueue(maintctl, core, "redis://127.0.0.1:1/0", LATER)
        back = enqueue(maintctl, core, redis_url, LATER)

        assert away.code == 1 and away.action("enqueue-jobs")["counts"]["timed_out"] == 0
        assert "the workers' results could not be read" in away.action("enqueue-jobs")["error"]
        assert back.code == 0 and back.action("enqueue-jobs")["counts"]["results"] == 1
        assert runs(core)[0][:2] == ("nightly", "success")

    def test_a_dry_run_reads_the_results_and_plans_what_the_pass_does(self, maintctl, core, redis_url):
        core.job("nightly", every="1h", timeout="1m")
        core.job("other", every="1h", timeout="1m")
        enqueue(maintctl, core, redis_url)
        first, _ = run_ids(core)
        report(redis_url, first)
        before = core.digest()

        dry = enqueue(maintctl, core, redis_url, LATER, "--dry-run")
        real = enqueue(maintctl, core, redis_url, LATER)

        assert core.digest() != before  # the real pass wrote; the dry run, checked below, did not
        planned = dry.action("enqueue-jobs")
        assert (
            planned["counts"]
            == real.action("enqueue-jobs")["counts"]
            == {
                "enqueued": 2,
                "skipped": 0,
                "results": 1,
                "timed_out": 1,
            }
        )
        assert dry.json()["notifications"]["would_queue"] == 2

    def test_results_of_another_databases_runs_are_a_note_and_quiet_stays_quiet(self, maintctl, core, redis_url):
        core.job("nightly")
        enqueue(maintctl, core, redis_url)
        client = redis.Redis.from_url(redis_url)
        for number in range(300):
            client.xadd("tasks:results", {"data": json.dumps({"job_run_id": f"other-{number}", "status": "success"})})

        quiet = maintctl("enqueue-jobs", "--db", core.path, "--now", at(1), "--redis-url", redis_url, "--quiet")
        shown = enqueue(maintctl, core, redis_url, at(2))

        assert quiet.code == 0 and quiet.out == quiet.err == ""
        assert shown.action("enqueue-jobs")["notes"] == []  # read once: the position was kept
        assert core.sql("SELECT value FROM maintctl_meta WHERE key = 'results_read:tasks:results'") != []
