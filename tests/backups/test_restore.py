"""restore, on real files: the backups maintctl wrote, the app's own
connections in processes of their own, and maintctl run as a process."""

import fcntl
import hashlib
import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import NOW, Core, until

from maintctl.setup.schema import init_db
from maintctl.store.db import create_database

HOLDER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1])
connection.execute("SELECT count(*) FROM memories").fetchone()
print("ready", flush=True)
sys.stdin.read()  # keeps the database open until the test closes stdin
"""

LAST_WRITES = """
import os, sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("PRAGMA wal_autocheckpoint = 0")
for index in range(50):
    connection.execute(
        "INSERT INTO memories (id, owner_user_id, content, status) VALUES (?, 1001, 'last words', 'confirmed')",
        (f"late{index}",),
    )
os._exit(0)  # as a killed app: no checkpoint, the writes stay in the -wal
"""


@contextmanager
def app_running(script: str, core):
    """Run the script (as the app, given the database's path) until it says
    it is ready; yield its process, and end it when the block ends."""
    app = subprocess.Popen(
        [sys.executable, "-c", script, str(core.path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert app.stdout.readline() == "ready\n"
        yield app
    finally:
        app.communicate("")


def rows(path, statement: str) -> list:
    """Given a database file, return what the statement reads, on a connection opened and closed for it."""
    connection = sqlite3.connect(path)
    try:
        return connection.execute(statement).fetchall()
    finally:
        connection.close()


def change(path, statement: str) -> None:
    """Given a database file, run the statement and commit it, on a connection opened and closed for it."""
    connection = sqlite3.connect(path)
    try:
        with connection:
            connection.execute(statement)
    finally:
        connection.close()


def memories(path) -> list[str]:
    return [memory_id for (memory_id,) in rows(path, "SELECT id FROM memories ORDER BY id")]


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing(directory) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def replaced_files(core) -> list:
    return sorted(core.path.parent.glob("core.db.replaced-*"))


@pytest.fixture
def backup(maintctl, core):
    """A backup of the core database with memories m1 and m2; the test's own
    connection to the database is closed, as the app's is when it is stopped."""
    core.memory("m1")
    core.memory("m2")
    result = maintctl("backup", "--db", core.path, "--now", NOW)
    assert result.code == 0, result
    core.connection.close()
    return next((core.path.parent / "backups").glob("core.db-*.sqlite3"))


def app_changes(core) -> None:
    """What the app did since the backup: m1 gone, m3 new."""
    connection = sqlite3.connect(core.path, isolation_level=None)
    connection.execute("DELETE FROM memories WHERE id = 'm1'")
    connection.execute(
        "INSERT INTO memories (id, owner_user_id, content, status) VALUES ('m3', 1001, 'new', 'confirmed')"
    )
    connection.close()


def test_restore_over_a_database_the_app_changed_since(maintctl, core, backup):
    app_changes(core)
    core.path.chmod(0o640)

    previous = os.umask(0)  # the restored file's bits are the old file's, not what a umask leaves
    try:
        result = maintctl("restore", backup, "--db", core.path)
    finally:
        os.umask(previous)

    assert result.code == 0, result
    (replaced,) = replaced_files(core)
    assert result.out == f"restored {core.path} from {backup}; the replaced database is kept at {replaced}\n"
    assert result.err == ""
    assert memories(core.path) == ["m1", "m2"]
    assert memories(replaced) == ["m2", "m3"]
    assert stat.S_IMODE(core.path.stat().st_mode) == 0o640
    assert not [name for name in listing(core.path.parent) if name.startswith(".core.db") or "-wal" in name]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root gives files away")
def test_run_as_root_the_restored_file_has_the_old_files_owner(maintctl, core, backup):
    os.chown(core.path, 4321, 4322)

    result = maintctl("restore", backup, "--db", core.path)

    assert result.code == 0, result
    assert (core.path.stat().st_uid, core.path.stat().st_gid) == (4321, 4322)


def test_the_replaced_file_is_named_with_a_four_digit_year(maintctl, core, backup):
    result = maintctl("restore", backup, "--db", core.path, env={"MAINTCTL_NOW": "0999-01-01T00:00:00Z"})

    assert result.code == 0, result
    assert replaced_files(core) == [core.path.with_name("core.db.replaced-09990101T000000Z")]


@pytest.mark.parametrize("kind", ["a directory", "a named pipe", "a name too long"])
def test_a_database_that_is_no_file_says_what_it_is(maintctl, backup, tmp_path, kind):
    given = tmp_path / ("x" * 300 if kind == "a name too long" else "given")
    if kind == "a directory":
        given.mkdir()
    elif kind == "a named pipe":
        os.mkfifo(given)

    result = maintctl("restore", backup, "--db", given)

    assert result.code == 2, result
    too_long = kind == "a name too long"
    expected = (
        "cannot be read as a database file (File name too long)" if too_long else f"is {kind}, not a database file"
    )
    assert result.err == f"maintctl: error: {given}: {expected}\n"


def test_a_missing_database_is_refused_and_not_created(maintctl, core, backup, tmp_path):
    missing = tmp_path / "gone.db"

    result = maintctl("restore", backup, "--db", missing)

    assert result.code == 2
    assert (
        result.err
        == f"maintctl: error: {missing}: no such database (to restore to a new path, copy the backup there)\n"
    )
    assert not missing.exists()


def test_the_restored_database_goes_on_with_its_own_backups(maintctl, core, backup):
    app_changes(core)
    maintctl("restore", backup, "--db", core.path)

    later = maintctl("backup", "--db", core.path, "--now", "2026-11-23T09:30:00Z", "--keep", "1")

    assert later.code == 0, later
    assert [path.name for path in (core.path.parent / "backups").glob("core.db-*.sqlite3")] == [
        backup.name.replace("20261122T", "20261123T")
    ]


def test_json_and_quiet(maintctl, core, backup):
    quiet = maintctl("restore", backup, "--db", core.path, "--quiet")
    quiet_json = maintctl("restore", backup, "--db", core.path, "--quiet", "--json")
    document = maintctl("restore", backup, "--db", core.path, "--json")

    assert (quiet.code, quiet.out, quiet.err) == (0, "", "")
    assert (quiet_json.code, quiet_json.out, quiet_json.err) == (0, "", "")
    assert document.code == 0, document
    first, _, second = replaced_files(core)
    assert document.json() == {
        "database": str(core.path),
        "backup": str(backup),
        "replaced": str(second),
        "database_id": rows(core.path, "SELECT value FROM maintctl_meta")[0][0],
        "dry_run": False,
        "warnings": [],
        "waited_seconds": 0,
        "lock_held_by": None,
    }
    assert first != second  # each restore keeps the file it replaced; none is overwritten


def test_a_dry_run_changes_nothing_and_says_what_it_would(maintctl, core, backup):
    app_changes(core)
    before = (listing(core.path.parent), digest(core.path))

    result = maintctl("restore", backup, "--db", core.path, "--dry-run")

    assert result.code == 0, result
    assert result.out.startswith(f"would restore {core.path} from {backup}, keeping the replaced database at ")
    assert result.out.endswith("; nothing was changed\n")
    assert (listing(core.path.parent), digest(core.path)) == before


def backup_of_another_database(maintctl, tmp_path):
    """Given a directory, make another database named core.db there, with memory `theirs`, back it up
    and return its backup."""
    other_path = tmp_path / "elsewhere" / "core.db"
    other_path.parent.mkdir()
    connection = create_database(other_path)
    init_db(connection)
    connection.close()
    other = Core(other_path)
    other.memory("theirs")
    other.connection.close()
    result = maintctl("backup", "--db", other_path, "--now", NOW)
    assert result.code == 0, result
    return next((other_path.parent / "backups").glob("core.db-*.sqlite3"))


class TestARefusedRestoreChangesNothing:
    def refused(self, maintctl, core, backup, *more, code=2):
        before = (listing(core.path.parent), digest(core.path))
        result = maintctl("restore", backup, "--db", core.path, *more)
        assert result.code == code, result
        assert (listing(core.path.parent), digest(core.path)) == before
        assert "Traceback" not in result.err and result.err.count("\n") == 1
        return result

    def test_a_corrupt_backup(self, maintctl, core, backup):
        (page,) = rows(backup, "SELECT rootpage FROM sqlite_schema WHERE name = 'sqlite_autoindex_memories_1'")[0]
        (size,) = rows(backup, "PRAGMA page_size")[0]
        damaged = bytearray(backup.read_bytes())
        damaged[(page - 1) * size + 100 : page * size] = b"\x07" * (size - 100)  # an index page: readable, but wrong
        backup.write_bytes(bytes(damaged))

        result = self.refused(maintctl, core, backup)

        assert result.err.startswith(f"maintctl: error: {backup}: fails PRAGMA integrity_check (")

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (b"not a database at all" * 100, "not a SQLite database"),
            (None, "not a backup of the Core app's database (no table users, memories, memory_tags"),
        ],
        ids=["not-sqlite", "not-the-apps"],
    )
    def test_a_file_that_is_no_backup_of_the_app(self, maintctl, core, backup, tmp_path, content, message):
        other = tmp_path / "other.sqlite3"
        if content is None:
            sqlite3.connect(other).execute("CREATE TABLE unrelated (x)").connection.close()
        else:
            other.write_bytes(content)

        result = self.refused(maintctl, core, other)

        assert result.err.startswith(f"maintctl: error: {other}: {message}")

    def test_a_missing_backup(self, maintctl, core, backup, tmp_path):
        result = self.refused(maintctl, core, tmp_path / "nowhere.sqlite3")

        assert result.err == f"maintctl: error: {tmp_path / 'nowhere.sqlite3'}: no such backup file\n"

    @pytest.mark.parametrize("kind", ["a named pipe", "a name too long"])
    def test_a_backup_that_is_no_file_says_what_it_is(self, maintctl, core, backup, tmp_path, kind):
        given = tmp_path / ("x" * 300 if kind == "a name too long" else "given")
        if kind == "a named pipe":
            os.mkfifo(given)

        result = self.refused(maintctl, core, given)

        too_long = kind == "a name too long"
        expected = (
            "cannot be read as a backup file (File name too long)" if too_long else f"is {kind}, not a backup file"
        )
        assert result.err == f"maintctl: error: {given}: {expected}\n"

    def test_a_directory_is_a_destination_and_one_without_a_copy_of_this_database_is_named(
        self, maintctl, core, backup, tmp_path
    ):
        given = tmp_path / "given"
        given.mkdir()
        result = self.refused(maintctl, core, given)
        assert result.err.startswith(f"maintctl: error: {given}: no copy of core.db (id ")

    def test_a_dry_run_over_a_wal_without_its_shm(self, maintctl, core, backup):
        rows(core.path, "PRAGMA journal_mode = WAL")
        subprocess.run([sys.executable, "-c", LAST_WRITES, str(core.path)], check=True)
        core.path.with_name("core.db-shm").unlink()

        result = self.refused(maintctl, core, backup, "--dry-run")
        restored = maintctl("restore", backup, "--db", core.path)

        assert result.err.startswith(f"maintctl: error: {core.path}: has a -wal file but no -shm")
        assert restored.code == 0, restored
        assert len(memories(replaced_files(core)[0])) == 52

    def test_a_backup_of_another_database_unless_forced(self, maintctl, core, backup, tmp_path):
        (database_id,) = rows(core.path, "SELECT value FROM maintctl_meta")[0]
        other_backup = backup_of_another_database(maintctl, tmp_path)

        result = self.refused(maintctl, core, other_backup)
        forced = maintctl("restore", other_backup, "--db", core.path, "--force")

        assert result.err.startswith(f"maintctl: error: {other_backup}: is a backup of another database (id ")
        assert result.err.endswith("nothing was restored (--force restores it anyway)\n")
        assert forced.code == 0, forced
        assert forced.err.startswith(f"maintctl: warning: --force: {other_backup}: is a backup of another database")
        assert memories(core.path) == ["theirs"]
        assert rows(core.path, "SELECT key, value FROM maintctl_meta") == [("database_id", database_id)]

    @pytest.mark.parametrize("dry_run", [(), ("--dry-run",)], ids=["run", "dry-run"])
    def test_a_backup_with_an_id_over_a_database_without_one_unless_forced(
        self, maintctl, core, backup, tmp_path, dry_run
    ):
        other_backup = backup_of_another_database(maintctl, tmp_path)
        change(core.path, "DELETE FROM maintctl_meta")  # as the README once advised for a copy

        result = self.refused(maintctl, core, other_backup, *dry_run)
        forced = maintctl("restore", other_backup, "--db", core.path, "--force")

        assert re.fullmatch(
            f"maintctl: error: {re.escape(str(other_backup))}: may be a backup of another database"
            r" \(id [0-9a-f]{8}; core.db has none\); nothing was restored \(--force restores it anyway\)\n",
            result.err,
        )
        assert forced.code == 0, forced
        assert forced.err.startswith(f"maintctl: warning: --force: {other_backup}: may be a backup of another")
        assert memories(core.path) == ["theirs"]
        assert rows(core.path, "SELECT key, value FROM maintctl_meta") == []  # its next backup gives it its own

    @pytest.mark.parametrize("dry_run", [(), ("--dry-run",)], ids=["run", "dry-run"])
    def test_while_a_maintctl_run_holds_the_lock(self, maintctl, core, backup, dry_run):
        lock_file = core.path.with_name("core.db.maintctl.lock")
        with open(lock_file, "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            result = self.refused(maintctl, core, backup, *dry_run, code=75)

        holds = f"holds the lock on {re.escape(str(core.path))}; nothing was restored"
        assert re.fullmatch(f"maintctl: another maintctl run \\(pid \\d+\\) {holds}\n", result.err)

    @pytest.mark.parametrize("journal_mode", ["delete", "wal"])
    def test_while_another_process_has_the_database_open_unless_forced(self, maintctl, core, backup, journal_mode):
        from maintctl.store import openers

        rows(core.path, f"PRAGMA journal_mode = {journal_mode}")
        with app_running(HOLDER, core) as app:
            app_changes(core)
            if journal_mode == "wal":  # what tells of an app run by another user, whose open files are not ours to see
                shm = core.path.with_name("core.db-shm").stat().st_ino
                assert [lock.kind for lock in openers.file_locks() if (lock.pid, lock.inode) == (app.pid, shm)]

            result = self.refused(maintctl, core, backup)
            forced = maintctl("restore", backup, "--db", core.path, "--force")

        assert result.err.startswith(
            f"maintctl: error: {core.path} is in use by another process (pid {app.pid} (python"
        )
        holding = "core.db" if journal_mode == "delete" else "core.db, core.db-shm, core.db-wal"
        assert (
            f"(python) has {holding} open): stop the app first; nothing was restored (--force restores it anyway)"
            in result.err
        )
        assert forced.code == 0, forced
        assert f"maintctl: warning: --force: {core.path} is in use by another process (pid {app.pid}" in forced.err
        assert memories(core.path) == ["m1", "m2"]


@pytest.mark.parametrize("how", ["MAINTCTL_DB", ".env"])
def test_the_database_may_be_named_as_for_every_command(maintctl, core, backup, tmp_path, how):
    app_changes(core)
    if how == ".env":
        (tmp_path / ".env").write_text(f"MAINTCTL_DB={core.path}\n")

    result = maintctl("restore", backup, env={"MAINTCTL_DB": str(core.path)} if how == "MAINTCTL_DB" else {})

    assert result.code == 0, result
    assert memories(core.path) == ["m1", "m2"]


def test_a_database_behind_a_symbolic_link_is_replaced_where_it_lies(maintctl, core, backup, tmp_path):
    app_changes(core)
    link = tmp_path / "link.db"
    link.symlink_to(core.path)

    result = maintctl("restore", backup, "--db", link)

    assert result.code == 0, result
    assert link.is_symlink() and memories(core.path) == ["m1", "m2"]
    assert len(replaced_files(core)) == 1


def test_a_wal_database_with_the_apps_last_writes_uncheckpointed(maintctl, core, backup):
    rows(core.path, "PRAGMA journal_mode = WAL")
    app = subprocess.run([sys.executable, "-c", LAST_WRITES, str(core.path)], check=True)
    wal = core.path.with_name("core.db-wal")
    assert app.returncode == 0 and wal.stat().st_size > 0  # the app's last writes are in the -wal alone

    result = maintctl("restore", backup, "--db", core.path)

    assert result.code == 0, result
    (replaced,) = replaced_files(core)
    assert not wal.exists() and not core.path.with_name("core.db-shm").exists()
    assert not replaced.with_name(replaced.name + "-wal").exists()  # the writes are in the replaced file itself
    assert len(memories(replaced)) == 52
    assert memories(core.path) == ["m1", "m2"]


def test_a_backup_without_an_id_is_given_the_databases(maintctl, core, backup):
    (database_id,) = rows(core.path, "SELECT value FROM maintctl_meta")[0]
    connection = sqlite3.connect(backup)
    connection.execute("DROP TABLE maintctl_meta")  # as an earlier version's backup
    connection.commit()
    connection.close()

    result = maintctl("restore", backup, "--db", core.path, "--json")

    assert result.code == 0, result
    assert result.json()["database_id"] == database_id
    assert rows(core.path, "SELECT key, value FROM maintctl_meta") == [("database_id", database_id)]


def test_a_copy_made_its_own_restores_its_own_backups_and_with_force_those_from_before(maintctl, core, backup):
    import shutil

    copy = core.path.with_name("copy.db")
    shutil.copyfile(core.path, copy)
    change(copy, "UPDATE maintctl_meta SET value = lower(hex(randomblob(16))) WHERE key = 'database_id'")  # README
    (own_id,) = rows(copy, "SELECT value FROM maintctl_meta")[0]
    taken = maintctl("backup", "--db", copy, "--now", "2026-11-23T09:30:00Z")
    own_backup = next((core.path.parent / "backups").glob(f"copy.db-{own_id[:8]}-*.sqlite3"))

    from_before = maintctl("restore", backup, "--db", copy)
    forced = maintctl("restore", backup, "--db", copy, "--force")
    back = maintctl("restore", sorted(core.path.parent.glob("copy.db.replaced-*"))[0], "--db", copy)
    own = maintctl("restore", own_backup, "--db", copy)

    assert taken.code == 0, taken
    assert from_before.code == 2 and "is a backup of another database" in from_before.err, from_before
    assert (forced.code, back.code, own.code) == (0, 0, 0), (forced, back, own)
    assert rows(copy, "SELECT key, value FROM maintctl_meta") == [("database_id", own_id)]


def test_a_database_that_cannot_be_opened_is_replaced_only_by_force(maintctl, core, backup):
    core.path.write_bytes(b"\x00garbage" * 1000)

    refused = maintctl("restore", backup, "--db", core.path)
    forced = maintctl("restore", backup, "--db", core.path, "--force")

    assert refused.code == 2, refused
    assert refused.err.startswith(f"maintctl: error: {core.path}: cannot be read (file is not a database)")
    assert forced.code == 0, forced
    (replaced,) = replaced_files(core)
    assert replaced.read_bytes() == b"\x00garbage" * 1000
    assert memories(core.path) == ["m1", "m2"]


READER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("PRAGMA wal_autocheckpoint = 0")
connection.execute("INSERT INTO memories (id, owner_user_id, content, status) VALUES ('m9', 1001, 'x', 'confirmed')")
connection.execute("BEGIN")
connection.execute("SELECT count(*) FROM memories").fetchone()  # a read under way: the WAL cannot be reset
print("ready", flush=True)
sys.stdin.read()
"""


def test_forced_past_an_app_reading_the_wal_keeps_what_is_left_of_it_beside_the_replaced_file(maintctl, core, backup):
    rows(core.path, "PRAGMA journal_mode = WAL")
    with app_running(READER, core):
        forced = maintctl("restore", backup, "--db", core.path, "--force")

    assert forced.code == 0, forced
    assert "its WAL could not be checkpointed" in forced.err
    (replaced, wal_kept) = replaced_files(core)
    assert wal_kept == replaced.with_name(replaced.name + "-wal") and wal_kept.stat().st_size > 0
    assert not core.path.with_name("core.db-wal").exists() and not core.path.with_name("core.db-shm").exists()
    assert memories(core.path) == ["m1", "m2"]
    assert memories(replaced) == ["m1", "m2", "m9"]


def test_going_back_to_a_replaced_file_with_a_wal_kept_beside_it_takes_the_wal_too(maintctl, core, backup):
    rows(core.path, "PRAGMA journal_mode = WAL")
    with app_running(READER, core):
        forced = maintctl("restore", backup, "--db", core.path, "--force")
    (replaced, wal_kept) = replaced_files(core)
    before = (listing(core.path.parent), digest(core.path), digest(replaced))

    refused = maintctl("restore", replaced, "--db", core.path)

    assert forced.code == 0, forced
    assert refused.code == 2, refused
    assert refused.err == (
        f"maintctl: error: {replaced}: is not whole without {wal_kept.name} beside it: put that into it first"
        f" (sqlite3 {replaced} 'PRAGMA wal_checkpoint(TRUNCATE)'), then restore it\n"
    )
    assert (listing(core.path.parent), digest(core.path), digest(replaced)) == before
    rows(replaced, "PRAGMA wal_checkpoint(TRUNCATE)")  # as the message says, with Python's sqlite3 for the CLI

    back = maintctl("restore", replaced, "--db", core.path)

    assert back.code == 0, back
    assert memories(core.path) == ["m1", "m2", "m9"]


HOLDS_LOCKS = """
import fcntl, sys
held = [open(path, "r+") for path in sys.argv[1:]]
for file in held:
    fcntl.flock(file, fcntl.LOCK_EX)
print("ready", flush=True)
sys.stdin.read()  # holds them until the test closes stdin
"""


@contextmanager
def two_filesystems(tmp_path):
    """Yield two directories, each a tmpfs of its own (whose inode numbers start alike)."""
    mounts = [tmp_path / "here", tmp_path / "there"]
    mounted = []
    try:
        for mount in mounts:
            mount.mkdir()
            if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mount)], check=False).returncode:
                pytest.skip("cannot mount a tmpfs here")
            mounted.append(mount)
        yield mounts
    finally:
        for mount in mounted:
            subprocess.run(["umount", str(mount)], check=True)


def test_a_lock_on_another_filesystems_file_with_the_same_inode_number_holds_nothing(maintctl, tmp_path):
    with two_filesystems(tmp_path) as (here, there):
        connection = create_database(here / "core.db")
        init_db(connection)
        connection.close()
        made = maintctl("backup", "--db", here / "core.db", "--to", tmp_path / "backups", "--now", NOW)
        assert made.code == 0, made
        (backup,) = (tmp_path / "backups").glob("core.db-*.sqlite3")
        ours = {(here / name).stat().st_ino for name in ("core.db", "core.db.maintctl.lock")}
        for index in range(1000):  # files of the other filesystem until both inode numbers are taken
            (there / f"other{index}").touch()
        alike = [path for path in there.iterdir() if path.stat().st_ino in ours]
        if len(alike) < 2:
            pytest.skip("this kernel numbers a tmpfs's inodes from a counter of all of them")
        app = subprocess.Popen(
            [sys.executable, "-c", HOLDS_LOCKS, *map(str, alike)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert app.stdout.readline() == "ready\n"
            status = maintctl("status", "--db", here / "core.db", "--json", "--now", NOW)
            dry = maintctl("restore", backup, "--db", here / "core.db", "--dry-run")
            restored = maintctl("restore", backup, "--db", here / "core.db")
        finally:
            app.communicate("")

    assert status.json()["lock"]["held_by_pid"] is None, status
    assert dry.code == 0, dry
    assert restored.code == 0, restored


# Waiting for the lock: under the recommended cron line (run-all --for 60s --wait 30 every minute) a window
# holds the lock nearly all the time, and hands it over at each minute.


def start(tmp_path, *arguments) -> subprocess.Popen:
    """Start maintctl with the arguments as a process of its own, as cron or a shell would."""
    from conftest import CLEAN_ENV

    return subprocess.Popen(
        [sys.executable, "-m", "maintctl", *map(str, arguments)],
        env=CLEAN_ENV, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def lock_of(core):
    return core.path.with_name("core.db.maintctl.lock")


def flocks(core, waiting: bool) -> list[int]:
    """The processes holding (or, with waiting, queued for) a flock on the database's lock file."""
    from maintctl.store import openers

    if not lock_of(core).exists():
        return []
    inode = lock_of(core).stat().st_ino
    return [lock.pid for lock in openers.file_locks() if lock.inode == inode and lock.waiting == waiting]


def has_open(pid: int, path) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def runs_of(path, pid: int) -> int:
    """How many history rows the process with that pid recorded in the database at path."""
    return rows(path, f"SELECT count(*) FROM maintctl_runs WHERE pid = {pid}")[0][0]


@contextmanager
def window(core, tmp_path, seconds: str = "2s"):
    """A run-all --for window on the database (as cron's recommended line starts one), once it holds the lock."""
    run = start(tmp_path, "run-all", "--db", core.path, "--now", NOW, "--for", seconds)
    try:
        until(lambda: flocks(core, waiting=False) == [run.pid], "the window's lock")
        yield run
    finally:
        if run.poll() is None:
            run.terminate()  # as a stop would: not killed mid-write, whether its first pass is done or not
        run.communicate(timeout=60)


def test_wait_restores_once_the_window_holding_the_lock_ends(maintctl, core, backup, tmp_path):
    app_changes(core)
    with window(core, tmp_path) as holder:
        result = maintctl("restore", backup, "--db", core.path, "--wait", "30", "--json")
        holder.wait(timeout=30)

    assert result.code == 0, result
    document = result.json()
    assert document["lock_held_by"] == holder.pid and document["waited_seconds"] > 0.2
    assert holder.returncode == 0  # the window ended as it would have, its work whole
    replaced = Path(document["replaced"])
    assert memories(core.path) == ["m1", "m2"]
    assert memories(replaced) == ["m2", "m3"]
    assert (runs_of(replaced, holder.pid) > 0, runs_of(core.path, holder.pid)) == (True, 0)  # its record, its file
    assert not [name for name in listing(core.path.parent) if name.startswith(".core.db.restoring")]


def test_the_next_run_waiting_too_neither_keeps_the_restore_out_nor_works_on_the_replaced_file(core, backup, tmp_path):
    """The next minute's run waits for the lock as the restore does: it has the database closed meanwhile, so
    the restore is not refused for it, and once it has the lock it works on the file at the database's path,
    the restored one, never on the one kept aside. (Which of the two has the lock first is the kernel's
    choice; the run is held still here while the lock is let go, so that the restore has it first.)"""
    import signal

    app_changes(core)
    with open(lock_of(core), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        restore = start(tmp_path, "restore", backup, "--db", core.path, "--wait", "30", "--json")
        until(lambda: flocks(core, waiting=True) == [restore.pid], "the restore's wait")
        next_run = start(tmp_path, "run-all", "--db", core.path, "--now", NOW, "--wait", "30")
        until(lambda: has_open(next_run.pid, lock_of(core)), "the next run's wait")
        until(lambda: not has_open(next_run.pid, core.path), "the next run's closing the database")
        next_run.send_signal(signal.SIGSTOP)
    out, err = restore.communicate(timeout=30)
    next_run.send_signal(signal.SIGCONT)
    _, next_err = next_run.communicate(timeout=30)

    assert restore.returncode == 0, err
    assert next_run.returncode == 0, next_err
    replaced = Path(json.loads(out)["replaced"])
    assert memories(core.path) == ["m1", "m2"]
    assert (runs_of(core.path, next_run.pid) > 0, runs_of(replaced, next_run.pid)) == (True, 0)


def test_the_wait_running_out_exits_75_naming_the_holder_and_changes_nothing(maintctl, core, backup):
    import time

    before = (listing(core.path.parent), digest(core.path))
    with open(lock_of(core), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        began = time.monotonic()
        result = maintctl("restore", backup, "--db", core.path, "--wait", "0.5", "--json")
        took = time.monotonic() - began
        quiet = maintctl("restore", backup, "--db", core.path, "--wait", "0.2", "--quiet")

    assert result.code == 75 and 0.5 <= took < 10
    message = f"another maintctl run (pid {os.getpid()}) still holds the lock on {core.path} after 0.5 s"
    assert result.err == f"maintctl: {message}; nothing was restored\n"
    assert result.json() == {"error": f"{message}; nothing was restored", "exit": 75}
    assert (quiet.code, quiet.out, quiet.err) == (75, "", "")
    assert (listing(core.path.parent), digest(core.path)) == before


@pytest.mark.parametrize("signal_name, code", [("SIGTERM", 143), ("SIGINT", 130), ("SIGKILL", -9)])
def test_a_restore_stopped_while_waiting_changes_nothing(core, backup, tmp_path, signal_name, code):
    import signal
    import time

    before = (listing(core.path.parent), digest(core.path))
    with open(lock_of(core), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        restore = start(tmp_path, "restore", backup, "--db", core.path, "--wait", "3000000000")  # 95 years
        until(lambda: flocks(core, waiting=True) == [restore.pid], "the restore's wait")

        restore.send_signal(getattr(signal, signal_name))
        sent = time.monotonic()
        _, err = restore.communicate(timeout=10)
        took = time.monotonic() - sent

    assert restore.returncode == code and took < 2
    if code > 0:
        assert err == f"maintctl: stopped by {signal_name} while waiting for the lock; nothing was restored\n"
    assert (listing(core.path.parent), digest(core.path)) == before
    assert flocks(core, waiting=False) == flocks(core, waiting=True) == []  # nothing left holding or queued


@pytest.mark.parametrize("removed", ["the backup", "the database"])
def test_a_file_removed_while_the_restore_waited_is_refused(core, backup, tmp_path, removed):
    with open(lock_of(core), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        restore = start(tmp_path, "restore", backup, "--db", core.path, "--wait", "30")
        until(lambda: flocks(core, waiting=True) == [restore.pid], "the restore's wait")
        gone = backup if removed == "the backup" else core.path
        kept = gone.read_bytes()
        gone.unlink()  # the backup by a backup run's rotation, say
        if removed == "the backup":
            backup.write_bytes(kept)  # and another file of that name, even one with the same bytes
        before = (listing(core.path.parent), listing(backup.parent))
    _, err = restore.communicate(timeout=30)

    assert restore.returncode == 2
    if removed == "the backup":
        assert err == f"maintctl: error: {backup}: changed or removed while the restore waited for the lock\n"
    else:
        assert err.startswith(f"maintctl: error: {core.path}: no such database")
    assert (listing(core.path.parent), listing(backup.parent)) == before


def test_a_dry_run_with_wait_says_it_would_wait_and_is_not_refused_for_the_window(maintctl, core, backup, tmp_path):
    before = (listing(core.path.parent), digest(core.path))
    with window(core, tmp_path) as holder:
        result = maintctl("restore", backup, "--db", core.path, "--dry-run", "--wait", "30")
        document = maintctl("restore", backup, "--db", core.path, "--dry-run", "--wait", "30", "--json")
        refused = maintctl("restore", backup, "--db", core.path, "--dry-run")

    assert result.code == 0, result
    assert result.out.startswith(f"would restore {core.path} from {backup} once the lock is free (pid {holder.pid}")
    assert document.json()["lock_held_by"] == holder.pid and document.json()["waited_seconds"] == 0
    assert refused.code == 75
    assert listing(core.path.parent) == before[0] and memories(core.path) == ["m1", "m2"]


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "-inf", "1e20", "9" * 400, "abc", "", "1e-7", "0", "-0"])
def test_a_hostile_wait_is_refused_in_one_line_or_restores(maintctl, core, backup, value):
    before = digest(core.path)

    result = maintctl("restore", backup, "--db", core.path, f"--wait={value}")

    if value in ("1e-7", "0", "-0"):
        assert result.code == 0, result
        assert memories(core.path) == ["m1", "m2"]
    else:
        assert result.code == 2, result
        assert result.err.startswith("maintctl: ") and "--wait" in result.err and result.err.count("\n") == 1
        assert "Traceback" not in result.err and digest(core.path) == before
