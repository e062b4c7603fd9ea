"""The workers' results as they really come: a lone surrogate, NaN and numbers
past a double's range; one clock for a pass whatever --now says; a removed
job's run that never left the database. A real redis-server, maintctl run as
a process."""

import json

import pytest
import redis
from conftest import NOW
from test_jobs import at, enqueue, report, run_ids, tasks


def post(url: str, data: str) -> None:
    """Put an entry on the results stream whose data is exactly this text (as a worker in any language may)."""
    redis.Redis.from_url(url).xadd("tasks:results", {"data": data})


def strict(text: str):
    """Parse JSON as JavaScript's and Go's parsers do: NaN and Infinity are refused."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def run_row(core, run_id: str) -> tuple:
    return core.sql(
        "SELECT status, error, result, enqueued_at, finished_at, duration_ms FROM maintctl_job_runs WHERE id = ?",
        run_id,
    )[0]


class TestAPoisonedResult:
    def test_a_lone_surrogate_in_an_error_stops_nothing_and_what_follows_is_read(self, maintctl, core, redis_url):
        core.job("poisoned")
        core.job("good")
        enqueue(maintctl, core, redis_url)
        poisoned, good = (
            core.sql("SELECT id FROM maintctl_job_runs WHERE job = ?", name)[0][0] for name in ("poisoned", "good")
        )
        post(redis_url, '{"job_run_id": "' + poisoned + '", "status": "failed", "error": "bad \\ud800"}')
        report(redis_url, good, result={"merged": 3})

        first = enqueue(maintctl, core, redis_url, at(1))
        again = enqueue(maintctl, core, redis_url, at(2))

        assert first.code == 0, first
        action = first.action("enqueue-jobs")
        assert action["counts"]["results"] == 2
        assert "Redis" not in first.out + first.err
        (warning,) = action["warnings"]
        assert "tasks:results entry" in warning and "lone surrogate" in warning
        assert run_row(core, poisoned)[:2] == ("failed", "bad \ufffd")
        assert run_row(core, good)[:2] == ("success", None) and json.loads(run_row(core, good)[2]) == {"merged": 3}
        assert again.code == 0 and again.action("enqueue-jobs")["counts"]["results"] == 0
        assert again.action("enqueue-jobs")["warnings"] == []

    @pytest.mark.parametrize(
        "data",
        [
            '{"job_run_id": "\\udc00", "status": "success"}',
            '{"job_run_id": "x", "status": "success", "result": {"\\ud800": 1}, "error": 7}',
            '{"job_run_id": "x", "status": "success", "n": 1' + "0" * 5000 + "}",
            "[" * 100_000 + "]" * 100_000,
        ],
    )
    def test_an_entry_that_is_no_result_is_skipped_and_the_next_one_is_read(self, maintctl, core, redis_url, data):
        core.job("nightly")
        enqueue(maintctl, core, redis_url)
        (run_id,) = run_ids(core)
        post(redis_url, data)
        report(redis_url, run_id)

        result = enqueue(maintctl, core, redis_url, at(1))

        assert result.code == 0, result
        assert run_row(core, run_id)[0] == "success"
        (warning,) = result.action("enqueue-jobs")["warnings"]
        assert "not a result" in warning and "skipped" in warning

    def test_a_lone_surrogate_in_a_result_is_kept_as_text_and_printed_as_strict_json(self, maintctl, core, redis_url):
        core.job("nightly")
        enqueue(maintctl, core, redis_url)
        (run_id,) = run_ids(core)
        post(redis_url, '{"job_run_id": "' + run_id + '", "status": "success", "result": {"\\udfff": "a\\ud800b"}}')

        result = enqueue(maintctl, core, redis_url, at(1))
        history = maintctl("history", "--job", "nightly", "--db", core.path, "--json")

        assert result.code == 0, result
        assert strict(history.out)["runs"][0]["result"] == {"\ufffd": "a\ufffdb"}


class TestStrictJson:
    def test_nan_and_infinities_from_a_worker_are_printed_as_null(self, maintctl, core, redis_url):
        core.job("nightly")
        enqueue(maintctl, core, redis_url)
        (run_id,) = run_ids(core)
        post(
            redis_url,
            '{"job_run_id": "' + run_id + '", "status": "success",'
            ' "result": {"v": NaN, "w": Infinity, "x": -1e999, "y": [1.5]}}',
        )

        read = enqueue(maintctl, core, redis_url, at(1))
        printed = [
            maintctl("history", "--job", "nightly", "--db", core.path, "--json"),
            maintctl("job", "list", "--db", core.path, "--now", at(1), "--json"),
        ]

        assert read.code == 0, read
        (warning,) = read.action("enqueue-jobs")["warnings"]
        assert "NaN or an infinite number in its result stored as null" in warning
        assert strict(printed[0].out)["runs"][0]["result"] == {"v": None, "w": None, "x": None, "y": [1.5]}
        assert strict(printed[1].out)["jobs"][0]["last_run"]["result"]["v"] is None

    def test_a_result_stored_with_nan_before_is_printed_as_strict_json(self, maintctl, core, redis_url):
        core.job("nightly")
        enqueue(maintctl, core, redis_url)
        core.sql("UPDATE maintctl_job_runs SET status = 'success', result = '{\"v\": NaN, \"w\": [-Infinity]}'")

        for command in (
            ("history", "--job", "nightly", "--db", core.path, "--json"),
            ("job", "list", "--db", core.path, "--now", at(1), "--json"),
            ("status", "--db", core.path, "--now", at(1), "--json"),
        ):
            printed = maintctl(*command)
            assert printed.code == 0, printed
            strict(printed.out)
        assert strict(maintctl("history", "--job", "nightly", "--db", core.path, "--json").out)["runs"][0][
            "result"
        ] == {"v": None, "w": [None]}


class TestOneClock:
    FUTURE = "2099-01-01T00:00:00.000Z"
    PAST = "2020-01-01T00:00:00.000Z"

    def test_with_a_now_ahead_of_the_real_clock_a_run_does_not_time_out_at_once(self, maintctl, core, redis_url):
        core.job("nightly", every="1d", added_at=self.FUTURE)
        enqueue(maintctl, core, redis_url, self.FUTURE)

        result = enqueue(maintctl, core, redis_url, at(0.07, self.FUTURE))  # 4 s later

        assert result.code == 0, result
        assert result.action("enqueue-jobs")["counts"]["timed_out"] == 0
        (run_id,) = run_ids(core)
        assert run_row(core, run_id)[0] == "running"
        assert run_row(core, run_id)[3] == self.FUTURE  # enqueued by the pass at FUTURE: its clock, not Redis's

    def test_with_a_now_behind_the_real_clock_a_silent_run_times_out_and_the_job_goes_on(
        self, maintctl, core, redis_url
    ):
        core.job("nightly", every="1h", added_at=self.PAST)
        enqueue(maintctl, core, redis_url, self.PAST)

        result = enqueue(maintctl, core, redis_url, at(61, self.PAST))

        assert result.code == 0, result
        assert result.action("enqueue-jobs")["counts"] == {"enqueued": 1, "skipped": 0, "results": 0, "timed_out": 1}
        first = run_ids(core)[0]
        assert run_row(core, first)[:2] == ("failed", "no result within 1h")
        assert run_row(core, first)[3:] == (self.PAST, at(61, self.PAST), 61 * 60_000)
        assert len(tasks(redis_url)) == 2

    def test_a_result_read_later_is_timed_on_one_clock(self, maintctl, core, redis_url):
        core.job("nightly", every="1h", added_at=self.PAST)
        enqueue(maintctl, core, redis_url, self.PAST)
        (run_id,) = run_ids(core)
        report(redis_url, run_id)

        result = enqueue(maintctl, core, redis_url, at(1, self.PAST))

        assert result.code == 0, result
        status, _, _, enqueued_at, finished_at, duration_ms = run_row(core, run_id)
        assert status == "success" and enqueued_at == self.PAST
        assert 0 <= duration_ms < 30_000  # the result came a moment after the message, on Redis's clock
        assert self.PAST <= finished_at <= at(1, self.PAST)
        assert finished_at == at(duration_ms / 60_000, self.PAST)


class TestARemovedJob:
    def test_its_run_still_queued_is_withdrawn_and_never_sent(self, maintctl, core, redis_url):
        core.job("gone")
        core.job("kept")
        queued = enqueue(maintctl, core, None)

        removed = maintctl("job", "remove", "gone", "--db", core.path, "--now", at(1))
        delivered = maintctl("run-all", "--db", core.path, "--now", at(2), "--redis-url", redis_url, "--json")

        assert queued.code == removed.code == delivered.code == 0, (queued, removed, delivered)
        assert [entry["data"]["job"] for entry in tasks(redis_url)] == ["kept"]
        assert core.sql("SELECT job, status, error FROM maintctl_job_runs ORDER BY job") == [
            ("gone", "failed", "the job was removed"),
            ("kept", "running", None),
        ]
        assert core.sql("SELECT count(*) FROM maintctl_outbox WHERE delivered_at IS NULL") == [(0,)]
        assert "withdrawn" in removed.out

    def test_a_job_added_again_under_its_name_is_sent_its_own_run(self, maintctl, core, redis_url):
        core.job("again")
        enqueue(maintctl, core, None)
        maintctl("job", "remove", "again", "--db", core.path, "--now", at(1))
        core.job("again", added_at=at(2))

        delivered = enqueue(maintctl, core, redis_url, at(2))

        assert delivered.code == 0, delivered
        (entry,) = tasks(redis_url)
        assert entry["data"]["scheduled_for"] == at(2)


def test_job_resume_takes_now_as_pause_does(maintctl, core):
    core.job("nightly")
    paused = maintctl("job", "pause", "nightly", "--db", core.path, "--now", NOW)

    resumed = maintctl("job", "resume", "nightly", "--db", core.path, "--now", at(5), "--json")

    assert paused.code == 0 and resumed.code == 0, resumed
    assert resumed.json()["resumed"] is True
