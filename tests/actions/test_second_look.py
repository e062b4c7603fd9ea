"""Odd but real situations found by trying maintctl the way a careless or
hostile hand would: each must give a working run or a one-line refusal, and
never lose a notification, a backup or a secret."""

import json
import os
import socket
import sqlite3
import threading

import pytest
from conftest import NOW


def test_an_unquoted_password_with_spaces_is_never_echoed(maintctl, core):
    result = maintctl("run-all", "--db", core.path, "--redis-url", "redis://:correct", "horse", "battery@127.0.0.1:1/0")
    as_json = maintctl("run-all", "--db", core.path, "--redis-url", "redis://:correct", "horse", "battery@x", "--json")

    assert result.code == as_json.code == 2
    shown = result.out + result.err + as_json.out + as_json.err
    assert "horse" not in shown and "battery" not in shown
    assert "a value with spaces, such as a password, must be quoted" in result.err


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0?ssl_cert_reqs=none",
        "unix:///run/redis.sock?ssl_check_hostname=yes",
        "rediss://127.0.0.1:6380/0?ssl_keyfile=/x.pem",
    ],
)
def test_tls_options_that_cannot_be_used_are_refused_and_the_actions_run(maintctl, core, url):
    core.reminder("r1")

    result = maintctl("run-all", "--db", core.path, "--now", NOW, "--redis-url", url, "--json")
    status = maintctl("status", "--db", core.path, "--now", NOW, "--redis-url", url)

    assert result.code == 2
    assert result.action("fire-reminders")["counts"]["fired"] == 1
    assert "ssl_" in result.json()["notifications"]["error"]
    assert result.err.startswith("maintctl: error: --redis-url: ")  # with --json, errors go to stderr too
    assert status.code == 1 and "Traceback" not in status.err


def test_another_applications_database_is_refused_and_left_as_it_was(maintctl, tmp_path):
    other = tmp_path / "notes.db"
    sqlite3.connect(other).execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)").connection.close()
    before = other.read_bytes()

    result = maintctl("run-all", "--db", other, "--json")

    assert result.code == 2
    assert "none of the app's tables" in result.json()["error"]
    assert other.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.db"]


def test_history_rows_spoiled_by_hand_neither_stop_a_run_nor_bring_the_daily_backup_back(maintctl, core):
    first = maintctl("run-all", "--db", core.path, "--now", NOW)
    core.sql("INSERT INTO maintctl_runs (run_id, action, started_at, ended_at, duration_seconds, status, counts,"
             " host, pid, version) VALUES ('x', 'backup', 'garbage', 'garbage', 0, 'ok', '{bad', 'h', 1, '0')")  # fmt: skip

    later = maintctl("run-all", "--db", core.path, "--now", "2026-11-22T09:31:00Z", "--json")
    reading = [maintctl(command, "--db", core.path, "--now", NOW) for command in ("status", "stats")]
    listed = maintctl("history", "--db", core.path, "--json")

    assert first.code == later.code == 0, later
    assert later.action("backup")["status"] == "skipped"  # the last backup that can be read was a minute ago
    assert [result.code for result in reading] == [0, 0]
    assert listed.code == 0
    assert {} in [run["counts"] for run in listed.json()["runs"] if run["started_at"] == "garbage"]


def test_a_database_whose_name_is_not_utf8_records_its_runs_so_its_backup_stays_daily(maintctl, core, tmp_path):
    odd = tmp_path / os.fsdecode(b"\xffcore.db")
    core.connection.close()
    core.path.rename(odd)

    first = maintctl("run-all", "--db", odd, "--now", NOW)
    later = maintctl("run-all", "--db", odd, "--now", "2026-11-22T09:31:00Z", "--json")

    assert first.code == 0, first
    assert later.code == 0, later
    assert later.action("backup")["status"] == "skipped"
    assert sqlite3.connect(odd).execute("SELECT count(*) FROM maintctl_runs WHERE action = 'backup'").fetchone() == (1,)


def test_a_ping_url_with_a_space_is_refused_without_showing_it(maintctl, core):
    result = maintctl("run-all", "--db", core.path, env={"MAINTCTL_PING_URL": "http://127.0.0.1:1/SECRET KEY"})

    assert result.code == 2
    assert "SECRET" not in result.err + result.out


def test_a_ping_endpoint_that_does_not_speak_http_is_a_warning_and_the_run_goes_on(maintctl, core):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer_garbage():
        for _ in range(2):
            connection, _ = server.accept()
            connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
            connection.close()

    threading.Thread(target=answer_garbage, daemon=True).start()
    core.reminder("r1")
    url = f"http://127.0.0.1:{server.getsockname()[1]}/the-check-key"

    result = maintctl("run-all", "--db", core.path, "--now", NOW, "--json", env={"MAINTCTL_PING_URL": url})
    server.close()

    assert result.code == 0, result
    assert result.action("fire-reminders")["counts"]["fired"] == 1
    warnings = result.json()["warnings"]
    assert len(warnings) == 2 and all(warning.startswith("ping /") for warning in warnings)
    assert "the-check-key" not in json.dumps(result.json())


def test_the_metrics_file_is_readable_by_the_collector_and_no_partial_file_is_left(maintctl, core, tmp_path):
    textfile = tmp_path / "textfile"
    textfile.mkdir()

    result = maintctl(
        "run-all", "--db", core.path, "--now", NOW, env={"MAINTCTL_METRICS_FILE": str(textfile / "m.prom")}
    )

    assert result.code == 0, result
    assert [path.name for path in textfile.iterdir()] == ["m.prom"]
    assert (textfile / "m.prom").stat().st_mode & 0o777 == 0o644


def test_doctor_names_a_lock_file_runs_would_refuse_and_a_metrics_file_they_would_not_write(maintctl, core, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")

    result = maintctl(
        "doctor",
        "--db",
        core.path,
        "--json",
        env={"MAINTCTL_LOCK_FILE": str(notes), "MAINTCTL_METRICS_FILE": str(core.path)},
    )

    assert result.code == 1
    checks = {check["name"]: check for check in result.json()["checks"]}
    assert checks["lock file"] == {
        "name": "lock file",
        "state": "fail",
        "detail": f"{notes} holds something other than a pid",
    }
    assert checks["metrics file"]["state"] == "warn"
    assert notes.read_text() == "hello\n"
