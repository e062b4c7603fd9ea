"""How long `maintctl trace` takes on a million reminders and a stream of a million entries.

    python bench/trace.py                 # a million of each, 11 runs of each command
    python bench/trace.py --size 100000 --runs 5

Builds a database (through `maintctl init-db`, then the rows a million firings leave: fired reminders, their
audit rows, their delivered outbox rows with their stream entry ids) and, on its own redis-server, the stream
those firings made: a group that has read and acknowledged everything, and one that holds every entry pending
(a million entries in its pending list). Times whole processes, start-up included: `trace reminder` of one in
the middle (by the outbox), of one whose outbox row is pruned (by its dedup key), and `maintctl --version` for
the start-up alone. Prints a Markdown table of medians."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import build
from run import ENV, Redis

from maintctl.store.outbox import dedup_prefix

NOW = "2026-11-22T09:30:00.000Z"
FIRED_AT = "2026-11-22T09:29:00.000Z"


def fill(path: Path, redis: Redis, size: int) -> None:
    """Given an empty database and a Redis, write what `size` firings leave in both."""
    import redis as redis_client

    subprocess.run([sys.executable, "-m", "maintctl", "init-db", "--db", str(path), "--quiet"], check=True, env=ENV)
    connection = build.sqlite3.connect(path, isolation_level=None)
    database_id = uuid.uuid4().hex
    connection.execute("UPDATE maintctl_meta SET value = ? WHERE key = 'database_id'", (database_id,))
    client = redis_client.Redis.from_url(redis.url)
    prefix = dedup_prefix("notify:telegram", database_id)
    connection.execute("INSERT INTO users (telegram_user_id) VALUES (1001)")
    connection.execute(
        "INSERT INTO memories (id, owner_user_id, content, status) VALUES ('m1', 1001, 'x', 'confirmed')"
    )
    chunk = 50_000
    for start in range(0, size, chunk):
        ids = [f"r{index:07d}" for index in range(start, min(size, start + chunk))]
        fire_ats = [build.past(index, build.timedelta(days=30)) for index in range(start, start + len(ids))]
        pipe = client.pipeline(transaction=False)
        for reminder_id, fire_at in zip(ids, fire_ats):
            pipe.xadd("notify:telegram", {"data": "{}", "msg_id": f"reminder:{reminder_id}:{fire_at}"})
        entries = [entry.decode() for entry in pipe.execute()]
        pipe = client.pipeline(transaction=False)
        for reminder_id, fire_at, entry in zip(ids, fire_ats, entries):
            pipe.set(prefix + f"reminder:{reminder_id}:{fire_at}", entry, ex=7 * 86400)
        pipe.execute()
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO reminders (id, memory_id, owner_user_id, fire_at, fired) VALUES (?, 'm1', 1001, ?, 1)",
            zip(ids, fire_ats),
        )
        connection.executemany(
            "INSERT INTO audit_log (entity_type, entity_id, action, actor, created_at)"
            " VALUES ('reminder', ?, 'fired', 'system:scheduler', ?)",
            ((reminder_id, FIRED_AT) for reminder_id in ids),
        )
        connection.executemany(
            "INSERT INTO maintctl_outbox (msg_id, message, queued_at, delivered_at, stream_id) VALUES (?, '{}', ?, ?, ?)",
            (
                (f"reminder:{reminder_id}:{fire_at}", FIRED_AT, FIRED_AT, entry)
                for reminder_id, fire_at, entry in zip(ids, fire_ats, entries)
            ),
        )
        connection.execute("COMMIT")
    connection.execute("DELETE FROM maintctl_outbox WHERE msg_id LIKE 'reminder:r0000001:%'")  # pruned
    connection.close()
    client.xgroup_create("notify:telegram", "app", id="$")
    client.xgroup_create("notify:telegram", "lagging", id="0")
    while client.xreadgroup("lagging", "worker-1", {"notify:telegram": ">"}, count=chunk):
        pass


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        completed = subprocess.run(command, check=False, capture_output=True, env=ENV, text=True)
        times.append(time.perf_counter() - start)
        assert completed.returncode in (0, 1), completed
    return statistics.median(times)


IN_PROCESS = """
import sys, time
from pathlib import Path
from maintctl.config.flags import Flags
from maintctl.config.settings import load
from maintctl.store.db import open_database
from maintctl.tracing.trace import trace
import redis  # paid for by every command that talks to Redis: not the trace's own
settings = load(Flags(db=Path(sys.argv[1]), redis_url=sys.argv[2], now=sys.argv[3]))
connection = open_database(settings.db, read_only=True, busy_timeout=5.0)
times = []
for _ in range(11):
    start = time.perf_counter()
    assert trace(connection, settings, "reminder", sys.argv[4]).document["verdict"] == "read-not-acknowledged"
    times.append(time.perf_counter() - start)
print(sorted(times)[5])
"""


def in_process(database: Path, url: str, reminder_id: str) -> float:
    """Return the median time of the trace's own work (its database lookups and Redis commands), imports paid."""
    command = [sys.executable, "-c", IN_PROCESS, str(database), url, NOW, reminder_id]
    return float(subprocess.run(command, check=True, capture_output=True, env=ENV, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=11)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="maintctl-bench-trace-") as directory:
        work = Path(directory)
        redis = Redis(work)
        try:
            began = time.perf_counter()
            fill(work / "core.db", redis, arguments.size)
            print(f"built {arguments.size:,} firings in {time.perf_counter() - began:.0f} s", file=sys.stderr)
            trace = [sys.executable, "-m", "maintctl", "trace", "reminder"]
            where = ["--db", str(work / "core.db"), "--redis-url", redis.url, "--now", NOW, "--json"]
            middle = f"r{arguments.size // 2:07d}"
            rows = [
                ("maintctl --version (start-up alone)", [sys.executable, "-m", "maintctl", "--version"]),
                (f"trace reminder {middle} (by the outbox)", [*trace, middle, *where]),
                ("trace reminder r0000001 (outbox row pruned: by its dedup key)", [*trace, "r0000001", *where]),
            ]
            print(f"| command ({arguments.size:,} reminders, {arguments.size:,} stream entries) | median |")
            print("| --- | ---: |")
            print(
                f"| the lookups alone (database and Redis), in one process | "
                f"{in_process(work / 'core.db', redis.url, middle) * 1000:.1f} ms |"
            )
            for name, command in rows:
                print(f"| {name} | {median_seconds(command, arguments.runs) * 1000:.0f} ms |")
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
