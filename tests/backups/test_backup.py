"""backup and prune, on real files, with the app writing meanwhile."""

import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import NOW, Core, damage_an_index_page, start_action

WRITER = """
import sqlite3, sys, time
import pathlib
connection = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
stop = pathlib.Path(sys.argv[2])
pair = 0
while True:  # one pair more after being told to stop: the copy is then surely taken mid-write
    done = stop.exists()
    connection.execute("BEGIN IMMEDIATE")
    for side in "ab":
        connection.execute(
            "INSERT INTO memories (id, owner_user_id, content, status) VALUES (?, 1001, 'while backing up', 'confirmed')",
            (f"w{pair}{side}",),
        )
    connection.execute("COMMIT")
    pair += 1
    if done:
        break
    time.sleep(0.002)  # an app between writes (back-to-back commits starve any reader of a rollback journal)
print(pair)
"""


def listing(directory) -> list[str]:
    """Given a backup directory, return the names in it but the lock files
    that the runs writing into it share (`.<db name>-<short id>.lock`) and the
    manifests beside the copies (test_a_plain_directory_s_copies_have_their_manifest)."""
    return sorted(
        path.name
        for path in (directory.iterdir() if directory.exists() else ())
        if not re.fullmatch(r"\..*-[0-9a-f]{8}\.lock", path.name) and not path.name.endswith(".sqlite3.json")
    )


def backups(core) -> list[str]:
    return listing(core.path.parent / "backups")


def named(database, stamp: str, suffix: str = ".sqlite3") -> str:
    """Given a database (a Core) and a UTC time, return the name of its backup taken then."""
    (database_id,) = database.sql("SELECT value FROM maintctl_meta WHERE key = 'database_id'")[0]
    return f"{database.path.name}-{database_id[:8]}-{stamp}{suffix}"


def test_a_backup_taken_while_the_app_writes_is_whole_consistent_and_checked(maintctl, core):
    core.many_memories(100_000)
    stop = core.path.parent / "stop-writing"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(core.path), str(stop)], stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while core.sql("SELECT count(*) FROM memories WHERE id LIKE 'w%'")[0][0] < 100:
            assert time.monotonic() < deadline, "the writer never got going"
            time.sleep(0.05)
        result = maintctl("backup", "--db", core.path, "--now", NOW, "--json")
    finally:
        stop.touch()
        pairs = int(writer.communicate(timeout=60)[0])

    assert result.code == 0, result
    assert result.action("backup")["counts"] == {"written": 1, "deleted": 0}
    assert backups(core) == [named(core, "20261122T093000Z")]
    copy = sqlite3.connect(core.path.parent / "backups" / named(core, "20261122T093000Z"))
    assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    (written_meanwhile,) = copy.execute("SELECT count(*) FROM memories WHERE id LIKE 'w%'").fetchone()
    assert written_meanwhile % 2 == 0  # never half a transaction
    assert 0 < written_meanwhile < 2 * pairs
    assert copy.execute("SELECT count(*) FROM memories WHERE id LIKE 'm%'").fetchone() == (100_000,)
    assert not [name for name in listing(core.path.parent / "backups") if name.startswith(".")]


class TestTheAppKeepsTheBackupFromStarting:
    """A lock that keeps readers out (the app committing) is waited out up to
    MAINTCTL_BUSY_TIMEOUT, hearing SIGTERM meanwhile; it never hangs a run.
    (The backup reads the database's id first, so that is where it waits.)"""

    def start(self, core, busy_timeout: float):
        from maintctl.config import settings as config
        from maintctl.store.db import open_database

        settings = config.load(config.Flags(db=core.path, now=NOW), environ={})
        connection = open_database(core.path, read_only=False, busy_timeout=busy_timeout)
        holder = sqlite3.connect(core.path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        return settings, connection, holder

    def test_past_the_busy_timeout_the_backup_fails_and_leaves_no_file(self, core):
        from maintctl.actions import backup

        settings, connection, holder = self.start(core, busy_timeout=1.0)
        began = time.monotonic()
        with pytest.raises(sqlite3.OperationalError) as failure:
            backup.perform(connection, settings)
        holder.execute("ROLLBACK")

        assert 1.0 <= time.monotonic() - began < 5
        assert str(failure.value) == (
            "database is locked: another process held its lock for 1 s (MAINTCTL_BUSY_TIMEOUT)"
        )
        assert backups(core) == []

    def test_sigterm_meanwhile_stops_it_at_once_and_leaves_no_file(self, core):
        import threading

        from maintctl.actions import backup
        from maintctl.store.db import Stopped

        settings, connection, holder = self.start(core, busy_timeout=60.0)
        threading.Timer(0.5, connection.stop.set).start()
        began = time.monotonic()
        with pytest.raises(Stopped):
            backup.perform(connection, settings)
        holder.execute("ROLLBACK")

        assert time.monotonic() - began < 2
        assert backups(core) == []


def test_only_the_newest_are_kept(maintctl, core):
    for day in range(20, 24):
        result = maintctl("backup", "--db", core.path, "--now", f"2026-11-{day}T03:00:00Z", "--keep", "2")
        assert result.code == 0, result

    assert backups(core) == [named(core, "20261122T030000Z"), named(core, "20261123T030000Z")]


def test_two_backups_in_one_second_get_names_of_their_own(maintctl, core):
    maintctl("backup", "--db", core.path, "--now", NOW)
    maintctl("backup", "--db", core.path, "--now", NOW)

    assert backups(core) == [named(core, "20261122T093000Z-2"), named(core, "20261122T093000Z")]


class TestRotationOrder:
    """Rotation keeps the newest --keep by the time in their names, the new
    copy always among them; copies named with a time after now go first."""

    def backup(self, maintctl, core, now, keep="2"):
        result = maintctl("backup", "--db", core.path, "--now", now, "--keep", keep, "--json")
        assert result.code == 0, result
        return result

    def test_copies_named_after_now_go_first_and_never_cost_the_new_one(self, maintctl, core):
        for _ in range(2):
            self.backup(maintctl, core, "2099-01-01T00:00:00Z")  # a --now for a test, or a clock far ahead

        today = self.backup(maintctl, core, NOW)

        assert today.action("backup")["counts"] == {"written": 1, "deleted": 1}
        assert backups(core) == [named(core, "20261122T093000Z"), named(core, "20990101T000000Z-2")]
        assert "1 of this database's backups" in today.action("backup")["notes"][0]
        assert "named with a time after now (the latest 20990101T000000Z" in today.action("backup")["notes"][0]

        tomorrow = self.backup(maintctl, core, "2026-11-23T09:30:00Z")

        assert backups(core) == [named(core, "20261122T093000Z"), named(core, "20261123T093000Z")]
        assert tomorrow.action("backup").get("notes", []) == []

    def test_a_clock_put_back_keeps_the_copies_it_takes(self, maintctl, core):
        for day in (20, 21):
            self.backup(maintctl, core, f"2026-11-{day}T03:00:00Z")

        for day in (1, 2):  # the clock reset to 2001: the copies it takes are the newest, whatever their names
            self.backup(maintctl, core, f"2001-01-0{day}T03:00:00Z")

        assert backups(core) == [named(core, "20010101T030000Z"), named(core, "20010102T030000Z")]

    def test_the_new_copy_is_numbered_after_every_copy_of_its_second_and_kept(self, maintctl, core):
        for _ in range(2):
            self.backup(maintctl, core, NOW)
        (core.path.parent / "backups" / named(core, "20261122T093000Z")).unlink()  # deleted by hand

        result = self.backup(maintctl, core, NOW, keep="1")

        assert result.action("backup")["counts"] == {"written": 1, "deleted": 1}
        assert backups(core) == [named(core, "20261122T093000Z-3")]

    def test_a_year_before_1000_is_named_with_four_digits_and_rotated(self, maintctl, core):
        self.backup(maintctl, core, "0999-01-01T00:00:00Z")
        planted = core.path.parent / "backups" / named(core, "9990101T000000Z")  # as an earlier version named it
        planted.write_bytes((core.path.parent / "backups" / named(core, "09990101T000000Z")).read_bytes())

        later = self.backup(maintctl, core, NOW, keep="1")

        assert later.action("backup")["counts"] == {"written": 1, "deleted": 2}
        assert backups(core) == [named(core, "20261122T093000Z")]


def test_a_backup_that_fails_its_check_counts_for_nothing_and_costs_no_older_one(maintctl, core):
    maintctl("backup", "--db", core.path, "--now", "2026-11-21T03:00:00Z", "--keep", "1")
    older = named(core, "20261121T030000Z")
    damage_an_index_page(core)

    result = maintctl("backup", "--db", core.path, "--now", NOW, "--keep", "1")

    assert result.code == 1
    assert "backup failed: the copy failed PRAGMA integrity_check" in result.err and "Traceback" not in result.err
    assert backups(core) == [older]


def test_with_media_copies_the_media_directory_beside_the_copy(maintctl, core):
    media = core.path.parent / "media"
    (media / "2026").mkdir(parents=True)
    (media / "2026" / "cat.jpg").write_bytes(b"jpeg")

    result = maintctl("backup", "--db", core.path, "--now", NOW, "--with-media")

    assert result.code == 0, result
    assert backups(core) == [named(core, "20261122T093000Z", ".media"), named(core, "20261122T093000Z")]
    media_copy = core.path.parent / "backups" / named(core, "20261122T093000Z", ".media")
    assert (media_copy / "2026" / "cat.jpg").read_bytes() == b"jpeg"


def test_a_dry_run_writes_and_deletes_nothing_and_says_what_it_would(maintctl, core, tmp_path):
    for day in (20, 21):
        maintctl("backup", "--db", core.path, "--now", f"2026-11-{day}T03:00:00Z", "--to", tmp_path / "b")
    before = listing(tmp_path / "b")

    result = maintctl("backup", "--db", core.path, "--now", NOW, "--to", tmp_path / "b", "--keep", "2", "--dry-run")

    assert result.code == 0, result
    assert listing(tmp_path / "b") == before
    planned = result.out
    assert f"write {tmp_path / 'b' / named(core, '20261122T093000Z')}" in planned
    assert f"delete {tmp_path / 'b' / named(core, '20261120T030000Z')}" in planned


class TestEachDatabaseRotatesOnlyItsOwnCopies:
    """Backup names carry the database file's name and its id, and rotation
    matches the id: databases that share a backup directory never delete each
    other's copies."""

    def other_database(self, path):
        from maintctl.setup.schema import init_db
        from maintctl.store.db import create_database

        path.parent.mkdir(parents=True, exist_ok=True)
        connection = create_database(path)
        init_db(connection)
        connection.close()
        return Core(path)

    def alternate(self, maintctl, databases, shared):
        for day in range(20, 24):
            for database in databases:
                result = maintctl(
                    "backup", "--db", database.path, "--now", f"2026-11-{day}T03:00:00Z", "--keep", "2",
                    "--to", shared,
                )  # fmt: skip
                assert result.code == 0, result

    def test_core_db_and_core_sqlite_in_one_directory(self, maintctl, core):
        other = self.other_database(core.path.with_name("core.sqlite"))
        shared = core.path.parent / "backups"

        self.alternate(maintctl, [core, other], shared)

        assert listing(shared) == sorted(
            named(database, f"2026112{day}T030000Z") for database in (core, other) for day in (2, 3)
        )
        other.connection.close()

    def test_two_hosts_databases_of_one_name_in_one_backup_directory(self, maintctl, core, tmp_path):
        other = self.other_database(tmp_path / "other-host" / "core.db")
        shared = tmp_path / "shared-backups"

        self.alternate(maintctl, [core, other], shared)

        names = listing(shared)
        assert len(names) == 4
        assert names == sorted(named(database, f"2026112{day}T030000Z") for database in (core, other) for day in (2, 3))
        other.connection.close()

    def test_a_copy_made_by_hand_carries_the_id_and_so_shares_the_rotation(self, maintctl, core):
        import shutil

        core.connection.close()
        shutil.copyfile(core.path, core.path.with_name("copy.db"))
        core.connection = sqlite3.connect(core.path, isolation_level=None)

        result = maintctl("backup", "--db", core.path.with_name("copy.db"), "--now", NOW)

        assert result.code == 0, result
        assert backups(core) == [named(core, "20261122T093000Z").replace("core.db", "copy.db")]

    def test_a_database_without_an_id_gets_one_from_its_first_backup_and_not_from_a_dry_run(self, maintctl, tmp_path):
        from maintctl.setup.schema import APP_TABLES

        path = tmp_path / "app.db"
        with sqlite3.connect(path) as app:
            for statement in APP_TABLES:
                app.execute(statement)
        app.close()
        database = Core(path)
        before = database.digest()

        dry = maintctl("backup", "--db", path, "--now", NOW, "--dry-run", "--json")

        assert dry.code == 0, dry
        assert database.digest() == before
        assert database.sql("SELECT name FROM sqlite_schema WHERE name = 'maintctl_meta'") == []
        assert not (tmp_path / "backups").exists()
        assert dry.action("backup")["planned"][0]["id"] == "app.db-<new-id>-20261122T093000Z.sqlite3"
        assert "the database has no id yet: the backup would give it one" in dry.action("backup")["notes"][0]

        first = maintctl("backup", "--db", path, "--now", NOW)
        second = maintctl("backup", "--db", path, "--now", "2026-11-23T09:30:00Z")

        assert first.code == second.code == 0, (first, second)
        ids = database.sql("SELECT key, length(value) FROM maintctl_meta")
        assert ids == [("database_id", 32)]
        assert listing(tmp_path / "backups") == [
            named(database, "20261122T093000Z"),
            named(database, "20261123T093000Z"),
        ]
        database.connection.close()

    def test_backups_in_the_old_naming_are_left_alone_and_a_note_says_so(self, maintctl, core):
        shared = core.path.parent / "backups"
        shared.mkdir()
        old = ["core-20261101T030000Z.sqlite3", "core-20261102T030000Z-2.sqlite3"]
        for name in old:
            (shared / name).write_bytes(b"an older version's copy")

        for day in (20, 21, 22):
            result = maintctl("backup", "--db", core.path, "--now", f"2026-11-{day}T03:00:00Z", "--keep", "1")
            assert result.code == 0, result

        assert backups(core) == sorted([*old, named(core, "20261122T030000Z")])
        assert f"2 backups in the old naming (core-<UTC time>.sqlite3) in {shared} are no longer rotated" in result.out
        assert "delete them by hand" in result.out


class TestRunsOfOneDatabaseShareTheirBackupDirectory:
    """Copies of one database (one name and id: a copy made by hand, another
    host's replica) backed up into one directory at once: each run's partial
    file and name are its own, and only a run alone there removes what killed
    runs left, or rotates."""

    def test_a_run_paused_mid_copy_loses_nothing_to_a_replica_backed_up_meanwhile(self, maintctl, core, tmp_path):
        import shutil

        core.many_memories(100_000)
        shared = tmp_path / "shared"
        maintctl("backup", "--db", core.path, "--now", "2026-11-21T09:30:00Z", "--to", shared)
        (tmp_path / "replica").mkdir()
        replica = shutil.copyfile(core.path, tmp_path / "replica" / "core.db")
        first = start_action("backup", core, tmp_path, "--to", str(shared), "--keep", "2")
        while not [name for name in listing(shared) if name.endswith(".partial")]:
            assert first.poll() is None, first.communicate()
        os.kill(first.pid, signal.SIGSTOP)
        try:
            assert [name for name in listing(shared) if name.endswith(".partial")], "the copy ended too soon"
            second = maintctl("backup", "--db", replica, "--now", NOW, "--to", shared, "--keep", "2", "--json")
        finally:
            os.kill(first.pid, signal.SIGCONT)
        first_out, first_err = first.communicate(timeout=60)

        assert first.returncode == 0, first_err
        assert second.code == 0, second
        assert second.action("backup")["counts"] == {"written": 1, "deleted": 0}  # not alone: rotation left
        assert "written 1, deleted 1" in first_out
        assert listing(shared) == [named(core, "20261122T093000Z-2"), named(core, "20261122T093000Z")]
        for name in listing(shared):
            copy = Core(shared / name)
            assert copy.sql("PRAGMA integrity_check") == [("ok",)]
            assert copy.sql("SELECT count(*) FROM memories") == [(100_000,)]
            copy.connection.close()

    def test_what_a_killed_run_left_is_removed_only_by_a_run_alone(self, maintctl, core):
        import fcntl

        shared = core.path.parent / "backups"
        for day in (20, 21):
            maintctl("backup", "--db", core.path, "--now", f"2026-11-{day}T09:30:00Z", "--keep", "2")
        left = [
            shared / f".{named(core, '20261122T093000Z')}.partial",  # of a run killed while copying
            shared / named(core, "20261122T080000Z", ".media"),  # of one killed before its copy was renamed
        ]
        left[0].write_bytes(b"half a copy")
        left[1].mkdir()
        lock_file = shared / f".{named(core, '')[: -len('-.sqlite3')]}.lock"

        with open(lock_file) as another_run:
            fcntl.flock(another_run, fcntl.LOCK_SH)  # as another host's run of a copy of this database
            meanwhile = maintctl("backup", "--db", core.path, "--now", NOW, "--keep", "2", "--json")
        alone = maintctl("backup", "--db", core.path, "--now", "2026-11-23T09:30:00Z", "--keep", "2", "--json")

        assert meanwhile.code == alone.code == 0, (meanwhile, alone)
        assert meanwhile.action("backup")["counts"] == {"written": 1, "deleted": 0}
        assert alone.action("backup")["counts"] == {"written": 1, "deleted": 2}
        assert backups(core) == [named(core, "20261122T093000Z-2"), named(core, "20261123T093000Z")]
        assert mode(lock_file) == mode(core.path)


@pytest.fixture
def open_umask():
    """A umask of 0 for the test and the maintctl it runs: nothing maintctl
    writes may be wider than the database for lack of one."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def modes_while_running(run, directory) -> dict[str, set[int]]:
    """Given a maintctl process and a directory, return every name seen in
    the directory until the process ended, with the permission bits seen."""
    seen: dict[str, set[int]] = {}
    while run.poll() is None:
        for entry in os.scandir(directory):
            try:
                seen.setdefault(entry.name, set()).add(stat.S_IMODE(entry.stat().st_mode))
            except FileNotFoundError:
                pass  # gone between listing and asking
    assert run.returncode == 0, run.communicate()
    return seen


@pytest.mark.usefixtures("open_umask")
class TestCopiesAreAsPrivateAsTheDatabase:
    @pytest.mark.parametrize("database_mode", [0o600, 0o640], ids=oct)
    def test_the_copy_has_the_database_files_bits_in_a_new_directory_0700(self, maintctl, core, database_mode):
        core.path.chmod(database_mode)

        result = maintctl("backup", "--db", core.path, "--now", NOW)

        assert result.code == 0, result
        assert mode(core.path.parent / "backups") == 0o700
        assert mode(core.path.parent / "backups" / named(core, "20261122T093000Z")) == database_mode

    def test_the_partial_file_and_its_journal_have_them_while_the_copy_is_written(self, core, tmp_path):
        core.path.chmod(0o640)
        core.many_memories(100_000)
        backup_directory = core.path.parent / "backups"
        backup_directory.mkdir(mode=0o755)

        seen = modes_while_running(start_action("backup", core, tmp_path), backup_directory)

        assert [name for name in seen if name.endswith(".partial-journal")], f"no journal seen: {sorted(seen)}"
        assert [name for name in seen if name.endswith(".partial")], f"no partial file seen: {sorted(seen)}"
        assert {name: bits for name, bits in seen.items() if any(bit & ~0o640 for bit in bits)} == {}

    def test_the_media_copy_is_no_more_readable_than_the_media_even_while_it_is_written(self, core, tmp_path):
        core.path.chmod(0o600)
        media = core.path.parent / "media"
        (media / "2026").mkdir(parents=True, mode=0o700)
        media.chmod(0o750)
        for index in range(3000):  # enough for the copy to be seen under way
            (media / "2026" / f"{index}.jpg").write_bytes(b"jpeg")
        (media / "2026" / "cat.jpg").write_bytes(b"jpeg")
        (media / "2026" / "cat.jpg").chmod(0o600)
        (media / "dog.jpg").write_bytes(b"jpeg")
        (media / "dog.jpg").chmod(0o640)
        backup_directory = core.path.parent / "backups"
        backup_directory.mkdir(mode=0o755)

        seen = modes_while_running(start_action("backup", core, tmp_path, "--with-media"), backup_directory)

        partial_media = [name for name in seen if name.endswith(".media.partial")]
        assert partial_media, f"the media copy was not seen under way: {sorted(seen)}"
        assert {name: bits for name, bits in seen.items() if any(bit & ~0o750 for bit in bits)} == {}
        copy = core.path.parent / "backups" / named(core, "20261122T093000Z", ".media")
        assert [mode(copy), mode(copy / "2026"), mode(copy / "2026" / "cat.jpg"), mode(copy / "dog.jpg")] == [
            0o750,
            0o700,
            0o600,
            0o640,
        ]


class TestPrune:
    def test_drops_old_history_and_old_delivered_notifications_only(self, maintctl, core):
        core.reminder("r1")
        maintctl("fire-reminders", "--db", core.path, "--now", "2026-08-01T00:00:00Z")  # history 113 days old
        maintctl("fire-reminders", "--db", core.path, "--now", "2026-11-01T00:00:00Z")
        old, recent, waiting = (
            ("old", "2026-11-01T00:00:00.000Z", "2026-11-01T00:00:01.000Z"),
            ("recent", "2026-11-20T00:00:00.000Z", "2026-11-20T00:00:01.000Z"),
            ("waiting", "2026-10-01T00:00:00.000Z", None),
        )
        core.insert_many(
            "INSERT INTO maintctl_outbox (msg_id, message, queued_at, delivered_at) VALUES (?, '{}', ?, ?)",
            [old, recent, waiting],
        )
        audit_before = core.audit()

        result = maintctl("prune", "--db", core.path, "--now", NOW, "--json")

        assert result.code == 0, result
        assert result.action("prune")["counts"] == {
            "runs_deleted": 1,
            "notifications_deleted": 1,
            "job_runs_deleted": 0,
        }
        assert core.sql("SELECT started_at FROM maintctl_runs WHERE action = 'fire-reminders' ORDER BY id") == [
            ("2026-11-01T00:00:00.000Z",)
        ]
        assert core.sql("SELECT msg_id FROM maintctl_outbox WHERE msg_id NOT LIKE 'reminder:r1:%' ORDER BY id") == [
            ("recent",),
            ("waiting",),
        ]
        assert core.audit() == audit_before

    def test_keeping_times_can_be_changed(self, maintctl, core):
        maintctl("fire-reminders", "--db", core.path, "--now", "2026-11-20T00:00:00Z")

        result = maintctl("prune", "--db", core.path, "--now", NOW, "--json", env={"MAINTCTL_HISTORY_KEEP": "1d"})

        assert result.action("prune")["counts"]["runs_deleted"] == 1


def test_with_media_leaves_out_what_is_no_file_directory_or_link_and_says_so(maintctl, core):
    media = core.path.parent / "media"
    (media / "2026").mkdir(parents=True)
    (media / "2026" / "cat.jpg").write_bytes(b"jpeg")
    (media / "latest.jpg").symlink_to("2026/cat.jpg")
    os.mkfifo(media / "a-pipe")
    os.mknod(media / "2026" / "a-socket", stat.S_IFSOCK | 0o600)

    result = maintctl("backup", "--db", core.path, "--now", NOW, "--with-media", "--json")

    assert result.code == 0, result
    left_out = f"{media / '2026' / 'a-socket'}, a socket, and 1 more"
    assert result.action("backup")["warnings"] == [
        f"{media}: 2 files left out of the media copy (it takes regular files, directories and links): {left_out}"
    ]
    copy = core.path.parent / "backups" / named(core, "20261122T093000Z", ".media")
    assert sorted(str(path.relative_to(copy)) for path in copy.rglob("*")) == ["2026", "2026/cat.jpg", "latest.jpg"]
    assert os.readlink(copy / "latest.jpg") == "2026/cat.jpg"


def test_paths_that_are_not_utf8_are_named_and_the_run_recorded(maintctl, core, tmp_path):
    elsewhere = os.fsdecode(os.fsencode(tmp_path) + b"/\xff")
    os.mkdir(elsewhere)
    (Path(elsewhere) / "core-20200101T000000Z.sqlite3").touch()  # a copy in the old naming: a note names the directory

    noted = maintctl("backup", "--db", core.path, "--now", NOW, "--to", elsewhere, "--json")
    failed = maintctl("backup", "--db", core.path, "--now", NOW, "--with-media", "--media-dir", elsewhere + "m")

    assert noted.code == 0, noted
    assert f"in {tmp_path}/\\xff is no longer rotated" in noted.action("backup")["notes"][0]
    assert failed.code == 1, failed
    missing = f"{tmp_path}/\\xffm: the media directory does not exist (drop --with-media?)"
    assert failed.err == f"maintctl: error: backup failed: {missing}\n"
    assert [status for (status,) in core.sql("SELECT status FROM maintctl_runs ORDER BY id")] == ["ok", "failed"]


def test_a_plain_directory_s_copies_have_their_manifest_and_lose_it_with_them(maintctl, core):
    import hashlib
    import json

    for day in (20, 21, 22):
        result = maintctl("backup", "--db", core.path, "--now", f"2026-11-{day}T09:30:00Z", "--keep", "2")
        assert result.code == 0, result

    directory = core.path.parent / "backups"
    names = sorted(path.name for path in directory.iterdir() if not path.name.endswith(".lock"))
    kept = [named(core, "20261121T093000Z"), named(core, "20261122T093000Z")]
    assert names == sorted([*kept, *(name + ".json" for name in kept)])
    copy = directory / kept[1]
    manifest = json.loads((directory / (kept[1] + ".json")).read_text())
    (database_id,) = core.sql("SELECT value FROM maintctl_meta WHERE key = 'database_id'")[0]
    digest = hashlib.sha256(copy.read_bytes()).hexdigest()
    assert manifest == {
        "database_id": database_id, "created_at": NOW, "size": copy.stat().st_size, "sha256": digest,
        "plain_sha256": digest, "integrity_check": "ok", "encrypted": False, "maintctl": manifest["maintctl"],
    }  # fmt: skip


def test_a_plain_directory_keeps_by_days_weeks_and_months(maintctl, core):
    for day in ("10-10", "10-28", "11-02", "11-09", "11-16", "11-19", "11-21", "11-22"):
        result = maintctl("backup", "--db", core.path, "--now", f"2026-{day}T03:00:00Z", "--keep-daily", "2",
                          "--keep-weekly", "2", "--keep-monthly", "2")  # fmt: skip
        assert result.code == 0, result

    # Days: Sun 22 and Sat 21 Nov; ISO weeks: 47 (its newest, the 22nd) and 46 (Mon 9); months: Nov and Oct (28).
    kept = ("20261028", "20261109", "20261121", "20261122")
    assert backups(core) == [named(core, f"{stamp}T030000Z") for stamp in kept]
