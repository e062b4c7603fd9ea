"""Pause, resume and schedules: run-all's decisions at fixed instants, across daylight-saving changes."""

from datetime import UTC, datetime, timedelta

import pytest
from conftest import NOW

from maintctl.store.schedules import Schedule


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


class TestDecisions:
    def test_every_run_is_always_due(self):
        assert Schedule("fire-reminders").due(at("2026-11-22T09:29:59Z"), at("2026-11-22T09:30:00Z"))

    def test_every_hour_allows_for_cron_starting_a_little_late(self):
        hourly = Schedule("prune", every=timedelta(hours=1))
        last = at("2026-11-22T09:00:05Z")

        assert hourly.due(None, last)
        assert not hourly.due(last, at("2026-11-22T09:58:00Z"))
        assert hourly.due(last, at("2026-11-22T09:59:10Z"))

    def test_cron_counts_from_when_it_was_set_until_it_first_runs(self):
        nightly = Schedule("backup", cron="0 3 * * *", set_at=at("2026-11-22T09:30:00Z"))

        assert not nightly.due(None, at("2026-11-23T02:59:00Z"))
        assert nightly.due(None, at("2026-11-23T03:00:00Z"))

    def test_a_cron_time_missed_while_the_machine_was_off_is_made_up_once(self):
        nightly = Schedule("backup", cron="0 3 * * *", set_at=at("2026-11-01T00:00:00Z"))
        last = at("2026-11-20T03:00:01Z")

        assert nightly.due(last, at("2026-11-22T09:30:00Z"))  # two nights missed: due now
        assert not nightly.due(at("2026-11-22T09:30:00Z"), at("2026-11-22T09:31:00Z"))  # and then not again

    def test_spring_forward_a_time_that_does_not_exist_runs_when_the_clock_jumps(self):
        # Europe/Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 never happens.
        nightly = Schedule("backup", cron="30 2 * * *", tz="Europe/Berlin", set_at=at("2026-03-20T00:00:00Z"))
        last = at("2026-03-28T01:30:00Z")  # 02:30 CET the night before

        assert not nightly.due(last, at("2026-03-29T00:59:00Z"))  # 01:59 CET
        assert nightly.due(last, at("2026-03-29T01:00:00Z"))  # 03:00 CEST, the moment after the jump

    def test_fall_back_a_time_that_happens_twice_runs_once(self):
        # Europe/Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
        nightly = Schedule("backup", cron="30 2 * * *", tz="Europe/Berlin", set_at=at("2026-10-20T00:00:00Z"))
        first = at("2026-10-25T00:30:00Z")  # 02:30 CEST

        assert nightly.due(at("2026-10-24T00:30:00Z"), first)
        assert not nightly.due(first, at("2026-10-25T01:30:00Z"))  # 02:30 CET, the second time
        assert nightly.due(first, at("2026-10-26T01:30:00Z"))  # 02:30 CET the next night

    def test_an_hourly_cron_keeps_each_real_hour_through_the_fall_back(self):
        hourly = Schedule("prune", cron="0 * * * *", tz="Europe/Berlin", set_at=at("2026-10-24T00:00:00Z"))

        assert hourly.next_after(at("2026-10-25T00:00:00Z")) == at("2026-10-25T01:00:00Z")  # 02:00 CEST -> 02:00 CET
        assert hourly.next_after(at("2026-10-25T01:00:00Z")) == at("2026-10-25T02:00:00Z")


def statuses(result) -> dict:
    return {action["action"]: (action["status"], action.get("reason")) for action in result.json()["actions"]}


class TestRunAll:
    def test_backup_on_a_cron_schedule_runs_when_its_time_comes_and_not_before(self, maintctl, core):
        set_up = maintctl(
            "schedule", "backup", "--cron", "30 2 * * *", "--tz", "Europe/Berlin", "--db", core.path,
            "--now", "2026-03-28T12:00:00Z",
        )  # fmt: skip
        assert set_up.code == 0, set_up
        assert "cron '30 2 * * *' (Europe/Berlin)" in set_up.out

        early = maintctl("run-all", "--db", core.path, "--now", "2026-03-29T00:59:00Z", "--json")
        on_time = maintctl("run-all", "--db", core.path, "--now", "2026-03-29T01:00:00Z", "--json")
        again = maintctl("run-all", "--db", core.path, "--now", "2026-03-29T01:01:00Z", "--json")

        assert statuses(early)["backup"][0] == "skipped"
        assert "not due" in statuses(early)["backup"][1]
        assert statuses(on_time)["backup"] == ("ok", None)
        assert statuses(again)["backup"][0] == "skipped"
        (database_id,) = core.sql("SELECT value FROM maintctl_meta WHERE key = 'database_id'")[0]
        assert [path.name for path in (core.path.parent / "backups").glob("core.db-*.sqlite3")] == [
            f"core.db-{database_id[:8]}-20260329T010000Z.sqlite3"
        ]

    def test_prune_and_backup_run_daily_by_default(self, maintctl, core):
        first = maintctl("run-all", "--db", core.path, "--now", NOW, "--json")
        later = maintctl("run-all", "--db", core.path, "--now", "2026-11-23T09:00:00Z", "--json")
        next_day = maintctl("run-all", "--db", core.path, "--now", "2026-11-23T09:30:00Z", "--json")

        assert statuses(first)["backup"][0] == statuses(first)["prune"][0] == "ok"
        assert statuses(later)["backup"][0] == statuses(later)["prune"][0] == "skipped"
        assert statuses(later)["fire-reminders"][0] == "ok"
        assert statuses(next_day)["backup"][0] == statuses(next_day)["prune"][0] == "ok"

    def test_a_paused_action_is_skipped_with_its_reason_and_runs_again_once_resumed(self, maintctl, core):
        core.reminder("r1")

        paused = maintctl("pause", "fire-reminders", "--reason", "migrating the bot", "--db", core.path)
        skipped = maintctl("run-all", "--db", core.path, "--now", NOW, "--json")

        assert paused.code == 0 and "paused" in paused.out
        assert skipped.code == 0
        status, reason = statuses(skipped)["fire-reminders"]
        assert status == "skipped" and "migrating the bot" in reason
        assert core.sql("SELECT fired FROM reminders") == [(0,)]
        (recorded,) = core.sql("SELECT status, reason FROM maintctl_runs WHERE action = 'fire-reminders'")
        assert recorded[0] == "skipped" and "migrating the bot" in recorded[1]

        resumed = maintctl("resume", "fire-reminders", "--db", core.path)
        fired = maintctl("run-all", "--db", core.path, "--now", NOW, "--json")

        assert resumed.code == 0 and "resumed" in resumed.out
        assert statuses(fired)["fire-reminders"] == ("ok", None)
        assert core.sql("SELECT fired FROM reminders") == [(1,)]

    def test_a_paused_action_named_on_its_own_still_runs_and_says_so(self, maintctl, core):
        core.reminder("r1")
        maintctl("pause", "fire-reminders", "--db", core.path)

        result = maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--json")

        assert result.code == 0
        assert result.action("fire-reminders")["counts"]["fired"] == 1
        assert any("paused" in note and "run anyway" in note for note in result.action("fire-reminders")["notes"])

    def test_resuming_what_is_not_paused_says_so(self, maintctl, core):
        result = maintctl("resume", "expire-tags", "--db", core.path)

        assert result.code == 0 and "was not paused" in result.out


class TestScheduleCommand:
    def test_shows_the_default_and_goes_back_to_it(self, maintctl, core):
        def shown(*arguments):
            return maintctl("schedule", *arguments, "--db", core.path, "--now", NOW).out.strip()

        assert shown("prune") == (
            "prune: every 1d; next: 2026-11-22T09:30:00.000Z, 2026-11-23T09:30:00.000Z, 2026-11-24T09:30:00.000Z"
        )
        assert shown("prune", "--every", "6h").startswith("prune: every 6h; next: 2026-11-22T09:30:00.000Z, ")
        assert shown("prune", "--default").startswith("prune: every 1d; next: ")
        assert shown("fire-reminders") == "fire-reminders: every run"

    def test_shows_the_next_cron_times_in_utc(self, maintctl, core):
        result = maintctl(
            "schedule", "backup", "--cron", "30 2 * * *", "--tz", "Europe/Berlin", "--db", core.path, "--now", NOW
        )

        assert result.code == 0, result
        assert result.out.strip() == (
            "backup: cron '30 2 * * *' (Europe/Berlin);"
            " next: 2026-11-23T01:30:00.000Z, 2026-11-24T01:30:00.000Z, 2026-11-25T01:30:00.000Z"
        )

    @pytest.mark.parametrize(
        "arguments, named",
        [
            (("backup", "--cron", "61 * * * *"), "'61 * * * *' is not a cron expression"),
            (("backup", "--cron", "0 3 * * * *"), "'0 3 * * * *' has 6 fields; a cron expression has five"),
            (("backup", "--cron", "@daily"), "'@daily' has 1 field;"),
            (("backup", "--every", "500000w"), "--every: '500000w' is longer than 100 years"),
            (("backup", "--every", "0.0001s"), "--every: '0.0001s' is shorter than a millisecond"),
            (("backup", "--cron", "0 3 * * *", "--tz", "Mars/Olympus"), "'Mars/Olympus' is not a time zone"),
            (("backup", "--every", "soon"), "--every: 'soon' is not a duration"),
            (("backup", "--every", "1h", "--cron", "0 3 * * *"), "not both"),
            (("backup", "--tz", "Europe/Berlin"), "--tz goes with --cron"),
            (("nonsense", "--every", "1h"), "'nonsense' is not an action"),
        ],
    )
    def test_a_schedule_that_cannot_be_kept_is_refused_in_one_line(self, maintctl, core, arguments, named):
        result = maintctl("schedule", *arguments, "--db", core.path)

        assert result.code == 2, result
        assert named in result.err
        assert len(result.err.strip().splitlines()) == 1
        assert core.sql("SELECT count(*) FROM maintctl_schedules") == [(0,)]
