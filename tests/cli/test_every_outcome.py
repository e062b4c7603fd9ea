"""What a script and cron see when a command does not go well: with --json
one JSON document on stdout in every outcome, and outside a terminal errors
as one plain line."""

import json
import os
import re
import sqlite3
import subprocess
import sys

import pytest
from conftest import CLEAN_ENV, NOW

from maintctl.actions import registry

# Every command that opens the database, with what else it needs.
READING = [["history"], ["stats"], ["status"], ["doctor"], ["schedule", "prune"]]
CHANGING = [["pause", "backup"], ["resume", "backup"], ["init-db"]]
ACTING = [[name] for name in registry.ORDER]
EVERY = ACTING + [["run-all"]] + READING + CHANGING


def document(result) -> dict:
    """The one JSON document the command printed (failing the test where stdout holds anything else)."""
    return json.loads(result.out)


@pytest.mark.parametrize("command", EVERY, ids=" ".join)
def test_a_usage_error_is_one_plain_line_and_with_json_a_document(maintctl, core, command):
    result = maintctl(*command, "--db", core.path, "--frobnicate")
    as_json = maintctl(*command, "--db", core.path, "--frobnicate", "--json")

    assert result.code == 2
    assert result.out == ""
    (line,) = result.err.splitlines()
    assert line.startswith("maintctl: error: No such option: --frobnicate") or line.startswith(
        "maintctl: error: No such option '--frobnicate'"
    ), line
    assert as_json.code == 2
    assert document(as_json)["exit"] == 2
    assert "--frobnicate" in document(as_json)["error"]


@pytest.mark.parametrize("command", EVERY, ids=" ".join)
def test_a_missing_database_is_exit_2_with_a_document(maintctl, tmp_path, command):
    missing = tmp_path / "nope.db"

    result = maintctl(*command, "--db", missing, "--json")

    if command == ["init-db"]:  # the one command that makes a database
        assert result.code == 0, result
        return
    if command == ["doctor"]:  # whose work is to list what is wrong: a failing check
        assert result.code == 1
        assert {"name": "database", "state": "fail", "detail": f"{missing}: no such database (maintctl init-db"
                f" --db {missing} creates one)"} in document(result)["checks"]  # fmt: skip
        return
    assert result.code == 2
    assert document(result)["error"] == f"{missing}: no such database (maintctl init-db --db {missing} creates one)"
    assert document(result)["exit"] == 2
    assert result.err.startswith("maintctl: error: ")


def test_a_bad_value_for_a_typed_option_is_one_line(maintctl, core):
    result = maintctl("fire-reminders", "--db", core.path, "--max-items", "1e20")

    assert result.code == 2
    assert result.err == (
        "maintctl: error: Invalid value for '--max-items': '1e20' is not a valid integer."
        " (see maintctl fire-reminders --help)\n"
    )


def test_the_lock_held_is_exit_75_with_a_document(maintctl, core):
    import fcntl

    with open(core.path.with_name("core.db.maintctl.lock"), "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        result = maintctl("run-all", "--db", core.path, "--now", NOW, "--json")
        quiet = maintctl("run-all", "--db", core.path, "--now", NOW, "--json", "--quiet")

    assert result.code == 75
    assert document(result)["exit"] == 75
    assert "holds the lock" in document(result)["error"]
    assert document(result)["actions"] == []
    assert (quiet.code, quiet.out, quiet.err) == (75, "", "")  # an overlapping cron minute stays silent


def test_on_a_terminal_a_usage_error_keeps_its_box(core, tmp_path):
    from conftest import on_a_terminal

    code, shown, _ = on_a_terminal(["run-all", "--db", core.path, "--frobnicate"], tmp_path, 100, "stderr")
    shown = re.sub(r"\x1b\[[0-9;]*m", "", shown)  # without its colours

    assert code == 2
    assert "╭" in shown and "Error" in shown and "--frobnicate" in shown


class TestTheAppHoldingTheDatabasePastTheBusyTimeout:
    """A database the app keeps locked is a failure of this run (exit 1, the
    next run tries again), not a configuration error."""

    def hold_exclusively(self, core):
        holder = sqlite3.connect(core.path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        return holder

    @pytest.mark.parametrize("command", [["run-all"], ["fire-reminders"], ["status"], ["history"]], ids=" ".join)
    def test_is_exit_1_with_a_document_and_nothing_changed(self, maintctl, core, command):
        core.reminder("r1")
        core.connection.close()
        holder = self.hold_exclusively(core)
        try:
            result = maintctl(*command, "--db", core.path, "--json", env={"MAINTCTL_BUSY_TIMEOUT": "1s"})
        finally:
            holder.execute("ROLLBACK")
            holder.close()

        assert result.code == 1, result
        assert "database is locked" in document(result)["error"]
        assert document(result)["exit"] == 1
        assert sqlite3.connect(core.path).execute("SELECT fired FROM reminders").fetchall() == [(0,)]


class TestEmptyFiles:
    """An empty file, or a SQLite database with no tables, is not the app's
    database: exit 2, and not a byte written, no history, no backup."""

    @pytest.mark.parametrize(
        "command", ACTING + [["run-all"], ["pause", "backup"], ["schedule", "backup", "--every", "1h"]], ids=" ".join
    )
    def test_a_zero_byte_file_is_refused_and_left_empty(self, maintctl, tmp_path, command):
        empty = tmp_path / "core.db"
        empty.touch()

        result = maintctl(*command, "--db", empty, "--now", NOW, "--json")

        assert result.code == 2, result
        assert document(result)["error"] == (
            f"{empty}: an empty file, not the app's database (maintctl init-db --db {empty} makes one)"
        )
        assert empty.stat().st_size == 0
        assert sorted(path.name for path in tmp_path.iterdir()) == ["core.db"]  # no backup, lock or journal

    def test_a_database_with_no_tables_is_refused(self, maintctl, tmp_path):
        blank = tmp_path / "blank.db"
        sqlite3.connect(blank).execute("PRAGMA user_version = 1").connection.close()  # a valid file, no tables
        before = blank.read_bytes()

        result = maintctl("run-all", "--db", blank, "--now", NOW)

        assert result.code == 2
        assert "a database with no tables, not the app's" in result.err
        assert blank.read_bytes() == before

    def test_init_db_makes_one_of_an_empty_file(self, maintctl, tmp_path):
        empty = tmp_path / "core.db"
        empty.touch()

        made = maintctl("init-db", "--db", empty)
        ran = maintctl("run-all", "--db", empty, "--now", NOW)

        assert made.code == 0, made
        assert ran.code == 0, ran


class TestOutputThatCannotBeWritten:
    def test_a_full_disk_under_stdout_is_one_line_on_stderr_and_exit_1(self, core, tmp_path):
        with open("/dev/full", "w") as full:
            completed = subprocess.run(  # noqa: PLW1510 - the exit code is asserted
                [sys.executable, "-m", "maintctl", "run-all", "--db", str(core.path), "--now", NOW, "--json"],
                stdout=full, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=CLEAN_ENV, timeout=60,
            )  # fmt: skip

        assert completed.returncode == 1
        assert completed.stderr == "maintctl: error: the output could not be written (No space left on device)\n"
        assert sqlite3.connect(core.path).execute("SELECT count(*) FROM maintctl_runs").fetchone()[0] > 0  # it ran

    def test_a_closed_stdout_does_not_fail_the_run(self, core, tmp_path):
        completed = subprocess.run(  # noqa: PLW1510 - the exit code is asserted
            [sys.executable, "-m", "maintctl", "run-all", "--db", str(core.path), "--now", NOW],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=CLEAN_ENV, timeout=60,
            preexec_fn=lambda: os.close(1),
        )  # fmt: skip

        assert completed.returncode == 0, completed.stderr
        assert "Traceback" not in completed.stderr

    def test_a_path_that_is_not_utf8_with_a_strict_terminal_encoding(self, maintctl, tmp_path):
        name = os.fsdecode(b"/nowhere/\xff.db")

        result = maintctl("run-all", "--db", name, "--json", env={"PYTHONIOENCODING": "utf-8:strict"})

        assert result.code == 2
        assert document(result)["exit"] == 2
        assert result.err.count("\n") == 1


def test_no_value_can_forge_a_line_of_its_own(maintctl, core):
    forged = "x\nmaintctl: error: forged"

    result = maintctl("run-all", "--db", f"{core.path}{forged}", "--now", NOW)
    paused = maintctl("pause", "backup", "--reason", forged, "--db", core.path)
    status = maintctl("status", "--db", core.path, "--now", NOW)

    assert result.code == 2
    assert len(result.err.splitlines()) == 1 and "\\n" in result.err
    assert paused.code == 0
    assert not [
        line for line in status.out.splitlines() + status.err.splitlines() if line.startswith("maintctl: error")
    ]


def test_a_database_reached_through_a_link_is_locked_and_backed_up_as_the_file_it_leads_to(maintctl, core, tmp_path):
    link = tmp_path / "link.db"
    link.symlink_to(core.path)

    result = maintctl("run-all", "--db", link, "--now", NOW, "--json")

    assert result.code == 0, result
    assert core.path.with_name("core.db.maintctl.lock").exists()
    assert not tmp_path.joinpath("link.db.maintctl.lock").exists()
    assert [path.name.split("-")[0] for path in (tmp_path / "backups").glob("*.sqlite3")] == ["core.db"]


def test_stats_at_the_first_instant_maintctl_names(maintctl, core):
    result = maintctl("stats", "--db", core.path, "--now", "0001-01-01T00:00:00Z", "--json")

    assert result.code == 0, result
    assert document(result)["since"] == "0001-01-01T00:00:00.000Z"
