"""Real parts only: SQLite files in tmp_path, a real redis-server on a free
loopback port, and maintctl run as the process a user runs. Only time is faked
(--now)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from maintctl.setup.schema import init_db
from maintctl.store.db import create_database, open_database

NOW = "2026-11-22T09:30:00.000Z"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RULES = (EXAMPLES / "maintctl.toml").read_text()  # the README's retention rules file: a test of it too


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def free_cluster_port() -> int:
    """A free loopback port whose cluster bus port (10,000 above it) is free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class RedisServer:
    """A redis-server of the test's own, on a free loopback port."""

    def __init__(self, directory: Path, *extra: str, port: int | None = None):
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed (the README's test command installs it)")
        self.directory = directory
        self.port = port or free_port()
        self.extra = extra
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, retry=Retry(NoBackoff(), 0))
        for _ in range(100):
            try:
                client.ping()
                return self
            except redis.AuthenticationError:
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class RedisCluster:
    """A Redis Cluster of the test's own: three masters on free loopback ports (with a replica each, where asked)."""

    def __init__(self, directory: Path, replicas: int = 0):
        self.replicas = replicas
        self.servers = [
            RedisServer(
                directory, "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{index}.conf",
                "--cluster-node-timeout", "2000", port=free_cluster_port(),
            )
            for index in range(3 * (1 + replicas))
        ]  # fmt: skip

    def start(self) -> RedisCluster:
        for server in self.servers:
            server.start()
        nodes = [f"127.0.0.1:{server.port}" for server in self.servers]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            check=True,
            capture_output=True,
        )
        for _ in range(400):
            states = [redis.Redis(port=server.port).cluster("info")["cluster_state"] for server in self.servers]
            if states == ["ok"] * len(self.servers) and self._replicas_online():
                return self
            time.sleep(0.05)
        raise RuntimeError("the cluster did not come up")

    def _replicas_online(self) -> bool:
        """Return whether every master has its replicas in sync (none asked: at once)."""
        for server in self.servers:
            info = redis.Redis(port=server.port).info("replication")
            if info["role"] == "master" and self.replicas:
                if info.get("connected_slaves", 0) < self.replicas or info.get("slave0", {}).get("state") != "online":
                    return False
        return True

    def master_of(self, key: str) -> RedisServer:
        """Return the server that holds the key's slot as its master."""
        client = redis.Redis(port=self.servers[0].port)
        slot = client.cluster("keyslot", key)
        for begin, end, master, *_ in client.cluster("slots"):
            if begin <= slot <= end:
                return next(server for server in self.servers if server.port == master[1])
        raise LookupError(key)

    def url_of(self, index: int) -> str:
        return self.servers[index].url

    def flush(self) -> None:
        for server in self.servers:
            client = redis.Redis(port=server.port)
            if client.info("replication")["role"] == "master":
                client.flushall()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    """A real Redis Cluster (three masters), emptied for each test that asks for it."""
    cluster = RedisCluster(tmp_path_factory.mktemp("cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def replicated_cluster(tmp_path):
    """A real Redis Cluster of three masters with a replica each, of this test alone (it may kill a master)."""
    cluster = RedisCluster(tmp_path / "replicated", replicas=1)
    (tmp_path / "replicated").mkdir()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster(redis_cluster) -> RedisCluster:
    redis_cluster.flush()
    return redis_cluster


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3-compatible store (SeaweedFS), shared by a worker's tests; each takes buckets of its own."""
    from s3_store import SeaweedFS

    store = SeaweedFS(tmp_path_factory.mktemp("seaweedfs")).start()
    yield store
    store.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    """The URL of a real, empty Redis."""
    redis.Redis(port=redis_server.port).flushall()
    return redis_server.url


def stream_entries(url: str, stream: str = "notify:telegram") -> list[dict]:
    """Return the stream's entries as {'id', 'msg_id', 'data' (decoded JSON)}."""
    client = redis.Redis.from_url(url)
    return [
        {"id": entry_id.decode(), "msg_id": fields[b"msg_id"].decode(), "data": json.loads(fields[b"data"].decode())}
        for entry_id, fields in client.xrange(stream)
    ]


class Core:
    """The Core app's side of the database: writes rows as the app would, on a
    connection of its own, and reads back what maintctl did."""

    def __init__(self, path: Path, copies_templates: bool = True):
        self.path = path
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.copies_templates = copies_templates  # False for the template being built

    def sql(self, statement: str, *parameters):
        return self.connection.execute(statement, parameters).fetchall()

    def insert_many(self, statement: str, rows) -> None:
        """Run the statement for each row, in one transaction (as the app's bulk writes would)."""
        self.connection.execute("BEGIN")
        self.connection.executemany(statement, rows)
        self.connection.execute("COMMIT")

    def user(self, telegram_user_id: int = 1001):
        self.sql("INSERT OR IGNORE INTO users (telegram_user_id) VALUES (?)", telegram_user_id)

    def memory(self, memory_id="m1", owner=1001, content="remember this", status="confirmed", expires=None, media=None):
        self.user(owner)
        self.sql(
            "INSERT INTO memories (id, owner_user_id, content, status, pending_expires_at, media_local_path)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            memory_id,
            owner,
            content,
            status,
            expires,
            media,
        )
        self.sql("INSERT INTO memories_fts (memory_id, content) VALUES (?, ?)", memory_id, content)

    def reminder(self, reminder_id="r1", memory_id="m1", fire_at=NOW, recurrence=None, owner=1001, fired=0):
        if not self.sql("SELECT 1 FROM memories WHERE id = ?", memory_id):
            self.memory(memory_id, owner)
        self.sql(
            "INSERT INTO reminders (id, memory_id, owner_user_id, fire_at, recurrence_minutes, fired)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            reminder_id,
            memory_id,
            owner,
            fire_at,
            recurrence,
            fired,
        )

    def due_reminders(self, count: int, recurring: bool = True) -> list[str]:
        """Add `count` reminders due at NOW on one memory, every tenth recurring hourly
        (unless not recurring); return their ids. (A large backlog in a new database is copied from one
        made once in this test process.)"""
        ids = [f"r{index:06d}" for index in range(count)]
        if count >= 10_000 and self.as_new():
            self.become(f"due-{count}-{recurring}", lambda database: database.due_reminders(count, recurring))
            return ids
        self.memory("m1")
        self.insert_many(
            "INSERT INTO reminders (id, memory_id, owner_user_id, fire_at, recurrence_minutes, fired)"
            " VALUES (?, 'm1', 1001, ?, ?, 0)",
            [
                (reminder_id, NOW, 60 if recurring and index % 10 == 0 else None)
                for index, reminder_id in enumerate(ids)
            ],
        )
        return ids

    def many_memories(self, count: int = 100_000) -> None:
        """Add user 1001's `count` memories m0, m1, … of 200 bytes each (a database of about 30 MB at 100,000).
        (In a new database, copied from one made once in this test process.)"""
        if self.as_new():
            self.become(f"memories-{count}", lambda database: database.many_memories(count))
            return
        self.user(1001)
        self.insert_many(
            "INSERT INTO memories (id, owner_user_id, content, status) VALUES (?, 1001, ?, 'confirmed')",
            ((f"m{index}", "x" * 200) for index in range(count)),
        )

    def as_new(self) -> bool:
        """Return whether the database is still as new_core made it: no rows of the app's, no transaction open, in
        rollback-journal mode, with no journal beside it."""
        return (
            self.copies_templates
            and not self.connection.in_transaction
            and not any(self.sql(f"SELECT 1 FROM {table} LIMIT 1") for table in ("users", "memories", "reminders"))
            and self.sql("PRAGMA journal_mode") == [("delete",)]
            and not any(self.path.with_name(self.path.name + suffix).exists() for suffix in ("-journal", "-wal"))
        )

    def become(self, name: str, build) -> None:
        """Given a template's name and builder, replace this new database's file with a copy of the template
        (its permission bits kept), with an id of its own."""
        bits = stat.S_IMODE(self.path.stat().st_mode)
        self.connection.close()
        self.path.unlink()
        copy_of(name, build, self.path)
        self.path.chmod(bits)
        self.connection = sqlite3.connect(self.path, isolation_level=None)

    def tag(self, memory_id="m1", tag="work", suggested_at=NOW, status="suggested"):
        if not self.sql("SELECT 1 FROM memories WHERE id = ?", memory_id):
            self.memory(memory_id)
        self.sql(
            "INSERT INTO memory_tags (memory_id, tag, status, suggested_at) VALUES (?, ?, ?, ?)",
            memory_id,
            tag,
            status,
            suggested_at,
        )

    def event(
        self,
        event_id="e1",
        owner=1001,
        pending_since=NOW,
        status="pending",
        description="Dentist",
        event_date="2026-12-01",
        user=True,
    ):
        if user:
            self.user(owner)
        self.sql(
            "INSERT INTO events (id, owner_user_id, description, event_date, status, pending_since)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            event_id,
            owner,
            description,
            event_date,
            status,
            pending_since,
        )

    def job(
        self,
        name="nightly",
        every="1h",
        added_at=NOW,
        job_type="profile_maintenance",
        cron=None,
        tz="UTC",
        timeout="1h",
    ):
        """Define a job as `maintctl job add` does (through maintctl's own jobs module)."""
        from maintctl.jobs import definitions as jobs
        from maintctl.timestamps import parse_duration, parse_instant

        connection = open_database(self.path, read_only=False, busy_timeout=5.0)
        try:
            jobs.add(
                connection,
                name,
                job_type,
                every=parse_duration(every) if every and not cron else None,
                cron=cron,
                tz=tz,
                bot="*",
                config={"entity_id": "nick"},
                timeout=parse_duration(timeout),
                now=parse_instant(added_at),
            )
        finally:
            connection.close()

    def audit(self, entity_type: str | None = None):
        rows = self.sql("SELECT entity_type, entity_id, action, actor, details, created_at FROM audit_log ORDER BY id")
        return [row for row in rows if entity_type is None or row[0] == entity_type]

    def outbox(self):
        return self.sql("SELECT msg_id, message, delivered_at FROM maintctl_outbox ORDER BY id")

    def data_digest(self) -> str:
        """The rows of every table but maintctl's run history, hashed: equal
        digests mean a run changed nothing but recorded itself."""
        tables = self.sql(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name != 'maintctl_runs' ORDER BY name"
        )
        rows = {name: sorted(map(repr, self.sql(f'SELECT * FROM "{name}"'))) for (name,) in tables}
        return hashlib.sha256(repr(rows).encode()).hexdigest()

    def digest(self) -> str:
        """The database file's bytes, hashed: equal digests mean not a byte changed."""
        self.connection.close()
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        self.connection = sqlite3.connect(self.path, isolation_level=None)
        return digest


_TEMPLATES: dict[str, Path] = {}


def template(name: str, build) -> Path:
    """Given a name and a function that fills a new database, return the path of that database, built once in this
    test process (init_db's work and a large table's rows are paid for once; each test copies the file)."""
    if name not in _TEMPLATES:
        import atexit
        import tempfile

        directory = Path(tempfile.mkdtemp(prefix=f"maintctl-template-{name}-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        path = directory / "core.db"
        connection = create_database(path)
        init_db(connection)
        connection.close()
        database = Core(path, copies_templates=False)
        build(database)
        database.connection.close()
        _TEMPLATES[name] = path
    return _TEMPLATES[name]


def copy_of(name: str, build, path: Path) -> None:
    """Given a template's name and builder and a path where no file is, copy the template there as a new file with
    an id of its own (as init_db gives each database)."""
    import uuid

    shutil.copy(template(name, build), path)  # a new file: no test sees another's changes
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("UPDATE maintctl_meta SET value = ? WHERE key = 'database_id'", (uuid.uuid4().hex,))
    connection.close()


def new_core(path: Path) -> Core:
    """Given a path, make a database there with the app's schema and maintctl's tables and indexes (init_db's,
    made once in this test process and copied, where no file is there yet); return it."""
    if not os.path.lexists(path):
        copy_of("empty", lambda database: None, path)
        return Core(path)
    connection = create_database(path)
    init_db(connection)
    connection.close()
    return Core(path)


@pytest.fixture
def core(tmp_path) -> Core:
    """A new database with the app's schema and maintctl's tables and indexes."""
    database = new_core(tmp_path / "core.db")
    yield database
    database.connection.close()


class Result:
    def __init__(self, completed: subprocess.CompletedProcess):
        self.code = completed.returncode
        self.out = completed.stdout
        self.err = completed.stderr

    def json(self) -> dict:
        return json.loads(self.out)

    def action(self, name: str) -> dict:
        return next(action for action in self.json()["actions"] if action["action"] == name)

    def __repr__(self):
        return f"Result(code={self.code}, out={self.out!r}, err={self.err!r})"


CLEAN_ENV = {key: value for key, value in os.environ.items() if not key.startswith("MAINTCTL_") and key != "REDIS_URL"}


def start_firing(core: Core, cwd: Path, *arguments: str, env: dict | None = None) -> subprocess.Popen:
    """Start `maintctl fire-reminders` on the core database at NOW as its own process, and return it."""
    return start_action("fire-reminders", core, cwd, *arguments, env=env)


def start_action(command: str, core: Core, cwd: Path, *arguments: str, env: dict | None = None) -> subprocess.Popen:
    """Start `maintctl COMMAND` on the core database at NOW as its own process, and return it."""
    return subprocess.Popen(
        [sys.executable, "-m", "maintctl", command, "--db", str(core.path), "--now", NOW, *arguments],
        env={**CLEAN_ENV, **(env or {})},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# The settings a test may give a forked command (see tests/forkserver.py): maintctl's own, read as it runs, and
# PYTHONIOENCODING, which the fork applies to the streams it makes. A command given any other (the locale, the
# terminal's size, shell completion's) is started as a new interpreter, which reads them as it starts.
FORKS_TAKE = ("MAINTCTL_", "REDIS_URL", "JOB_COMPLETION_INDEX", "PYTHONIOENCODING", "AWS_")


@pytest.fixture(scope="session")
def command_forks(tmp_path_factory):
    """maintctl imported once, each command a fork of it (tests/forkserver.py); None where
    MAINTCTL_TESTS_NEW_INTERPRETERS=1 asks for a new interpreter for every command."""
    if os.environ.get("MAINTCTL_TESTS_NEW_INTERPRETERS") == "1":
        yield None
        return
    from forkserver import Server

    server = Server(tmp_path_factory.mktemp("forks"), CLEAN_ENV)
    yield server
    server.stop()


@pytest.fixture
def maintctl(tmp_path, command_forks):
    """Run maintctl as a user would, as a process of its own, in tmp_path (so that no stray .env is read).
    Its start-up is paid once a session: each command is a fork of a maintctl already imported (see
    tests/forkserver.py), but where it is given settings a fork does not take (FORKS_TAKE): a new interpreter."""

    def run(*arguments: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 120) -> Result:
        arguments = [*map(str, arguments)]
        environment = {**CLEAN_ENV, **(env or {})}
        if command_forks is not None and all(name.startswith(FORKS_TAKE) for name in env or {}):
            code, out, err = command_forks.run(arguments, environment, cwd or tmp_path, timeout)
            return Result(subprocess.CompletedProcess(arguments, code, out, err))
        completed = subprocess.run(  # noqa: PLW1510 - the exit code is what the tests assert
            [sys.executable, "-m", "maintctl", *arguments],
            capture_output=True,
            text=True,
            cwd=cwd or tmp_path,
            env=environment,
            timeout=timeout,
        )
        return Result(completed)

    return run


def damage_an_index_page(core: Core) -> bytes:
    """Overwrite most of an index page of the database (readable, but wrong:
    PRAGMA quick_check and integrity_check find it); return the file's bytes."""
    core.reminder("r1")
    (page,) = core.sql("SELECT rootpage FROM sqlite_schema WHERE name = 'maintctl_reminders_due'")[0]
    (size,) = core.sql("PRAGMA page_size")[0]
    core.connection.close()
    damaged = bytearray(core.path.read_bytes())
    damaged[(page - 1) * size + 100 : page * size] = b"\x07" * (size - 100)
    core.path.write_bytes(bytes(damaged))
    return bytes(damaged)


def app_writes_while(run: subprocess.Popen, path: Path) -> list[float]:
    """Write as the app does, a row every 10 ms, while the run goes on; return how long each write waited for the lock."""
    app = sqlite3.connect(path, isolation_level=None, timeout=30)
    waits = []
    while run.poll() is None:
        began = time.monotonic()
        app.execute("BEGIN IMMEDIATE")
        waits.append(time.monotonic() - began)
        app.execute("INSERT INTO users (telegram_user_id) VALUES (?)", (5000 + len(waits),))
        app.execute("COMMIT")
        time.sleep(0.01)
    app.close()
    return waits


def flock_pids(path: Path, waiting: bool = False) -> list[int]:
    """Given a file, return the processes holding a flock on it (with waiting: queued for one), from /proc/locks."""
    try:
        inode = os.stat(path).st_ino
    except FileNotFoundError:
        return []
    pids = []
    with open("/proc/locks") as locks:
        for line in locks:
            fields = line.split()
            queued = fields[1] == "->"
            fields = fields[2:] if queued else fields[1:]
            if fields[0] == "FLOCK" and int(fields[4].rsplit(":", 1)[1]) == inode and queued == waiting:
                pids.append(int(fields[3]))
    return sorted(pids)


def asleep_in_a_timed_wait(pid: int) -> bool:
    """Return whether the process sleeps in the kernel for a set time (as SQLite's busy wait does between its
    tries, and maintctl never does while it starts or plans): a run waiting for a lock held by another."""
    try:
        with open(f"/proc/{pid}/wchan") as wchan:
            return wchan.read().strip() in ("hrtimer_nanosleep", "do_nanosleep")
    except FileNotFoundError:
        return False


def on_a_terminal(arguments: list, cwd: Path, columns: int = 160, stream: str = "stdout") -> tuple[int, str, str]:
    """Run maintctl with its stdout (or stderr) on a pseudo-terminal, as a person at one sees it; return its exit
    status, what the terminal showed and what the other stream held."""
    import pty

    primary, secondary = pty.openpty()
    other = subprocess.PIPE
    completed = subprocess.run(  # noqa: PLW1510 - the caller asserts the exit status
        [sys.executable, "-m", "maintctl", *map(str, arguments)],
        stdout=secondary if stream == "stdout" else other,
        stderr=secondary if stream == "stderr" else other,
        cwd=cwd,
        env={**CLEAN_ENV, "COLUMNS": str(columns), "TERM": "xterm"},
        timeout=60,
    )
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed: all is read
            break
        if not chunk:
            break
        shown += chunk
    os.close(primary)
    held = completed.stderr if stream == "stdout" else completed.stdout
    return completed.returncode, shown.decode(errors="replace"), held.decode(errors="replace")


def until(condition, what: str, seconds: float = 30) -> None:
    """Wait for the condition (looked at every 5 ms); fail naming what did not happen within `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen")
        time.sleep(0.005)


# The files whose tests wait on real time (windows, kills, Redis failing, a cluster failing over, worker
# processes), and elsewhere the tests that take a second or more (a long pass, a backlog of thousands, a wait
# for a lock or a busy database, dozens of runs): `pytest -m "not slow"` leaves them out, for a quick loop.
SLOW_FILES = {
    "test_cluster.py",
    "test_faults.py",
    "test_fleet.py",
    "test_limits.py",
    "test_lock_file_replaced.py",
    "test_redis_faults.py",
    "test_window.py",
    "test_window_replaced.py",
    "test_window_takeover.py",
}
SLOW_TESTS = {  # file::[class::]test, every parameter of it
    "test_backup.py::TestCopiesAreAsPrivateAsTheDatabase::test_the_media_copy_is_no_more_readable_than_the_media_even_while_it_is_written",
    "test_backup.py::TestRunsOfOneDatabaseShareTheirBackupDirectory::test_a_run_paused_mid_copy_loses_nothing_to_a_replica_backed_up_meanwhile",
    "test_backup.py::TestTheAppKeepsTheBackupFromStarting::test_past_the_busy_timeout_the_backup_fails_and_leaves_no_file",
    "test_backup.py::test_a_backup_taken_while_the_app_writes_is_whole_consistent_and_checked",
    "test_every_outcome.py::TestTheAppHoldingTheDatabasePastTheBusyTimeout::test_is_exit_1_with_a_document_and_nothing_changed",
    "test_examples.py::test_each_example_line_runs",
    "test_examples.py::test_the_indexed_job_covers_every_tenant_once_over_its_shards",
    "test_examples.py::test_the_kubernetes_cronjob_keeps_a_standby_as_the_cron_line_does",
    "test_expire_pending.py::test_init_db_indexes_the_search_index_only_where_it_has_the_usual_shape",
    "test_expire_tags.py::test_concurrent_runs_past_the_lock_expire_each_suggestion_once",
    "test_fire_reminders.py::test_concurrent_runs_past_the_lock_fire_each_reminder_once",
    "test_history.py::test_a_killed_retention_pass_keeps_what_it_deleted_in_its_history_row",
    "test_history.py::test_a_killed_runs_committed_work_is_in_history_and_stats_as_interrupted",
    "test_hostile_values.py::TestSchedulesThatCannotBeKept::test_a_schedule_spoiled_in_the_database_holds_back_its_action_alone",
    "test_hostile_values.py::test_a_hostile_value_is_refused_in_one_line_or_works_and_breaks_nothing_after",
    "test_jobs.py::TestEnqueueing::test_cron_times_are_kept_in_the_zone_across_a_daylight_saving_change",
    "test_jobs.py::TestEnqueueing::test_the_next_run_comes_an_interval_later_and_not_before",
    "test_jobs.py::TestEnqueueing::test_without_redis_the_run_waits_pending_and_is_delivered_once_when_redis_is_back",
    "test_jobs.py::TestOverlapAndTimeouts::test_status_exits_1_while_the_last_finished_run_failed",
    "test_jobs.py::TestPausesAndRunsByHand::test_a_paused_job_is_not_enqueued_job_run_enqueues_it_anyway_and_resume_coalesces",
    "test_jobs_delivery.py::test_passes_killed_at_any_instant_lose_no_run_and_double_none",
    "test_jobs_delivery.py::test_six_passes_at_once_each_with_its_own_lock_make_one_run_and_one_message_per_job",
    "test_jobs_delivery.py::test_the_example_worker_takes_a_run_and_its_result_comes_back_into_the_history",
    "test_jobs_hostile.py::TestSpoiledRows::test_a_spoiled_row_never_stops_the_other_jobs_nor_a_command",
    "test_lock.py::TestAsleepForTheLock::test_it_does_not_wake_while_the_lock_is_held_and_takes_it_the_moment_the_holder_dies",
    "test_lock.py::test_six_concurrent_runs_on_ten_thousand_due_reminders",
    "test_restore.py::test_forced_past_an_app_reading_the_wal_keeps_what_is_left_of_it_beside_the_replaced_file",
    "test_restore.py::test_going_back_to_a_replaced_file_with_a_wal_kept_beside_it_takes_the_wal_too",
    "test_restore.py::test_the_wait_running_out_exits_75_naming_the_holder_and_changes_nothing",
    "test_restore.py::test_wait_restores_once_the_window_holding_the_lock_ends",
    "test_retention.py::test_a_long_retention_pass_lets_the_app_write",
}


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        test = f"{item.path.name}::{item.nodeid.split('::', 1)[1].split('[', 1)[0]}"
        if item.path.name in SLOW_FILES or test in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
