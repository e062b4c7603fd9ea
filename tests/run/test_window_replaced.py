"""run-all --for follows its path: a restore or a deploy that puts another
file in the database's place (mv, a file deleted and written again, a file
that is no database) is noticed within a poll, what is due in the new file is
fired, and the history goes into the file the path names at the end. Real
SQLite files, a real redis-server, the real clock."""

import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import CLEAN_ENV, stream_entries
from test_window import instant, lateness_ms, run_all

from maintctl.store import lock


def copy_of(core, destination) -> sqlite3.Connection:
    """A whole copy of the database (SQLite's backup API), as a backup is; return a connection to it."""
    copy = sqlite3.connect(destination, isolation_level=None)
    core.connection.backup(copy)
    return copy


def add_reminder(connection: sqlite3.Connection, reminder_id: str, due_in: float) -> None:
    connection.execute(
        "INSERT INTO reminders (id, memory_id, owner_user_id, fire_at, fired) VALUES (?, 'm1', 1001, ?, 0)",
        (reminder_id, instant(due_in)),
    )


def put_in_place(core, new) -> None:
    """Rename the new file onto the database's path (os.replace, as mv does); the app's connection follows it."""
    os.replace(new, core.path)
    core.connection.close()
    core.connection = sqlite3.connect(core.path, isolation_level=None)


def holding(core, process) -> None:
    """Wait until the process holds the database's lock."""
    for _ in range(500):
        if lock.holder(lock.default_path(core.path)) == process.pid:
            return
        time.sleep(0.01)
    raise AssertionError("the window did not take the lock")


def history_counts(path) -> dict[str, int]:
    with sqlite3.connect(path) as connection:
        return dict(connection.execute("SELECT action, count(*) FROM maintctl_runs GROUP BY action"))


def test_a_copy_moved_into_its_place_is_followed_its_reminder_fired_and_the_history_written_in_it(
    core, redis_url, tmp_path
):
    core.memory("m1")
    window = run_all(core, "--for", "3s", "--redis-url", redis_url)
    time.sleep(1.0)
    new = copy_of(core, tmp_path / "new.db")
    add_reminder(new, "after-the-move", 1.0)
    new.close()
    os.link(core.path, tmp_path / "replaced.db")  # the replaced file, kept to look at
    put_in_place(core, tmp_path / "new.db")
    holder = lock.holder(lock.default_path(core.path))

    _, err = window.communicate(timeout=30)

    assert window.returncode == 0, err
    assert holder == window.pid  # the lock file beside the path is the same, and still held
    late = lateness_ms(redis_url)
    assert list(late) == ["after-the-move"] and 0 <= late["after-the-move"] < 400, late
    assert core.sql("SELECT fired FROM reminders WHERE id = 'after-the-move'") == [(1,)]
    counts = history_counts(core.path)
    assert counts and set(counts.values()) == {1}
    assert history_counts(tmp_path / "replaced.db") == {}


def test_a_wal_database_replaced_is_read_as_the_new_file_not_through_the_replaced_files_wal(core, redis_url, tmp_path):
    core.sql("PRAGMA journal_mode = WAL")
    core.memory("m1")
    new = copy_of(core, tmp_path / "new.db")  # the backup, from before the app's last write
    new.execute("PRAGMA journal_mode = WAL")
    add_reminder(new, "restored", 2.2)
    new.close()  # a whole file: its WAL checkpointed into it
    window = run_all(core, "--for", "3s", "--redis-url", redis_url)
    holding(core, window)
    standby = run_all(core, "--for", "3.5s", "--wait", "3.5", "--redis-url", redis_url)  # as cron starts the next
    time.sleep(0.8)
    core.memory("after-the-backup")  # the app's last write, in the WAL of the file about to be replaced
    core.connection.close()  # the app stops: another connection (the window's) has the file, so its WAL stays
    os.replace(tmp_path / "new.db", core.path)
    time.sleep(0.3)  # the window looks every 25 ms

    core.connection = sqlite3.connect(core.path, isolation_level=None)  # the app starts again
    seen = core.sql("SELECT id FROM memories ORDER BY id")
    _, err = window.communicate(timeout=30)
    _, standby_err = standby.communicate(timeout=30)

    assert seen == [("m1",)]  # the new file's rows, not the replaced file's WAL read over them
    assert (window.returncode, standby.returncode) == (0, 0), (err, standby_err)
    late = lateness_ms(redis_url)
    assert list(late) == ["restored"] and 0 <= late["restored"] < 400, late
    assert core.sql("PRAGMA integrity_check") == [("ok",)]
    assert core.sql("SELECT fired FROM reminders WHERE id = 'restored'") == [(1,)]


def test_a_file_deleted_then_written_again_is_followed_once_it_is_whole(core, redis_url, tmp_path):
    core.memory("m1")
    new = copy_of(core, tmp_path / "new.db")
    add_reminder(new, "restored", 2.0)
    new.close()
    whole = (tmp_path / "new.db").read_bytes()
    window = run_all(core, "--for", "3s", "--redis-url", redis_url)
    time.sleep(1.0)

    core.path.unlink()
    time.sleep(0.2)
    with open(core.path, "wb") as written:  # as cp writes it: in parts
        written.write(whole[: len(whole) // 2])
        written.flush()
        time.sleep(0.4)
        written.write(whole[len(whole) // 2 :])
    out, err = window.communicate(timeout=30)

    assert window.returncode == 0, err
    assert not [action for action in json.loads(out)["actions"] if action["status"] == "failed"], out
    late = lateness_ms(redis_url)
    assert list(late) == ["restored"] and 0 <= late["restored"] < 400, late
    (warning,) = json.loads(out)["warnings"]
    assert warning.startswith(f"{core.path} named no database to use for 0."), warning
    assert "still being written" in warning or "nothing there" in warning
    core.connection.close()
    core.connection = sqlite3.connect(core.path, isolation_level=None)
    assert core.sql("PRAGMA integrity_check") == [("ok",)]


def test_a_file_that_is_no_database_put_in_its_place_ends_the_window_with_exit_2_and_is_left_as_it_is(core, tmp_path):
    core.memory("m1")
    window = run_all(core, "--for", "2s")
    time.sleep(1.0)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n")

    os.replace(notes, core.path)
    out, err = window.communicate(timeout=30)

    assert window.returncode == 2, err
    error = f"{core.path}: not a SQLite database; the window's history is not recorded"
    assert f"maintctl: error: {error}\n" in err
    assert json.loads(out)["error"] == error
    assert core.path.read_text() == "not a database\n"
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith("core.db")) == [
        "core.db",
        "core.db.maintctl.lock",
    ]


def test_replaced_twice_first_by_no_database_then_by_a_copy_it_follows_the_copy(core, redis_url, tmp_path):
    core.memory("m1")
    new = copy_of(core, tmp_path / "new.db")
    add_reminder(new, "restored", 2.0)
    new.close()
    window = run_all(core, "--for", "3s", "--redis-url", redis_url)
    time.sleep(1.0)

    (tmp_path / "oops").write_text("the wrong file\n")
    os.replace(tmp_path / "oops", core.path)
    time.sleep(0.3)
    put_in_place(core, tmp_path / "new.db")
    out, err = window.communicate(timeout=30)

    assert window.returncode == 0, err
    (warning,) = json.loads(out)["warnings"]
    assert warning.startswith(f"{core.path} named no database to use for 0.") and "(not a SQLite database)" in warning
    assert list(lateness_ms(redis_url)) == ["restored"]
    assert set(history_counts(core.path).values()) == {1}


def test_with_every_too_the_window_follows_its_path(core, redis_url, tmp_path):
    core.memory("m1")
    new = copy_of(core, tmp_path / "new.db")
    add_reminder(new, "restored", 1.5)
    new.close()
    window = run_all(core, "--for", "3s", "--every", "0.25s", "--redis-url", redis_url)
    time.sleep(1.0)

    put_in_place(core, tmp_path / "new.db")
    _, err = window.communicate(timeout=30)

    assert window.returncode == 0, err
    assert [entry["data"]["content"]["reminder_id"] for entry in stream_entries(redis_url)] == ["restored"]
    assert set(history_counts(core.path).values()) == {1}


@pytest.mark.parametrize("journal_mode", ["DELETE", "WAL"])
def test_a_file_replaced_during_a_long_pass_is_written_no_more_and_the_window_goes_on_with_the_new_one(
    core, redis_url, tmp_path, journal_mode
):
    core.sql(f"PRAGMA journal_mode = {journal_mode}")
    reminder_ids = set(core.due_reminders(5_000, recurring=False))
    copy_of(core, tmp_path / "new.db").close()  # the backup: every reminder still to fire
    window = subprocess.Popen(
        [sys.executable, "-m", "maintctl", "run-all", "--db", str(core.path), "--for", "5s", "--json"]
        + ["--redis-url", redis_url],
        env={**CLEAN_ENV, "MAINTCTL_BATCH_SIZE": "10", "MAINTCTL_HOLD": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    holding(core, window)
    while (fired_before := core.sql("SELECT count(*) FROM reminders WHERE fired = 1")[0][0]) == 0:
        time.sleep(0.01)  # the backlog's pass is under way

    put_in_place(core, tmp_path / "new.db")
    out, err = window.communicate(timeout=60)

    assert window.returncode == 0, err
    fire_reminders = next(action for action in json.loads(out)["actions"] if action["action"] == "fire-reminders")
    assert fire_reminders["status"] == "ok", fire_reminders
    assert fire_reminders["counts"]["fired"] - 5_000 < fired_before + 200  # the replaced file: the batches in hand
    assert core.sql("PRAGMA integrity_check") == [("ok",)]
    assert core.sql("SELECT count(*) FROM reminders WHERE fired = 1") == [(5_000,)]
    entries = stream_entries(redis_url)
    assert len(entries) == 5_000 and {entry["data"]["content"]["reminder_id"] for entry in entries} == reminder_ids
