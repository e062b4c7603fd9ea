"""Many databases in one invocation: --db repeated or a pattern, --shard,
several at once, one database's failure never stopping the others."""

import fcntl
import hashlib
from pathlib import Path

import pytest
from conftest import NOW, new_core, stream_entries, until


@pytest.fixture
def tenants(tmp_path):
    """Four tenant databases, each with a reminder due."""
    directory = tmp_path / "tenants"
    directory.mkdir()
    made = []
    for name in ("ada", "bob", "cy", "dee"):
        core = new_core(directory / f"{name}.db")
        core.memory("m1")
        core.reminder(f"r-{name}")
        made.append(core)
    yield made
    for core in made:
        core.connection.close()


def documents(result) -> dict:
    return {entry["database"]: entry for entry in result.json()["databases"]}


def test_a_pattern_runs_each_database_once_with_its_own_history(maintctl, tenants, redis_url, tmp_path):
    (tmp_path / "tenants" / "ada.db-wal").write_bytes(b"")  # side files the pattern also matches are not databases

    result = maintctl(
        "run-all", "--db", str(tmp_path / "tenants" / "*.db*"), "--now", NOW, "--redis-url", redis_url, "--json",
        "--parallel", "2",
    )  # fmt: skip

    assert result.code == 0, result
    found = documents(result)
    assert sorted(found) == sorted(str(core.path) for core in tenants)
    for core in tenants:
        entry = found[str(core.path)]
        assert entry["exit"] == 0 and entry["actions"][0]["counts"]["fired"] == 1
        assert core.sql("SELECT fired FROM reminders") == [(1,)]
        assert core.sql("SELECT count(DISTINCT run_id) FROM maintctl_runs") == [(1,)]
    assert sorted(entry["data"]["content"]["reminder_id"] for entry in stream_entries(redis_url)) == [
        "r-ada",
        "r-bob",
        "r-cy",
        "r-dee",
    ]


def test_repeated_db_and_text_output_name_each_database(maintctl, tenants):
    ada, bob = tenants[0].path, tenants[1].path

    result = maintctl("fire-reminders", "--db", ada, "--db", bob, "--now", NOW)

    assert result.code == 0, result
    assert f"== {ada} (exit 0)" in result.out and f"== {bob} (exit 0)" in result.out
    assert result.out.count("fire-reminders  ok") == 2


def test_one_broken_and_one_locked_database_are_reported_and_the_others_done(maintctl, tenants, tmp_path):
    broken = tmp_path / "tenants" / "zed.db"
    broken.write_bytes(b"")
    with open(tenants[1].path.parent / "bob.db.maintctl.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)

        result = maintctl("run-all", "--db", str(tmp_path / "tenants" / "*.db"), "--now", NOW, "--json")

    assert result.code == 2  # the gravest: a database that cannot be used
    found = documents(result)
    assert found[str(broken)]["exit"] == 2 and "empty" in found[str(broken)]["error"]
    assert found[str(tenants[1].path)]["exit"] == 75
    assert tenants[1].sql("SELECT fired FROM reminders") == [(0,)]
    for core in (tenants[0], tenants[2], tenants[3]):
        assert found[str(core.path)]["exit"] == 0
        assert core.sql("SELECT fired FROM reminders") == [(1,)]
    assert f"maintctl: {broken}: error: " in result.err


def test_a_pattern_that_matches_nothing_is_a_usage_error(maintctl, tmp_path):
    result = maintctl("run-all", "--db", str(tmp_path / "nowhere" / "*.db"), "--json")

    assert result.code == 2
    assert "no file matches the pattern" in result.err and result.json()["databases"] == []


def test_shards_cover_every_database_once(maintctl, tenants, tmp_path):
    pattern = str(tmp_path / "tenants" / "*.db")
    seen = []
    for index in range(3):
        result = maintctl("run-all", "--db", pattern, "--shard", f"{index}/3", "--now", NOW, "--dry-run", "--json")
        assert result.code == 0, result
        seen += list(documents(result))
    by_job_index = maintctl(
        "run-all", "--db", pattern, "--shard", "3", "--now", NOW, "--dry-run", "--json",
        env={"JOB_COMPLETION_INDEX": "1"},
    )  # fmt: skip

    assert sorted(seen) == sorted(str(core.path) for core in tenants)
    expected = [
        str(core.path)
        for core in tenants
        if int.from_bytes(hashlib.sha256(core.path.name.encode()).digest()[:8], "big") % 3 == 1
    ]
    assert sorted(documents(by_job_index)) == sorted(expected)


@pytest.mark.parametrize("shard", ["3/3", "x/2", "-1/2", "2"])
def test_a_shard_that_cannot_be_read_is_refused(maintctl, tenants, tmp_path, shard):
    result = maintctl("run-all", "--db", str(tmp_path / "tenants" / "*.db"), "--shard", shard)

    assert result.code == 2 and result.err.startswith("maintctl: error: --shard: ")


def test_a_litefs_replica_is_skipped_and_never_written(maintctl, tenants, tmp_path):
    (tmp_path / "tenants" / ".primary").write_text("node-a.internal\n")
    before = {core.path: core.digest() for core in tenants}

    result = maintctl("run-all", "--db", str(tmp_path / "tenants" / "*.db"), "--now", NOW, "--json")
    alone = maintctl("run-all", "--db", tenants[0].path, "--now", NOW)

    assert result.code == 0 and alone.code == 0
    for entry in result.json()["databases"]:
        assert entry["skipped"] is True and "a LiteFS replica (the primary is node-a.internal)" in entry["error"]
    assert "skipped: run maintctl on the primary" in alone.err
    assert {core.path: core.digest() for core in tenants} == before


def test_the_fleet_pings_once_and_keeps_one_metrics_file_labelled_by_database(maintctl, tenants, tmp_path):
    from test_pings_and_metrics import PingServer, read_metrics

    pings = PingServer()
    metrics = tmp_path / "maintctl.prom"
    try:
        result = maintctl(
            "run-all", "--db", str(tmp_path / "tenants" / "*.db"), "--now", NOW, "--parallel", "2",
            env={"MAINTCTL_PING_URL": pings.url, "MAINTCTL_METRICS_FILE": str(metrics)},
        )  # fmt: skip
    finally:
        pings.close()

    assert result.code == 0, result
    assert [path for path, _, _ in pings.pings] == ["/ping/d1c2-secret-key/start", "/ping/d1c2-secret-key"]
    assert len({rid for _, rid, _ in pings.pings}) == 1
    assert all(f"{core.path}: exit 0" in pings.pings[1][2] for core in tenants)
    samples = read_metrics(metrics)
    fired = {
        dict(labels)["database"]: value
        for (name, labels), value in samples.items()
        if name == "maintctl_last_run_items" and ("kind", "fired") in labels
    }
    assert fired == {str(core.path): 1.0 for core in tenants}


def test_a_command_of_one_database_refuses_a_pattern_and_init_db_makes_no_file_of_that_name(maintctl, tmp_path):
    pattern = str(tmp_path / "tenants" / "*.db")
    (tmp_path / "tenants").mkdir()

    status = maintctl("status", "--db", pattern)
    made = maintctl("init-db", "--db", pattern)

    assert status.code == made.code == 2
    assert "is a pattern: this command takes one database" in status.err
    assert list((tmp_path / "tenants").iterdir()) == []


def test_each_file_runs_once_however_it_is_named(maintctl, tenants, tmp_path):
    ada = tenants[0].path
    (tmp_path / "link.db").symlink_to(ada)

    result = maintctl(
        "fire-reminders", "--db", str(tmp_path / "tenants" / "*.db"), "--db", str(ada.parent / "." / ada.name),
        "--db", str(tmp_path / "link.db"), "--now", NOW, "--json",
    )  # fmt: skip

    assert result.code == 0, result
    assert sorted(documents(result)) == sorted(str(core.path) for core in tenants)


def test_for_over_many_databases_is_refused(maintctl, tenants, tmp_path):
    result = maintctl("run-all", "--db", str(tmp_path / "tenants" / "*.db"), "--for", "55s")

    assert result.code == 2 and "--for keeps one database's window" in result.err


def busy_fleet(tmp_path, count: int = 4):
    """Tenants with a long backlog each (a run of several seconds in batches of 100)."""
    directory = tmp_path / "busy"
    directory.mkdir()
    for number in range(count):
        core = new_core(directory / f"busy{number}.db")
        core.due_reminders(40_000, recurring=False)
        core.connection.close()
    return directory


def until_firing_began(directory) -> None:
    """Wait until the first database's run has fired some of its backlog."""
    import sqlite3
    import time

    for _ in range(600):
        with sqlite3.connect(directory / "busy0.db", timeout=10) as reading:
            if reading.execute("SELECT count(*) FROM reminders WHERE fired = 1").fetchone()[0]:
                return
        time.sleep(0.01)
    raise AssertionError("the fleet did not begin")


def start_fleet(directory, *more: str):
    import subprocess
    import sys

    from conftest import CLEAN_ENV

    return subprocess.Popen(
        [sys.executable, "-m", "maintctl", "fire-reminders", "--db", str(directory / "*.db"), "--now", NOW, *more],
        env={**CLEAN_ENV, "MAINTCTL_BATCH_SIZE": "100", "MAINTCTL_HOLD": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def openers(directory) -> list[str]:
    """The processes that have a file of the directory open."""
    import os

    holding = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if any(target.startswith(str(directory)) for target in targets):
            holding.append(pid)
    return holding


def test_sigterm_to_the_fleet_stops_the_runs_in_hand_and_begins_no_other(tmp_path):
    import json
    import signal

    directory = busy_fleet(tmp_path)
    fleet = start_fleet(directory, "--parallel", "2", "--json")
    until_firing_began(directory)

    fleet.send_signal(signal.SIGTERM)
    out, _ = fleet.communicate(timeout=60)

    assert fleet.returncode == 143
    entries = json.loads(out)["databases"]
    assert [entry["exit"] for entry in entries].count(143) == 4
    assert sum(1 for entry in entries if entry.get("error") == "not run: stopped by SIGTERM before it began") == 2
    assert openers(directory) == []


def workers_of(parent: int) -> list[int]:
    """The processes whose parent is `parent`, found by walking /proc."""
    import os

    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found.append(int(pid))
    return found


def alive(pid: int) -> bool:
    """Whether the process is there and not a zombie (a zombie holds no memory, no file, no pipe)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def has_open(pid: int, path) -> bool:
    import os

    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def lopsided_fleet(tmp_path, backlog: int):
    """Four databases for two workers: a0, whose lock the caller holds (its worker waits for it), a1 with a
    backlog of `backlog` due reminders, a2 and a3 with one each: the second worker takes a1, a2, a3, then has
    nothing more to do while the first still waits."""
    directory = tmp_path / "fleet"
    directory.mkdir()
    for name in ("a0", "a1", "a2", "a3"):
        core = new_core(directory / f"{name}.db")
        if name == "a1":
            core.due_reminders(backlog, recurring=False)
        else:
            core.reminder(f"r-{name}")
        core.connection.close()
    return directory


def start_lopsided(directory, *more: str):
    import subprocess
    import sys

    from conftest import CLEAN_ENV

    return subprocess.Popen(
        [sys.executable, "-m", "maintctl", "fire-reminders", "--db", str(directory / "*.db"), "--now", NOW,
         "--parallel", "2", "--wait", "60", *more],
        env={**CLEAN_ENV, "MAINTCTL_BATCH_SIZE": "100", "MAINTCTL_HOLD": "0"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def holding_locks(directory, *names: str) -> list:
    """Hold the maintctl lock of each database named (as another run would); return the open files."""
    held = [open(directory / f"{name}.db.maintctl.lock", "w") for name in names]
    for file in held:
        fcntl.flock(file, fcntl.LOCK_EX)
    return held


def until_idle(directory, workers: list[int]) -> None:
    """Wait until a1, a2 and a3 have been run and recorded and no worker has any of them open."""
    import sqlite3

    done = [directory / f"{name}.db" for name in ("a1", "a2", "a3")]

    def recorded(path) -> bool:
        with sqlite3.connect(path) as reading:
            return bool(reading.execute("SELECT count(*) FROM maintctl_runs").fetchone()[0])

    until(
        lambda: all(map(recorded, done)) and not any(has_open(pid, path) for pid in workers for path in done),
        "the second worker's last run",
    )


def consistent(path) -> None:
    """Assert the database is whole and each reminder fired has its audit row and its notification."""
    import sqlite3

    with sqlite3.connect(path) as reading:
        assert reading.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        fired = reading.execute("SELECT count(*) FROM reminders WHERE fired = 1").fetchone()[0]
        audited = reading.execute("SELECT count(*) FROM audit_log WHERE action = 'fired'").fetchone()[0]
        queued = reading.execute("SELECT count(*) FROM maintctl_outbox").fetchone()[0]
        assert fired == audited == queued, path


@pytest.mark.parametrize("instant", ["workers forked", "firing a backlog", "waiting for locks", "one idle"])
def test_no_worker_outlives_a_killed_fleet_whatever_it_was_doing(tmp_path, instant):
    """SIGKILL to maintctl: every worker it forked is gone within two seconds, whether it was starting, in a
    batch, waiting for a database's lock or idle waiting for a task; each database is consistent."""
    import os
    import signal
    import sqlite3
    import time

    directory = lopsided_fleet(tmp_path, backlog=200 if instant == "one idle" else 5_000)
    held = holding_locks(directory, "a0", "a1") if instant == "waiting for locks" else holding_locks(directory, "a0")
    fleet = start_lopsided(directory)
    workers: list[int] = []
    try:
        until(lambda: len(workers_of(fleet.pid)) == 2, "the workers' fork")
        workers = workers_of(fleet.pid)
        if instant == "firing a backlog":
            with sqlite3.connect(directory / "a1.db") as reading:
                until(lambda: reading.execute("SELECT count(*) FROM reminders WHERE fired = 1").fetchone()[0], "firing")
        elif instant == "waiting for locks":
            until(lambda: all(any(has_open(pid, file.name) for pid in workers) for file in held), "the waits")
        elif instant == "one idle":
            until_idle(directory, workers)

        fleet.send_signal(signal.SIGKILL)
        fleet.wait(timeout=10)
        deadline = time.monotonic() + 2
        while any(map(alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.01)

        assert [pid for pid in workers if alive(pid)] == []
        assert openers(directory) == []
    finally:
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        for file in held:
            file.close()
        fleet.communicate()
    for name in ("a0", "a1", "a2", "a3"):
        consistent(directory / f"{name}.db")


@pytest.mark.parametrize("instant", ["workers forked", "waiting for locks", "one idle"])
def test_sigterm_at_any_instant_ends_the_fleet_at_once(tmp_path, instant):
    """SIGTERM to maintctl reaches every run in hand, however far it has got (its worker just forked and the
    run not yet begun, waiting for a database's lock) and leaves a worker with nothing to do for the pool to
    end: maintctl exits 143 at once, each database's outcome reported."""
    import json
    import os
    import signal
    import time

    directory = lopsided_fleet(tmp_path, backlog=1)
    held = holding_locks(directory, "a0", "a1") if instant == "waiting for locks" else holding_locks(directory, "a0")
    fleet = start_lopsided(directory, "--json")
    workers: list[int] = []
    try:
        until(lambda: len(workers_of(fleet.pid)) == 2, "the workers' fork")
        workers = workers_of(fleet.pid)
        if instant != "workers forked":
            until(lambda: all(any(has_open(pid, file.name) for pid in workers) for file in held), "the waits")
        if instant == "one idle":
            until_idle(directory, workers)

        fleet.send_signal(signal.SIGTERM)
        began = time.monotonic()
        out, err = fleet.communicate(timeout=10)
        took = time.monotonic() - began
    finally:
        for pid in [fleet.pid, *workers]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        for file in held:
            file.close()

    assert fleet.returncode == 143, err
    assert took < 3
    found = {Path(entry["database"]).name: entry for entry in json.loads(out)["databases"]}
    assert sorted(found) == ["a0.db", "a1.db", "a2.db", "a3.db"]
    assert found["a0.db"]["exit"] == 143
    assert found["a0.db"]["error"] in (
        "stopped by SIGTERM while waiting for the lock; this run did nothing",
        "not run: stopped by SIGTERM before it began",
    )
    if instant == "one idle":
        assert [found[name]["exit"] for name in ("a1.db", "a2.db", "a3.db")] == [0, 0, 0]
    assert [pid for pid in workers if alive(pid)] == []
    for name in found:
        consistent(directory / name)
