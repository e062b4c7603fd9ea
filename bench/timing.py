"""maintctl's timing inside a cron slot: how late reminders fire in `run-all --for 60s`, what an idle window
costs, and a backlog inside a window against the floor.

    python bench/timing.py                  # about three and a half minutes
    python bench/timing.py --only lateness

lateness: two invocations a minute apart, as cron starts them (`run-all --for 60s --wait 30`), the second
waiting for the first's lock; reminders written in advance (due throughout, densest around the hand-over),
at short notice (0.3 s before they are due) and already due (written at their fire_at). Lateness is the
stream entry's time (its id, Redis's clock) minus fire_at.
idle: a 60 s window over 1,000,000 reminders and 1,000,000 memories with nothing due: the CPU the window
took beyond one pass of the same run (start-up and the first pass), as a share of one core.
backlog: 100,000 reminders due at the start of a window: time to the last stream entry, against the floor
script (bench/floors.py) firing them."""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import build
from run import ENV, NOW, Redis, floor

PEERS = "Oban's stager and solid_queue's dispatcher poll every 1 s, Sidekiq's scheduler about every 5 s, django-celery-beat every 5 s"


def stamp(moment: datetime) -> str:
    return build.stamp(moment.astimezone(UTC))


def maintctl(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "maintctl", *arguments]


def lateness(work: Path, redis: Redis, worst: int = 0) -> list[str]:
    database = work / "window.db"
    subprocess.run(maintctl("init-db", "--db", str(database), "--quiet"), check=True, env=ENV)
    app = sqlite3.connect(database, isolation_level=None)
    app.execute("PRAGMA journal_mode = WAL")  # as the app keeps its database
    app.execute("INSERT INTO users (telegram_user_id) VALUES (1001)")
    app.execute("INSERT INTO memories (id, owner_user_id, content, status) VALUES ('m', 1001, 'x', 'confirmed')")
    # One run first, as the day's: backup, optimize and prune done, so that the windows carry only reminders.
    subprocess.run(maintctl("run-all", "--db", str(database), "--quiet"), check=True, env=ENV, cwd=work)
    chance = random.Random(7)
    start = datetime.now(UTC) + timedelta(seconds=2)
    ahead = [start + timedelta(seconds=chance.uniform(1, 118)) for _ in range(300)]
    ahead += [start + timedelta(seconds=60 + chance.uniform(-3, 3)) for _ in range(100)]  # around the hand-over
    app.executemany(
        "INSERT INTO reminders (id, memory_id, owner_user_id, fire_at, fired) VALUES (?, 'm', 1001, ?, 0)",
        ((f"ahead{index}", stamp(moment)) for index, moment in enumerate(ahead)),
    )
    redis.flush()
    pause = (start - datetime.now(UTC)).total_seconds()
    time.sleep(max(0.0, pause))
    command = maintctl(
        "run-all", "--db", str(database), "--redis-url", redis.url, "--quiet", "--for", "60s", "--wait", "30"
    )
    first = subprocess.Popen(command, env=ENV, cwd=work)
    writer = threading.Thread(target=_app_writes, args=(database, start, chance), daemon=True)
    writer.start()
    time.sleep(max(0.0, (start + timedelta(seconds=60) - datetime.now(UTC)).total_seconds()))
    second = subprocess.Popen(command, env=ENV, cwd=work)  # cron's next minute
    writer.join()
    if first.wait() != 0 or second.wait() != 0:
        raise RuntimeError("a window failed")
    late = _lateness(redis)
    for name, ms, fire_at in sorted(_detail(redis), key=lambda row: -row[1])[:worst]:
        print(f"{name}: {ms:.0f} ms late, due {(datetime.fromisoformat(fire_at) - start).total_seconds():.3f} s in")
    expected = app.execute("SELECT count(*) FROM reminders").fetchone()[0]
    if len(late) != expected:
        raise RuntimeError(f"{len(late)} stream entries for {expected} reminders")
    ordered = sorted(late)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return [
        "lateness in `run-all --for 60s`, two windows and their hand-over",
        f"{len(late)} reminders",
        f"median {statistics.median(late):.0f} ms, p99 {p99:.0f} ms, worst {max(late):.0f} ms, earliest {min(late):.0f} ms",
        "median ≤ 30 ms, p99 ≤ 150 ms, worst ≤ 300 ms; peers: " + PEERS,
    ]


def _app_writes(database: Path, start: datetime, chance: random.Random) -> None:
    """The app, during the two windows: reminders 0.3 s before they are due, and already due as written."""
    app = sqlite3.connect(database, isolation_level=None, timeout=30)
    index = 0
    while datetime.now(UTC) < start + timedelta(seconds=117):
        time.sleep(chance.uniform(0.2, 0.8))
        now = datetime.now(UTC)
        soon = index % 2 == 0
        fire_at = now + timedelta(seconds=0.3) if soon else now
        app.execute(
            "INSERT INTO reminders (id, memory_id, owner_user_id, fire_at, fired) VALUES (?, 'm', 1001, ?, 0)",
            (f"{'soon' if soon else 'due'}{index}", stamp(fire_at)),
        )
        index += 1


def _lateness(redis: Redis) -> list[float]:
    import redis as redis_py

    late = []
    for entry_id, fields in redis_py.Redis.from_url(redis.url).xrange("notify:telegram"):
        fire_at = json.loads(fields[b"data"])["content"]["fire_at"]
        added_ms = int(entry_id.split(b"-")[0])
        late.append(added_ms - datetime.fromisoformat(fire_at).timestamp() * 1000)
    return late


def _detail(redis: Redis) -> list:
    import redis as redis_py

    rows = []
    for entry_id, fields in redis_py.Redis.from_url(redis.url).xrange("notify:telegram"):
        content = json.loads(fields[b"data"])["content"]
        added_ms = int(entry_id.split(b"-")[0])
        rows.append(
            (
                content["reminder_id"],
                added_ms - datetime.fromisoformat(content["fire_at"]).timestamp() * 1000,
                content["fire_at"],
            )
        )
    return rows


def cpu_seconds(command: list[str], cwd: Path) -> tuple[float, float]:
    """Run a whole process; return its CPU time (user and system) and its wall time."""
    began = time.perf_counter()
    process = subprocess.Popen(command, env=ENV, cwd=cwd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed")
    return usage.ru_utime + usage.ru_stime, time.perf_counter() - began


def idle(work: Path, size: int) -> list[str]:
    database = work / "idle.db"
    build.idle(database, size)
    earlier = maintctl("run-all", "--db", str(database), "--now", "2026-11-22T09:29:00.000Z", "--quiet")
    subprocess.run(earlier, check=True, env=ENV, cwd=work)  # today's backup, prune and optimize done
    one_pass, _ = cpu_seconds(maintctl("run-all", "--db", str(database), "--now", NOW, "--quiet"), work)
    window, wall = cpu_seconds(
        maintctl("run-all", "--db", str(database), "--now", NOW, "--quiet", "--for", "60s"), work
    )
    share = (window - one_pass) / 60
    return [
        "an idle 60 s window (nothing due)",
        f"{size:,} reminders, {size:,} memories",
        f"{share:.2%} of a core beyond start-up ({window:.2f} s CPU in {wall:.0f} s; one pass {one_pass:.2f} s)",
        "≤ 1% of a core",
    ]


def backlog(work: Path, size: int, redis: Redis) -> list[str]:
    template = work / f"backlog-{size}.db"
    build.reminders(template, size, size)
    times = {}
    for name in ("maintctl", "floor"):
        database = work / "backlog-run.db"
        shutil.copyfile(template, database)
        os.sync()
        redis.flush()
        if name == "maintctl":
            command = maintctl(
                "run-all", "--db", str(database), "--redis-url", redis.url, "--now", NOW, "--quiet", "--for", "30s"
            )
        else:
            command = floor("fire", str(database), redis.url)
        began_ms = time.time() * 1000
        process = subprocess.Popen(command, env=ENV, cwd=work, stdout=subprocess.DEVNULL)
        if name == "maintctl":
            _wait_for_entries(redis, size)
            process.terminate()
        process.wait()
        import redis as redis_py

        last = redis_py.Redis.from_url(redis.url).xrevrange("notify:telegram", count=1)[0][0]
        times[name] = (int(last.split(b"-")[0]) - began_ms) / 1000
    return [
        "a backlog due as a window begins",
        f"{size:,} reminders",
        f"{times['maintctl']:.2f} s to the last entry against {times['floor']:.2f} s (floor): {times['maintctl'] / times['floor']:.2f}×",
        "≤ 1.5× floor",
    ]


def _wait_for_entries(redis: Redis, count: int) -> None:
    import redis as redis_py

    client = redis_py.Redis.from_url(redis.url)
    while client.xlen("notify:telegram") < count:
        time.sleep(0.05)


SCENARIOS = ("lateness", "idle", "backlog")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated: " + ", ".join(SCENARIOS))
    parser.add_argument("--idle", type=int, default=1_000_000, help="reminders and memories of the idle window")
    parser.add_argument("--worst", type=int, default=0, help="name the N latest reminders, and when they were due")
    parser.add_argument("--backlog", type=int, default=100_000, help="reminders due as the backlog window begins")
    options = parser.parse_args()
    chosen = options.only.split(",")
    rows = []
    with tempfile.TemporaryDirectory(prefix="maintctl-timing-") as scratch:
        work = Path(scratch)
        redis = Redis(work)
        try:
            if "lateness" in chosen:
                rows.append(lateness(work, redis, options.worst))
                print(" | ".join(rows[-1]), flush=True)
            if "idle" in chosen:
                rows.append(idle(work, options.idle))
                print(" | ".join(rows[-1]), flush=True)
            if "backlog" in chosen:
                rows.append(backlog(work, options.backlog, redis))
                print(" | ".join(rows[-1]), flush=True)
        finally:
            redis.stop()
    print(f"\n{os.cpu_count()} cores; one run each\n")
    print("| measurement | items | maintctl | target |")
    print("| --- | ---: | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
