"""status and doctor: what an operator (or a CI check) asks before and after runs."""

import fcntl
import os

from conftest import NOW, RedisServer


def action(document: dict, name: str) -> dict:
    return next(row for row in document["actions"] if row["action"] == name)


class TestStatus:
    def test_after_a_good_run_all_is_well_and_shows_what_is_due(self, maintctl, core):
        maintctl("run-all", "--db", core.path, "--now", NOW)
        core.reminder("r1", fire_at="2026-11-22T09:35:00.000Z")
        core.reminder("r2", fire_at="2026-11-22T09:45:00.000Z")

        result = maintctl("status", "--db", core.path, "--now", "2026-11-22T09:40:00Z", "--json")

        assert result.code == 0, result
        document = result.json()
        fire = action(document, "fire-reminders")
        assert fire["due_now"] == 1
        assert (fire["last_run"], fire["last_status"], fire["last_success"]) == (NOW, "ok", NOW)
        assert fire["schedule"] == "every run" and fire["paused"] is False
        assert action(document, "backup")["schedule"] == "every 1d"
        assert action(document, "backup")["next_due"] == "2026-11-23T09:29:00.000Z"
        assert document["lock"]["held_by_pid"] is None
        assert document["attention"] == []

    def test_a_failing_action_needs_attention_exit_1(self, maintctl, core):
        core.reminder("r1")
        core.sql("CREATE TRIGGER no BEFORE UPDATE ON reminders BEGIN SELECT RAISE(ABORT, 'frozen'); END")
        maintctl("fire-reminders", "--db", core.path, "--now", NOW)

        result = maintctl("status", "--db", core.path, "--now", NOW)

        assert result.code == 1
        assert "attention: fire-reminders: its last run failed" in result.err and "frozen" in result.err

    def test_notifications_stuck_past_the_threshold_need_attention(self, maintctl, core):
        core.reminder("r1")
        maintctl("fire-reminders", "--db", core.path, "--now", NOW)  # no Redis URL: it stays queued

        soon = maintctl("status", "--db", core.path, "--now", "2026-11-22T09:34:00Z", "--json")
        late = maintctl("status", "--db", core.path, "--now", "2026-11-22T09:36:00Z", "--json")
        told = maintctl(
            "status", "--db", core.path, "--now", "2026-11-22T09:34:00Z", env={"MAINTCTL_STUCK_AFTER": "3m"}
        )

        assert soon.code == 0 and soon.json()["notifications"]["queued"] == 1
        assert soon.json()["notifications"]["oldest_age_seconds"] == 240
        assert late.code == 1 and "1 notifications undelivered" in late.json()["attention"][0]
        assert "(more than MAINTCTL_STUCK_AFTER, 5 min)" in late.json()["attention"][0]  # its default: 5m
        assert told.code == 1

    def test_names_the_process_holding_the_lock_without_taking_it(self, maintctl, core):
        lock_path = core.path.with_name("core.db.maintctl.lock")
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            result = maintctl("status", "--db", core.path, "--now", NOW)
        finally:
            os.close(descriptor)

        assert f"lock: held by pid {os.getpid()}" in result.out
        assert "lock: free" in maintctl("status", "--db", core.path, "--now", NOW).out

    def test_a_paused_action_is_shown_with_its_reason(self, maintctl, core):
        maintctl("pause", "backup", "--reason", "disk is full", "--db", core.path, "--now", NOW)

        result = maintctl("status", "--db", core.path, "--now", NOW)

        assert result.code == 0
        assert f"backup paused since {NOW}: disk is full" in result.out

    def test_changes_nothing(self, maintctl, core):
        core.reminder("r1")
        before = core.digest()

        maintctl("status", "--db", core.path, "--now", NOW)

        assert core.digest() == before


class TestDoctor:
    def test_a_ready_installation_passes_every_check(self, maintctl, core, redis_url):
        (core.path.parent / "media").mkdir()

        result = maintctl("doctor", "--db", core.path, "--redis-url", redis_url, "--json", env={"MAINTCTL_HOLD": "2s"})

        assert result.code == 0, result
        checks = {check["name"]: check for check in result.json()["checks"]}
        assert {check["state"] for check in checks.values()} == {"ok", "info"}
        assert checks["quick_check"]["detail"] == "ok"
        assert "answers (Redis" in checks["redis"]["detail"]
        assert checks["config: database"]["detail"] == str(core.path)
        assert checks["config: hold"]["detail"] == "2 s"
        assert checks["config: busy timeout"]["detail"] == "30 s"

    def test_a_missing_index_column_and_directory_each_fail_by_name(self, maintctl, core, redis_url):
        core.sql("DROP INDEX maintctl_reminders_due")
        for (index,) in core.sql(
            "SELECT name FROM sqlite_schema WHERE tbl_name = 'events' AND type = 'index' AND sql IS NOT NULL"
        ):
            core.sql(f"DROP INDEX {index}")
        core.sql("ALTER TABLE events DROP COLUMN pending_since")

        result = maintctl("doctor", "--db", core.path, "--redis-url", redis_url)

        assert result.code == 1
        failed = [line for line in result.out.splitlines() if line.startswith("FAIL")]
        assert any("indexes for fire-reminders" in line and "maintctl_reminders_due" in line for line in failed)
        assert any("tables for requeue-events" in line and "no column pending_since" in line for line in failed)
        assert any("media directory" in line and "does not exist" in line for line in failed)

    def test_an_unreachable_redis_fails_with_the_password_masked(self, maintctl, core, tmp_path):
        (core.path.parent / "media").mkdir()
        down = RedisServer(tmp_path)  # never started: nothing listens on its port

        result = maintctl("doctor", "--db", core.path, "--redis-url", f"redis://:s3cret@127.0.0.1:{down.port}/0")

        assert result.code == 1
        assert "s3cret" not in result.out + result.err
        assert any(line.startswith("FAIL") and "redis" in line for line in result.out.splitlines())
