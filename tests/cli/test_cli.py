"""The command line as users and cron meet it: exit codes, errors, output
modes, configuration precedence, run-all's isolation of failures, init-db."""

import os
import shlex
import subprocess
import sys

import pytest
from conftest import CLEAN_ENV, NOW, RULES

from maintctl.actions import registry

ACTING = [*registry.ORDER, "run-all"]


def some_work(core):
    """Give every action something to do."""
    (core.path.parent / "maintctl.toml").write_text(RULES)
    core.sql(
        "INSERT INTO audit_log (entity_type, entity_id, action, actor, created_at)"
        " VALUES ('memory', 'gone', 'expired', 'app', '2025-01-01T00:00:00.000Z')"
    )
    core.reminder("r1", recurrence=60)
    core.memory("m9", status="pending", expires="2026-11-01T00:00:00.000Z", media="x.jpg")
    core.tag("m1", "stale", suggested_at="2026-11-01T00:00:00.000Z")
    core.event("e1", pending_since="2026-11-01T00:00:00.000Z")
    core.job("nightly")
    core.sql(
        "INSERT INTO maintctl_outbox (msg_id, message, queued_at, delivered_at)"
        " VALUES ('old', '{}', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z')"
    )


class TestBadInput:
    @pytest.mark.parametrize("command", ACTING)
    def test_a_missing_database_is_exit_2_and_is_not_created(self, maintctl, tmp_path, command):
        missing = tmp_path / "nope.db"

        result = maintctl(command, "--db", missing)

        assert result.code == 2
        assert (
            result.err
            == f"maintctl: error: {missing}: no such database (maintctl init-db --db {missing} creates one)\n"
        )
        assert not missing.exists()

    def test_no_database_at_all_is_exit_2(self, maintctl):
        result = maintctl("run-all")

        assert result.code == 2
        assert "no database given: use --db PATH or set MAINTCTL_DB" in result.err

    @pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
    def test_a_file_that_is_not_sqlite_is_exit_2_and_left_as_it_was(self, maintctl, tmp_path, dry_run):
        impostor = tmp_path / "notes.db"
        impostor.write_bytes(b"these are my notes, not a database\n" * 100)

        result = maintctl("run-all", "--db", impostor, *dry_run)

        assert result.code == 2
        assert result.err == f"maintctl: error: {impostor}: not a SQLite database\n"
        assert impostor.read_bytes() == b"these are my notes, not a database\n" * 100

    def test_a_directory_is_not_a_database(self, maintctl, tmp_path):
        result = maintctl("run-all", "--db", tmp_path)

        assert result.code == 2
        assert "not a file" in result.err

    def test_an_unknown_option_is_exit_2(self, maintctl, core):
        result = maintctl("run-all", "--db", core.path, "--frobnicate")

        assert result.code == 2
        assert "--frobnicate" in result.err
        assert "Traceback" not in result.err

    def test_an_unknown_command_is_exit_2(self, maintctl):
        assert maintctl("fire-everything").code == 2

    @pytest.mark.parametrize("source", ["flag", "env"])
    def test_a_now_that_is_not_a_timestamp_is_exit_2_naming_its_source(self, maintctl, core, source):
        if source == "flag":
            result = maintctl("run-all", "--db", core.path, "--now", "soonish")
        else:
            result = maintctl("run-all", "--db", core.path, env={"MAINTCTL_NOW": "soonish"})

        assert result.code == 2
        assert (
            result.err
            == f"maintctl: error: {'--now' if source == 'flag' else 'MAINTCTL_NOW'}: 'soonish' is not a timestamp\n"
        )

    def test_a_redis_url_of_another_scheme_is_exit_2_without_its_password(self, maintctl, core):
        result = maintctl("run-all", "--db", core.path, "--redis-url", "http://:hunter2@example.com/")

        assert result.code == 2
        assert "is not a Redis URL" in result.err
        assert "hunter2" not in result.err

    @pytest.mark.parametrize(
        "name, value",
        [("MAINTCTL_TAG_EXPIRY", "seven days"), ("MAINTCTL_BATCH_SIZE", "0"), ("MAINTCTL_HOLD", "-1s")],
    )
    def test_bad_settings_are_exit_2_naming_the_setting(self, maintctl, core, name, value):
        result = maintctl("run-all", "--db", core.path, env={name: value})

        assert result.code == 2
        assert result.err.startswith(f"maintctl: error: {name}: ")


class TestConfiguration:
    def test_flag_beats_environment_beats_env_file(self, maintctl, core, tmp_path):
        (tmp_path / ".env").write_text(f"MAINTCTL_DB={core.path}\nMAINTCTL_NOW=2026-01-01T00:00:00Z\n")

        from_file = maintctl("run-all", "--json")
        from_env = maintctl("run-all", "--json", env={"MAINTCTL_NOW": "2026-02-02T00:00:00Z"})
        from_flag = maintctl(
            "run-all", "--json", "--now", "2026-03-03T00:00:00Z", env={"MAINTCTL_NOW": "2026-02-02T00:00:00Z"}
        )

        assert from_file.code == 0, from_file
        assert from_file.json()["now"] == "2026-01-01T00:00:00.000Z"
        assert from_env.json()["now"] == "2026-02-02T00:00:00.000Z"
        assert from_flag.json()["now"] == "2026-03-03T00:00:00.000Z"

    def test_the_environment_redis_url_beats_the_env_file(self, maintctl, core, tmp_path, redis_url):
        (tmp_path / ".env").write_text("MAINTCTL_REDIS_URL=redis://127.0.0.1:1/0\n")
        core.reminder("r1")

        result = maintctl("fire-reminders", "--db", core.path, "--now", NOW, env={"REDIS_URL": redis_url})

        assert result.code == 0, result

    def test_maintctl_env_file_names_another_file(self, maintctl, core, tmp_path):
        other = tmp_path / "maintctl.env"
        other.write_text(f"MAINTCTL_DB={core.path}\nMAINTCTL_NOW={NOW}\n")

        result = maintctl("run-all", "--json", env={"MAINTCTL_ENV_FILE": str(other)})

        assert result.code == 0, result
        assert result.json()["now"] == NOW

    def test_a_named_env_file_that_is_missing_is_exit_2(self, maintctl, core, tmp_path):
        result = maintctl("run-all", "--db", core.path, env={"MAINTCTL_ENV_FILE": str(tmp_path / "gone.env")})

        assert result.code == 2
        assert "MAINTCTL_ENV_FILE" in result.err


class TestOutput:
    def test_plain_text_when_not_a_terminal(self, maintctl, core):
        some_work(core)

        result = maintctl("run-all", "--db", core.path, "--now", NOW)

        assert result.code == 0, result
        lines = result.out.splitlines()
        assert lines[0].split() == ["fire-reminders", "ok", "fired", "1,", "created", "1"]
        assert lines[1].split()[:2] == ["expire-pending", "ok"]
        assert lines[2].split() == ["expire-tags", "ok", "expired", "1"]
        assert lines[3].split() == ["requeue-events", "ok", "requeued", "1"]
        assert lines[4].split() == ["enqueue-jobs", "ok"] + "enqueued 1, skipped 0, results 0, timed out 0".split()
        assert lines[5].split() == ["retention", "ok", "deleted", "1,", "deleted:old-audit", "1"]
        assert (
            lines[6].split() == ["prune", "ok"] + "runs deleted 0, notifications deleted 1, job runs deleted 0".split()
        )
        assert lines[7].split()[:2] == ["optimize", "ok"]
        assert lines[8].split() == ["backup", "ok", "written", "1,", "deleted", "0"]
        assert lines[9].split() == ["verify-backups", "ok", "verified", "1,", "failed", "0"]
        assert "3 queued, not delivered" in lines[-1]

    def test_json_is_one_document_with_an_entry_per_action(self, maintctl, core):
        some_work(core)

        result = maintctl("run-all", "--db", core.path, "--now", NOW, "--json")

        document = result.json()
        assert [(a["action"], a["status"]) for a in document["actions"]] == [
            ("fire-reminders", "ok"),
            ("expire-pending", "ok"),
            ("expire-tags", "ok"),
            ("requeue-events", "ok"),
            ("enqueue-jobs", "ok"),
            ("retention", "ok"),
            ("prune", "ok"),
            ("optimize", "ok"),
            ("backup", "ok"),
            ("verify-backups", "ok"),
        ]
        assert document["actions"][0]["counts"] == {"fired": 1, "created": 1}
        assert document["actions"][1]["counts"] == {"expired": 1, "files_deleted": 0}
        assert document["actions"][2]["counts"] == {"expired": 1}
        assert document["actions"][3]["counts"] == {"requeued": 1}
        assert "planned" not in document["actions"][0]
        assert result.err == ""

    def test_quiet_prints_nothing_when_all_went_well(self, maintctl, core):
        some_work(core)

        result = maintctl("run-all", "--db", core.path, "--now", NOW, "--quiet")

        assert (result.code, result.out, result.err) == (0, "", "")

    def test_quiet_still_prints_warnings(self, maintctl, core):
        core.reminder("bad", fire_at="tomorrow")

        result = maintctl("run-all", "--db", core.path, "--now", NOW, "--quiet")

        assert result.code == 0
        assert result.out == ""
        assert (
            result.err
            == "maintctl: warning: fire-reminders: reminder bad: fire_at 'tomorrow' names no instant; not fired\n"
        )

    def test_quiet_still_prints_failures(self, maintctl, core):
        core.sql("DROP TABLE memories_fts")

        result = maintctl("run-all", "--db", core.path, "--now", NOW, "--quiet")

        assert result.code == 1
        assert result.out == ""
        assert result.err == "maintctl: error: expire-pending failed: table memories_fts is missing\n"

    def test_version(self, maintctl):
        result = maintctl("--version")

        assert result.code == 0 and result.out.startswith("maintctl ")


class TestDryRun:
    @pytest.mark.parametrize("command", ACTING)
    def test_every_command_changes_not_a_byte_and_lists_its_plan(self, maintctl, core, command, redis_url):
        some_work(core)
        (core.path.parent / "media").mkdir()
        (core.path.parent / "media" / "x.jpg").write_bytes(b"jpeg")
        before = core.digest()

        result = maintctl(command, "--db", core.path, "--now", NOW, "--dry-run", "--json", "--redis-url", redis_url)

        assert result.code == 0, result
        assert core.digest() == before
        assert (core.path.parent / "media" / "x.jpg").exists()
        assert not (core.path.parent / "core.db-journal").exists()
        assert not (core.path.parent / "backups").exists()
        for action in result.json()["actions"]:
            assert action["planned"], action
            assert all("id" in item for item in action["planned"])

    def test_works_on_a_read_only_database_file(self, maintctl, core):
        some_work(core)
        core.connection.close()
        os.chmod(core.path, 0o444)

        result = maintctl("run-all", "--db", core.path, "--now", NOW, "--dry-run")

        assert result.code == 0, result

    def wal_database(self, core):
        some_work(core)
        core.sql("PRAGMA journal_mode = WAL")
        core.connection.close()  # the last connection: SQLite checkpoints and removes -wal and -shm
        assert sorted(path.name for path in core.path.parent.iterdir()) == ["core.db", "maintctl.toml"]

    @pytest.mark.parametrize("command", ["run-all", "status", "history", "stats", "doctor"])
    def test_a_wal_database_nobody_has_open_gets_no_wal_or_shm_file(self, maintctl, core, command):
        self.wal_database(core)
        before = core.path.read_bytes()

        result = maintctl(command, "--db", core.path, *(["--dry-run", "--now", NOW] if command == "run-all" else []))

        assert result.code in (0, 1), result  # status and doctor find things to say of a database never run
        assert "Traceback" not in result.err
        assert sorted(path.name for path in core.path.parent.iterdir()) == ["core.db", "maintctl.toml"]
        assert core.path.read_bytes() == before

    def test_a_wal_database_in_a_directory_it_may_not_write(self, maintctl, core):
        import subprocess

        self.wal_database(core)
        if subprocess.run(["chattr", "+i", str(core.path.parent)], capture_output=True).returncode:  # noqa: PLW1510
            pytest.skip("chattr +i is not supported here (root ignores permission bits)")
        try:
            result = maintctl(
                "run-all", "--db", core.path, "--now", NOW, "--dry-run", "--json", cwd=core.path.parent.parent
            )
        finally:
            subprocess.run(["chattr", "-i", str(core.path.parent)], check=True)

        assert result.code == 0, result
        assert result.action("fire-reminders")["planned"]

    def test_a_wal_left_without_its_shm_is_refused_rather_than_given_one(self, maintctl, core):
        import subprocess
        import sys

        some_work(core)
        core.sql("PRAGMA journal_mode = WAL")
        core.connection.close()
        crash = "import sqlite3, os, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
        crash += " c.execute(\"UPDATE memories SET content = 'after' WHERE id = 'm1'\"); os._exit(0)"
        subprocess.run([sys.executable, "-c", crash, str(core.path)], check=True)  # the app dies mid-use
        core.path.with_name("core.db-shm").unlink()
        before = sorted(path.name for path in core.path.parent.iterdir())

        result = maintctl("run-all", "--db", core.path, "--now", NOW, "--dry-run")

        assert result.code == 2
        assert "has a -wal file but no -shm" in result.err
        assert sorted(path.name for path in core.path.parent.iterdir()) == before

    def test_a_wal_database_in_use_is_read_through_the_apps_files(self, maintctl, core):
        import sqlite3

        self.wal_database(core)
        app = sqlite3.connect(core.path, isolation_level=None)
        app.execute("INSERT INTO reminders VALUES ('fresh', 'm1', 1001, '2026-11-22T09:00:00.000Z', NULL, 0)")
        try:
            result = maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--dry-run", "--json")
        finally:
            app.close()

        assert result.code == 0, result
        assert {item["id"] for item in result.action("fire-reminders")["planned"]} == {"r1", "fresh"}


class TestRunAllIsolation:
    def test_an_aborting_trigger_fails_that_action_whole_and_the_others_still_run(self, maintctl, core):
        some_work(core)
        core.sql(
            "CREATE TRIGGER no_firing BEFORE UPDATE OF fired ON reminders"
            " BEGIN SELECT RAISE(ABORT, 'reminders are frozen'); END"
        )

        result = maintctl("run-all", "--db", core.path, "--now", NOW, "--json")

        assert result.code == 1
        statuses = {a["action"]: a["status"] for a in result.json()["actions"]}
        assert statuses == {
            "fire-reminders": "failed",
            "enqueue-jobs": "ok",
            "expire-pending": "ok",
            "expire-tags": "ok",
            "requeue-events": "ok",
            "retention": "ok",
            "prune": "ok",
            "optimize": "ok",
            "backup": "ok",
            "verify-backups": "ok",
        }
        assert "reminders are frozen" in result.action("fire-reminders")["error"]
        assert core.sql("SELECT fired FROM reminders") == [(0,)]
        assert core.audit("reminder") == []
        assert core.sql("SELECT count(*) FROM maintctl_outbox WHERE msg_id LIKE 'reminder:%'") == [(0,)]
        assert [row[:3] for row in core.audit("event")] == [("event", "e1", "requeued")]

    def test_a_missing_column_is_named_and_the_others_still_run(self, maintctl, core):
        some_work(core)
        core.sql("DROP INDEX maintctl_events_pending")
        core.sql("DROP INDEX maintctl_events_odd_pending_since")
        core.sql("DROP INDEX maintctl_events_untidy_pending_since")
        core.sql("ALTER TABLE events DROP COLUMN pending_since")

        result = maintctl("run-all", "--db", core.path, "--now", NOW)

        assert result.code == 1
        assert "maintctl: error: requeue-events failed: table events has no column pending_since" in result.err
        assert result.out.splitlines()[3].split()[:2] == ["requeue-events", "failed"]
        assert core.sql("SELECT fired FROM reminders WHERE id = 'r1'") == [(1,)]

    def test_a_missing_table_is_named(self, maintctl, core):
        core.sql("DROP TABLE events")

        result = maintctl("requeue-events", "--db", core.path, "--now", NOW)

        assert result.code == 1
        assert "table events is missing" in result.err


class TestInitDb:
    def test_creates_a_new_database_with_every_table_and_index(self, maintctl, tmp_path):
        path = tmp_path / "new.db"

        result = maintctl("init-db", "--db", path, "--json")

        assert result.code == 0, result
        created = result.json()["created"]
        for name in [
            "users",
            "memories",
            "memory_tags",
            "reminders",
            "events",
            "audit_log",
            "memories_fts",
            "maintctl_outbox",
            "maintctl_media_deletions",
            "maintctl_reminders_due",
            "maintctl_reminders_odd_fire_at",
            "maintctl_memories_fts_memory",
        ]:
            assert name in created

    def test_on_a_populated_database_changes_no_data_and_is_idempotent(self, maintctl, core):
        some_work(core)
        core.sql("DROP INDEX maintctl_reminders_due")
        tables = ["users", "memories", "memory_tags", "reminders", "events", "audit_log", "memories_fts"]
        before = {table: core.sql(f"SELECT * FROM {table} ORDER BY 1") for table in tables}

        first = maintctl("init-db", "--db", core.path, "--json")
        second = maintctl("init-db", "--db", core.path, "--json")

        assert first.json()["created"] == ["maintctl_reminders_due"]
        assert second.json()["created"] == []
        assert {table: core.sql(f"SELECT * FROM {table} ORDER BY 1") for table in tables} == before

    def test_sample_gives_every_action_work(self, maintctl, tmp_path):
        path = tmp_path / "demo.db"

        init = maintctl("init-db", "--db", path, "--sample")
        result = maintctl("run-all", "--db", path, "--json")

        assert init.code == 0, init
        assert result.code == 0, result
        counts = {a["action"]: a["counts"] for a in result.json()["actions"]}
        assert counts["fire-reminders"] == {"fired": 2, "created": 1}
        assert counts["expire-pending"] == {"expired": 1, "files_deleted": 1}
        assert counts["expire-tags"] == {"expired": 1}
        assert counts["requeue-events"] == {"requeued": 1}
        assert not (tmp_path / "media" / "demo" / "receipt.jpg").exists()
        assert (tmp_path / "media" / "demo" / "whiteboard.jpg").exists()

    def test_sample_refuses_a_database_with_users_of_its_own(self, maintctl, core):
        core.user(5555)

        result = maintctl("init-db", "--db", core.path, "--sample")

        assert result.code == 2
        assert "users of its own" in result.err
        assert core.sql("SELECT count(*) FROM memories") == [(0,)]


def test_a_terminal_gets_a_table(core, tmp_path):
    from conftest import on_a_terminal

    some_work(core)
    code, text, _ = on_a_terminal(["run-all", "--db", core.path, "--now", NOW], tmp_path)

    assert code == 0
    assert "━" in text  # the table's rule under its header
    for name in ["fire-reminders", "expire-pending", "expire-tags", "requeue-events", "fired 1, created 1"]:
        assert name in text


@pytest.mark.parametrize("command", ACTING)
def test_help_names_every_option_and_its_environment_variable(maintctl, command):
    result = maintctl(command, "--help", env={"COLUMNS": "200"})

    assert result.code == 0
    for text in [
        "--db",
        "MAINTCTL_DB",
        "--redis-url",
        "MAINTCTL_REDIS_URL",
        "--media-dir",
        "MAINTCTL_MEDIA_DIR",
        "--now",
        "MAINTCTL_NOW",
        "--dry-run",
        "--json",
        "--quiet",
    ]:
        assert text in result.out


def test_an_app_database_that_never_saw_init_db_works(maintctl, tmp_path):
    import sqlite3

    from maintctl.setup.schema import APP_TABLES

    path = tmp_path / "app.db"
    with sqlite3.connect(path) as app:
        for statement in APP_TABLES:
            app.execute(statement)
        app.execute("INSERT INTO memories (id, owner_user_id, content, status) VALUES ('m1', 1001, 'x', 'confirmed')")
        app.execute(
            "INSERT INTO reminders (id, memory_id, owner_user_id, fire_at) VALUES ('r1', 'm1', 1001, ?)", (NOW,)
        )
    app.close()

    dry = maintctl("run-all", "--db", path, "--now", NOW, "--dry-run", "--json")
    real = maintctl("run-all", "--db", path, "--now", NOW, "--json")

    assert dry.code == 0, dry
    assert [item["id"] for item in dry.action("fire-reminders")["planned"]] == ["r1"]
    assert real.code == 0, real
    assert real.action("fire-reminders")["counts"] == {"fired": 1, "created": 0}
    assert real.json()["notifications"]["queued"] == 1


def test_shell_completion_is_offered_and_completes_commands(maintctl, tmp_path):
    command = f"{shlex.quote(sys.executable)} -m maintctl --show-completion; exit $?"  # bash stays its parent
    shown = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=tmp_path, env=CLEAN_ENV)
    completed = maintctl(
        env={"_MAINTCTL_COMPLETE": "complete_bash", "COMP_WORDS": "maintctl expire", "COMP_CWORD": "1"}
    )

    assert shown.returncode == 0 and "_maintctl_completion" in shown.stdout, shown
    assert completed.out.split() == ["expire-pending", "expire-tags"]
