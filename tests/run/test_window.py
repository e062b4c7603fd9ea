"""run-all --for without --every: the window sleeps until something is due,
wakes when the app commits, and hands over to the next invocation. Real
SQLite files, a real redis-server and the real clock (a window is time)."""

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from conftest import CLEAN_ENV, stream_entries

from maintctl.config.flags import Flags
from maintctl.config.settings import load
from maintctl.run.followed import Followed
from maintctl.run.window import Window
from maintctl.store.db import open_database


def instant(seconds_from_now: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds_from_now)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def orphan(core, memory_id: str, fire_at: str) -> None:
    """A reminder whose memory does not exist: fire-reminders cannot act on it."""
    core.sql(
        "INSERT INTO reminders (id, memory_id, owner_user_id, fire_at, fired) VALUES ('orphan', ?, 1001, ?, 0)",
        memory_id,
        fire_at,
    )


def window(core, length: float, names=("fire-reminders",)) -> Window:
    settings = load(Flags(db=core.path), environ={})
    database = Followed(core.path, lambda: open_database(core.path, read_only=False, busy_timeout=5.0))
    return Window(database, list(names), settings, time.monotonic() + length, lambda name: None)


def write_reminder_later(core, seconds: float, reminder_id: str, due_in: float) -> threading.Thread:
    """In `seconds`, commit a reminder due `due_in` seconds from then, as the app would (a connection of its own)."""

    def write() -> None:
        with sqlite3.connect(core.path) as app:
            app.execute(
                "INSERT INTO reminders (id, memory_id, owner_user_id, fire_at, fired) VALUES (?, 'm1', 1001, ?, 0)",
                (reminder_id, instant(due_in)),
            )

    thread = threading.Timer(seconds, write)
    thread.start()
    return thread


class TestWaking:
    def test_a_commit_by_the_app_of_a_row_due_already_wakes_it_at_once(self, core):
        core.memory("m1")
        sleeper = window(core, 5.0)
        write_reminder_later(core, 0.5, "r1", -60)

        start = time.monotonic()
        due = sleeper.wait([], sleeper.now())

        assert due == ["fire-reminders"]
        assert 0.45 <= time.monotonic() - start < 0.8

    def test_with_nothing_changing_it_sleeps_until_the_next_row_is_due(self, core):
        core.memory("m1")
        core.reminder("r1", fire_at=instant(1.2))
        sleeper = window(core, 5.0)

        start = time.monotonic()
        due = sleeper.wait([], sleeper.now())

        assert due == ["fire-reminders"]
        assert 1.0 <= time.monotonic() - start < 1.4

    def test_a_row_written_for_a_moment_later_is_slept_for_from_the_commit_on(self, core):
        core.memory("m1")
        sleeper = window(core, 5.0)
        write_reminder_later(core, 0.3, "r1", 0.6)

        start = time.monotonic()
        due = sleeper.wait([], sleeper.now())

        assert due == ["fire-reminders"]
        assert 0.85 <= time.monotonic() - start < 1.2

    def test_an_idle_window_reads_no_table_and_ends_on_time(self, core):
        core.memory("m1")
        core.reminder("far", fire_at=instant(3600))
        sleeper = window(core, 1.5)
        statements = []
        sleeper.connection.set_trace_callback(statements.append)

        start = time.monotonic()
        due = sleeper.wait([], sleeper.now())

        assert due is None and 1.45 <= time.monotonic() - start < 1.7
        first_look = statements.index("PRAGMA data_version") if "PRAGMA data_version" in statements else 0
        assert set(statements[first_look:]) == {"PRAGMA data_version"}
        assert len(statements[first_look:]) > 20  # it looked all along

    def test_a_row_that_came_due_after_the_passs_now_is_due_at_once(self, core):
        core.memory("m1")
        core.reminder("r1", fire_at=instant(-0.2))  # due a moment after the last pass's now, a second ago
        sleeper = window(core, 2.0)

        start = time.monotonic()
        due = sleeper.wait(["fire-reminders"], sleeper.now() - timedelta(seconds=1))

        assert due == ["fire-reminders"] and time.monotonic() - start < 0.1

    def test_rows_a_pass_cannot_act_on_do_not_wake_it_again(self, core):
        core.memory("m1")
        orphan(core, "gone", instant(-5))
        sleeper = window(core, 1.0)

        due = sleeper.wait(["fire-reminders"], sleeper.now())

        assert due is None


def run_all(core, *arguments: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "maintctl", "run-all", "--db", str(core.path), "--json", *arguments],
        env=CLEAN_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lateness_ms(url: str) -> dict[str, int]:
    """Per reminder in the stream: its entry's time (Redis's clock) minus its fire_at."""
    late = {}
    for entry in stream_entries(url):
        added = int(entry["id"].split("-")[0])
        fire_at = datetime.fromisoformat(entry["data"]["content"]["fire_at"]).timestamp() * 1000
        late[entry["data"]["content"]["reminder_id"]] = int(added - fire_at)
    return late


class TestRealWindows:
    def test_each_reminder_fires_once_never_early_and_within_a_moment(self, core, redis_url):
        core.memory("m1")
        for number, seconds in enumerate((0.8, 1.3, 1.35, 2.2)):
            core.reminder(f"ahead{number}", fire_at=instant(seconds))
        process = run_all(core, "--for", "3.5s", "--redis-url", redis_url)
        time.sleep(1.6)
        core.reminder("short", fire_at=instant(0.3))  # written at short notice
        core.reminder("overdue", fire_at=instant(-0.5))  # written after it was due

        _, err = process.communicate(timeout=30)

        assert process.returncode == 0, err
        late = lateness_ms(redis_url)
        assert sorted(late) == ["ahead0", "ahead1", "ahead2", "ahead3", "overdue", "short"]
        assert len(stream_entries(redis_url)) == 6
        assert all(ms >= 0 for ms in late.values()), late  # none early
        assert all(ms < 400 for name, ms in late.items() if name != "overdue"), late
        assert late["overdue"] < 900, late

    def test_an_idle_window_writes_nothing_and_records_one_row_per_action(self, core):
        core.memory("m1")
        core.reminder("far", fire_at=instant(3600))
        process = run_all(core, "--for", "2.5s")
        time.sleep(1.0)  # the first pass (with the day's backup and optimize) is done
        early = core.path.read_bytes()
        time.sleep(1.0)
        later_bytes = core.path.read_bytes()

        _, err = process.communicate(timeout=30)

        assert process.returncode == 0, err
        assert early == later_bytes
        counts = core.sql("SELECT action, count(*) FROM maintctl_runs GROUP BY action")
        assert counts and all(count == 1 for _, count in counts)

    def test_sigterm_ends_the_window_at_once_with_143_and_the_run_recorded(self, core):
        core.memory("m1")
        core.reminder("far", fire_at=instant(3600))
        process = run_all(core, "--for", "30s")
        time.sleep(1.0)

        start = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)

        assert process.returncode == 143
        assert time.monotonic() - start < 1.0
        assert core.sql("SELECT count(*) FROM maintctl_runs WHERE action = 'fire-reminders'") == [(1,)]

    def test_the_next_invocation_takes_over_at_the_lock_with_no_gap(self, core, redis_url):
        core.memory("m1")
        first = run_all(core, "--for", "2s", "--redis-url", redis_url)
        time.sleep(1.0)
        core.reminder("at-the-hand-over", fire_at=instant(1.05))  # due just as the first window ends
        core.reminder("after", fire_at=instant(1.6))
        second = run_all(core, "--for", "2s", "--wait", "5", "--redis-url", redis_url)  # cron's next start

        _, first_err = first.communicate(timeout=30)
        _, second_err = second.communicate(timeout=30)

        assert first.returncode == 0 and second.returncode == 0, (first_err, second_err)
        late = lateness_ms(redis_url)
        assert sorted(late) == ["after", "at-the-hand-over"]
        assert all(0 <= ms < 400 for ms in late.values()), late


def run_window(core, seconds: str, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "maintctl", "run-all", "--db", str(core.path), "--for", seconds, *arguments],
        env=CLEAN_ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )


class TestOddCases:
    def test_a_time_with_a_space_for_the_t_is_waited_for_in_the_afternoon_too(self, core):
        core.memory("m1")
        core.reminder("spaced", fire_at="2026-11-26 15:00:12")

        result = run_window(core, "3s", "--now", "2026-11-26T15:00:10.000Z")

        assert result.returncode == 0, result.stderr
        assert core.sql("SELECT fired FROM reminders WHERE id = 'spaced'") == [(1,)]

    def test_a_value_that_looks_canonical_but_names_no_instant_hides_nothing(self, core):
        core.memory("m1")
        core.reminder("bad", fire_at="2026-11-26T25:00:00.000Z")
        core.reminder("good", fire_at="2026-11-27T00:00:01.000Z")

        result = run_window(core, "3s", "--now", "2026-11-26T23:59:59.500Z")

        assert result.returncode == 0, result.stderr
        assert core.sql("SELECT fired FROM reminders WHERE id = 'good'") == [(1,)]

    def test_with_max_items_a_backlog_is_worked_off_within_the_window(self, core):
        core.memory("m1")
        for number in range(5):
            core.reminder(f"old{number}", fire_at=instant(-60))
        core.reminder("soon", fire_at=instant(1.5))

        result = run_window(core, "3s", "--max-items", "1")

        assert result.returncode == 0, result.stderr
        assert core.sql("SELECT count(*) FROM reminders WHERE fired = 0") == [(0,)]

    def test_a_row_the_app_makes_doable_mid_window_is_fired_in_it(self, core):
        orphan(core, "m1", instant(-5))  # its memory is not there yet
        process = run_all(core, "--for", "4s")
        time.sleep(1.0)
        core.memory("m1")

        _, err = process.communicate(timeout=30)

        assert process.returncode == 0, err
        assert core.sql("SELECT fired FROM reminders") == [(1,)]

    def test_the_app_holding_the_database_past_the_busy_timeout_does_not_end_the_window(self, core):
        core.sql("PRAGMA journal_mode = DELETE")
        core.memory("m1")
        core.reminder("after", fire_at=instant(2.5))
        process = subprocess.Popen(
            [sys.executable, "-m", "maintctl", "run-all", "--db", str(core.path), "--for", "4s"],
            env={**CLEAN_ENV, "MAINTCTL_BUSY_TIMEOUT": "0.5s"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.8)
        app = sqlite3.connect(core.path, isolation_level=None)
        app.execute("BEGIN EXCLUSIVE")
        time.sleep(1.2)  # past the busy timeout
        app.execute("COMMIT")
        app.close()

        _, err = process.communicate(timeout=30)

        assert process.returncode == 0, err
        assert core.sql("SELECT fired FROM reminders") == [(1,)]
        assert core.sql("SELECT count(*) FROM maintctl_runs WHERE action = 'fire-reminders'") == [(1,)]
