"""Run history and stats: what each run recorded, read back through the commands."""

import os
import socket

from conftest import NOW

from maintctl import __version__


def freeze_reminders(core):
    core.sql(
        "CREATE TRIGGER no_firing BEFORE UPDATE OF fired ON reminders"
        " BEGIN SELECT RAISE(ABORT, 'reminders are frozen'); END"
    )


def test_a_run_records_each_action_with_its_counts_host_pid_and_version(maintctl, core):
    core.reminder("r1", recurrence=60)

    result = maintctl("run-all", "--db", core.path, "--now", NOW, "--json")

    runs = core.sql(
        "SELECT run_id, action, started_at, status, counts, error, host, pid, version FROM maintctl_runs ORDER BY id"
    )
    assert [run[1] for run in runs] == [
        "fire-reminders",
        "expire-pending",
        "expire-tags",
        "requeue-events",
        "enqueue-jobs",
        "prune",
        "optimize",
        "backup",
        "verify-backups",
    ]  # not retention: without a rules file, run-all has nothing for it, and that is not history
    assert {run[0] for run in runs} == {result.json()["run_id"]}
    assert {run[2] for run in runs} == {NOW}
    assert {(run[3], run[5]) for run in runs} == {("ok", None)}
    assert runs[0][4] == '{"fired": 1, "created": 1}'
    assert {(run[6], run[8]) for run in runs} == {(socket.gethostname(), __version__)}
    assert len({run[7] for run in runs}) == 1 and runs[0][7] != os.getpid()


def test_a_dry_run_records_nothing(maintctl, core):
    core.reminder("r1")

    maintctl("run-all", "--db", core.path, "--now", NOW, "--dry-run")

    assert core.sql("SELECT count(*) FROM maintctl_runs") == [(0,)]


def test_history_lists_runs_newest_first_with_the_error_of_a_failed_one(maintctl, core):
    core.reminder("r1")
    maintctl("fire-reminders", "--db", core.path, "--now", "2026-11-22T09:00:00Z")
    core.reminder("r2")
    freeze_reminders(core)
    maintctl("fire-reminders", "--db", core.path, "--now", NOW)

    document = maintctl("history", "--db", core.path, "--json").json()
    plain = maintctl("history", "--db", core.path, "--action", "fire-reminders", "--limit", "1")

    assert [(run["started_at"], run["status"]) for run in document["runs"]] == [
        (NOW, "failed"),
        ("2026-11-22T09:00:00.000Z", "ok"),
    ]
    assert "reminders are frozen" in document["runs"][0]["error"]
    assert plain.code == 0
    lines = plain.out.splitlines()
    assert len(lines) == 2 and lines[0].split()[:3] == ["started", "action", "status"]
    assert lines[1].split()[:3] == [NOW, "fire-reminders", "failed"]


def test_history_of_a_database_never_run_says_so(maintctl, core):
    result = maintctl("history", "--db", core.path)

    assert result.code == 0 and result.out.strip() == "no runs recorded yet"


def test_stats_count_runs_success_durations_items_and_how_late_reminders_fired(maintctl, core):
    core.reminder("r1", fire_at="2026-11-22T09:29:50.000Z")  # fired 10 s late
    core.reminder("r2", fire_at="2026-11-22T09:29:00.000Z")  # 60 s
    core.reminder("r3", fire_at="2026-11-22T09:28:00.000Z")  # 120 s
    maintctl("fire-reminders", "--db", core.path, "--now", NOW)
    maintctl("fire-reminders", "--db", core.path, "--now", "2026-11-22T09:31:00Z")
    core.reminder("r4", fire_at="2026-11-22T09:31:00.000Z")
    freeze_reminders(core)
    maintctl("fire-reminders", "--db", core.path, "--now", "2026-11-22T09:32:00Z")
    maintctl("fire-reminders", "--db", core.path, "--now", "2026-10-01T00:00:00Z")  # before the period

    result = maintctl("stats", "--db", core.path, "--now", "2026-11-22T10:00:00Z", "--since", "1d", "--json")
    plain = maintctl("stats", "--db", core.path, "--now", "2026-11-22T10:00:00Z", "--since", "1d")

    assert result.code == 0, result
    fire = next(row for row in result.json()["actions"] if row["action"] == "fire-reminders")
    assert fire["runs"] == 3
    assert fire["success_rate"] == round(2 / 3, 4)
    assert fire["items"] == {"fired": 3, "created": 0}
    assert fire["last_success"] == "2026-11-22T09:31:00.000Z"
    assert fire["last_failure"] == "2026-11-22T09:32:00.000Z"
    assert fire["duration_p95_seconds"] >= fire["duration_avg_seconds"] > 0
    assert fire["lateness_seconds"] == {"reminders": 3, "median": 60.0, "worst": 120.0}
    assert "median 60 s, worst 120 s (3 reminders)" in plain.out


def test_stats_with_a_period_that_is_not_a_duration_is_refused(maintctl, core):
    result = maintctl("stats", "--db", core.path, "--since", "a while")

    assert result.code == 2 and "--since: 'a while' is not a duration" in result.err


def test_a_killed_runs_committed_work_is_in_history_and_stats_as_interrupted(maintctl, core, tmp_path):
    import signal
    import time

    from conftest import start_firing

    core.due_reminders(20_000, recurring=False)
    run = start_firing(core, tmp_path, env={"MAINTCTL_BATCH_SIZE": "200", "MAINTCTL_HOLD": "0"})
    while run.poll() is None and core.sql("SELECT count(*) FROM reminders WHERE fired = 1")[0][0] < 2_000:
        time.sleep(0.002)
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    (fired_by_the_killed_run,) = core.sql("SELECT count(*) FROM audit_log WHERE action = 'fired'")[0]

    shown = maintctl("history", "--db", core.path, "--json")
    finished = maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--json")
    after = maintctl("history", "--db", core.path, "--json")
    stats = maintctl("stats", "--db", core.path, "--now", NOW, "--json")

    assert run.returncode == -signal.SIGKILL and 0 < fired_by_the_killed_run < 20_000
    (killed,) = shown.json()["runs"]
    assert killed["status"] == "interrupted" and killed["pid"] == run.pid
    assert killed["counts"]["fired"] == fired_by_the_killed_run
    assert "ended before the run did" in killed["reason"]
    assert (
        finished.code == 0 and finished.action("fire-reminders")["counts"]["fired"] == 20_000 - fired_by_the_killed_run
    )
    assert [entry["status"] for entry in after.json()["runs"]] == ["ok", "interrupted"]
    (row,) = [action for action in stats.json()["actions"] if action["action"] == "fire-reminders"]
    assert row["runs"] == 2 and row["items"]["fired"] == 20_000


def test_a_killed_retention_pass_keeps_what_it_deleted_in_its_history_row(maintctl, core, tmp_path):
    import json
    import signal
    import time

    from conftest import start_action
    from test_retention import rules

    rules(core)
    core.insert_many(
        "INSERT INTO audit_log (entity_type, entity_id, action, actor, created_at) VALUES ('memory', ?, 'x', 'app', ?)",
        ((f"m{index}", "2025-01-01T00:00:00.000Z") for index in range(50_000)),
    )
    run = start_action("retention", core, tmp_path, env={"MAINTCTL_BATCH_SIZE": "100", "MAINTCTL_HOLD": "0"})
    while run.poll() is None and not core.sql("SELECT 1 FROM audit_log WHERE entity_type = 'retention'"):
        time.sleep(0.002)
    time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    audited = core.sql("SELECT details FROM audit_log WHERE entity_type = 'retention'")

    shown = maintctl("history", "--db", core.path, "--json")

    (killed,) = shown.json()["runs"]
    deleted = sum(json.loads(details)["rows"] for (details,) in audited)
    assert 0 < deleted < 50_000
    assert killed["status"] == "interrupted" and killed["counts"]["deleted"] == deleted
