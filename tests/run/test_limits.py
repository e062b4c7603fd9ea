"""Bounded and repeated runs: --max-items, --max-seconds, run-all --for/--every, and -v."""

import subprocess
import sys
import time

from conftest import CLEAN_ENV, NOW


def fired_count(core) -> int:
    return core.sql("SELECT count(*) FROM reminders WHERE fired = 1")[0][0]


def test_max_items_stops_at_a_batch_boundary_and_the_next_run_goes_on(maintctl, core):
    core.due_reminders(100, recurring=False)
    env = {"MAINTCTL_BATCH_SIZE": "10"}

    first = maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--max-items", "25", "--json", env=env)
    second = maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--max-items", "25", "--json", env=env)

    assert first.code == 0, first
    assert first.action("fire-reminders")["counts"]["fired"] == 25
    assert "stopped at --max-items 25: more are due, left for the next run" in first.action("fire-reminders")["notes"]
    assert second.action("fire-reminders")["counts"]["fired"] == 25
    assert fired_count(core) == 50
    assert len(core.outbox()) == 50


def test_max_items_that_covers_the_backlog_says_nothing_of_a_rest(maintctl, core):
    core.due_reminders(20, recurring=False)

    result = maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--max-items", "20", "--json")

    assert result.action("fire-reminders")["counts"]["fired"] == 20
    assert result.action("fire-reminders")["notes"] == []


def test_max_seconds_spent_leaves_each_action_one_batch(maintctl, core):
    core.due_reminders(100, recurring=False)
    core.event("e1", pending_since="2026-11-01T00:00:00.000Z")

    result = maintctl(
        "run-all",
        "--db",
        core.path,
        "--now",
        NOW,
        "--max-seconds",
        "0.001",
        "--json",
        env={"MAINTCTL_BATCH_SIZE": "10"},
    )

    assert result.code == 0, result
    assert result.action("fire-reminders")["counts"]["fired"] == 10
    assert any("--max-seconds 0.001" in note for note in result.action("fire-reminders")["notes"])
    assert result.action("requeue-events")["counts"]["requeued"] == 1  # not starved


def test_limits_that_are_not_positive_are_refused(maintctl, core):
    for option, value in (("--max-items", "0"), ("--max-seconds", "-1")):
        result = maintctl("fire-reminders", "--db", core.path, option, value)
        assert result.code == 2 and option in result.err, result


def test_run_all_for_and_every_repeats_passes_holding_the_lock_and_records_one_run(maintctl, core, tmp_path):
    core.reminder("r1")
    looping = subprocess.Popen(
        [sys.executable, "-m", "maintctl", "run-all", "--db", str(core.path), "--now", NOW,
         "--for", "4s", "--every", "1s", "--json"],
        env=CLEAN_ENV, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(1.5)
    core.reminder("r2")  # the app adds one that is due: a later pass of the same run fires it
    meanwhile = maintctl("fire-reminders", "--db", core.path, "--now", NOW)
    out, err = looping.communicate(timeout=30)

    assert looping.returncode == 0, err
    assert meanwhile.code == 75  # the lock is held between passes too
    import json

    document = json.loads(out)
    assert document["passes"] == 4
    fire = next(action for action in document["actions"] if action["action"] == "fire-reminders")
    assert fire["counts"]["fired"] == 2
    assert core.sql("SELECT fired FROM reminders ORDER BY id") == [(1,), (1,)]
    assert core.sql("SELECT count(*) FROM maintctl_runs WHERE action = 'fire-reminders'") == [(1,)]


def test_a_pass_that_overruns_its_slot_skips_to_the_next_one_instead_of_running_the_missed_ones(maintctl, core):
    core.due_reminders(20_000, recurring=False)  # a first pass of many batches: longer than several slots

    result = maintctl(
        "run-all", "--db", core.path, "--now", NOW, "--for", "2s", "--every", "0.2s", "--json",
        env={"MAINTCTL_BATCH_SIZE": "100", "MAINTCTL_HOLD": "0"},
    )  # fmt: skip

    assert result.code == 0, result
    document = result.json()
    assert document["slots_skipped"] >= 2
    assert document["passes"] < 10  # slots of 0.2 s in a window of 2 s: the ones missed are not made up
    assert core.sql("SELECT count(*) FROM reminders WHERE fired = 1") == [(20_000,)]


def test_every_without_for_or_a_window_with_a_dry_run_is_refused(maintctl, core):
    alone = maintctl("run-all", "--db", core.path, "--every", "5s")
    dry = maintctl("run-all", "--db", core.path, "--for", "55s", "--dry-run")

    assert alone.code == 2 and "--every goes with --for" in alone.err
    assert dry.code == 2 and "a dry run is one pass" in dry.err


def test_verbose_tells_each_batch_on_stderr(maintctl, core):
    core.due_reminders(30, recurring=False)

    result = maintctl("fire-reminders", "--db", core.path, "--now", NOW, "-v", env={"MAINTCTL_BATCH_SIZE": "10"})

    assert result.code == 0
    batches = [line for line in result.err.splitlines() if line.startswith("maintctl: fire-reminders: 10 in a batch")]
    assert len(batches) == 3


def test_on_a_terminal_a_long_pass_shows_a_progress_bar_on_stderr(core, tmp_path):
    import os
    import pty

    core.due_reminders(60_000, recurring=False)
    leader, follower = pty.openpty()
    run = subprocess.Popen(
        [sys.executable, "-m", "maintctl", "fire-reminders", "--db", str(core.path), "--now", NOW],
        env={**CLEAN_ENV, "MAINTCTL_BATCH_SIZE": "2000", "MAINTCTL_HOLD": "0", "COLUMNS": "100", "TERM": "xterm"},
        cwd=tmp_path, stdin=follower, stdout=follower, stderr=follower,
    )  # fmt: skip
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the run is over
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)

    assert run.wait(timeout=60) == 0
    text = shown.decode(errors="replace")
    assert "fire-reminders" in text and "/60000" in text  # the bar, counting toward the backlog
    assert "fired 60000" in text  # and the table after it
