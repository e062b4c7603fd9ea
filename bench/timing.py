"""maintctl's timing inside a cron slot: how late reminders fire in `run-all --for 60s`, what an idle window
costs, and a backlog inside a window against the floor.

    python bench/timing.py                  # about five minutes
    python bench/timing.py --only lateness

lateness: the recommended line (`run-all --for 120s --wait 120`) started as cron starts it, at 0, 60 and
120 s: the first window hands over to the second at 120 s, the second is killed (SIGKILL) at 130 s and the
third, waiting for the lock, takes over; reminders written in advance (due throughout, densest around the
hand-over and in the 3 s after the kill), at short notice (0.3 s before they are due) and already due
(written at their fire_at). Lateness is the stream entry's time (its id, Redis's clock) minus fire_at. The
standby's cost: its resident memory and CPU while it waits for the lock.
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
import signal
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


RECOMMENDED = ("--quiet", "--for", "120s", "--wait", "120")  # crontab.example's line
KILL_AT = 130.0  # seconds after cron's first start: the holder (the second start) is killed
END_AT = 140.0


def lateness(work: Path, redis: Redis, worst: int = 0) -> list[list[str]]:
    """The recommended line as cron starts it (at 0, 60 and 120 s): the first window's hand-over to the
    second at 120 s, the second killed (SIGKILL) at 130 s and taken over by the third, waiting; the third
    stopped at 140 s. Return the table's rows: lateness over it all, the takeover, the standby's cost."""
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
    ahead = [start + timedelta(seconds=chance.uniform(1, END_AT - 2)) for _ in range(300)]
    ahead += [start + timedelta(seconds=120 + chance.uniform(-3, 3)) for _ in range(100)]  # around the hand-over
    after_kill = [start + timedelta(seconds=KILL_AT + chance.uniform(0.05, 3)) for _ in range(50)]
    app.executemany(
        "INSERT INTO reminders (id, memory_id, owner_user_id, fire_at, fired) VALUES (?, 'm', 1001, ?, 0)",
        [(f"ahead{index}", stamp(moment)) for index, moment in enumerate(ahead)]
        + [(f"takeover{index}", stamp(moment)) for index, moment in enumerate(after_kill)],
    )
    redis.flush()
    time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()))
    command = maintctl("run-all", "--db", str(database), "--redis-url", redis.url, *RECOMMENDED)
    writer = threading.Thread(target=_app_writes, args=(database, start, chance), daemon=True)
    writer.start()
    started = []
    for minute in range(3):  # cron's starts
        time.sleep(max(0.0, (start + timedelta(seconds=60 * minute) - datetime.now(UTC)).total_seconds()))
        started.append(subprocess.Popen(command, env=ENV, cwd=work))
        if minute == 1:
            standby = _standby_cost(started[1].pid, start, 62, 118)
    time.sleep(max(0.0, (start + timedelta(seconds=KILL_AT) - datetime.now(UTC)).total_seconds()))
    holder = _holder(database, started)
    holder.kill()
    killed = datetime.now(UTC)
    writer.join()
    time.sleep(max(0.0, (start + timedelta(seconds=END_AT) - datetime.now(UTC)).total_seconds()))
    for process in started:
        if process.poll() is None:
            process.terminate()
    codes = [process.wait() for process in started]
    if codes[0] != 0 or codes[1] != -signal.SIGKILL or codes[2] != 143 or holder is not started[1]:
        raise RuntimeError(f"the windows ended otherwise than planned: {codes}")
    detail = _detail(redis)
    for name, ms, fire_at in sorted(detail, key=lambda row: -row[1])[:worst]:
        print(f"{name}: {ms:.0f} ms late, due {(datetime.fromisoformat(fire_at) - start).total_seconds():.3f} s in")
    expected = app.execute("SELECT count(*) FROM reminders").fetchone()[0]
    late = [ms for name, ms, fire_at in detail]
    if len(late) != len({name for name, _, _ in detail}) or len(late) != expected:
        raise RuntimeError(f"{len(late)} stream entries for {expected} reminders")
    taken_over = sorted(ms for name, ms, _ in detail if name.startswith("takeover"))
    first_after = min((row for row in detail if datetime.fromisoformat(row[2]) > killed), key=lambda row: row[2])
    first_due = (datetime.fromisoformat(first_after[2]) - killed).total_seconds()
    return [
        [
            "lateness with the recommended line: a hand-over, a kill (SIGKILL) and its takeover",
            f"{len(late)} reminders",
            _spread(late),
            "median ≤ 30 ms, p99 ≤ 150 ms, worst ≤ 300 ms; peers: " + PEERS,
        ],
        [
            "a takeover: the reminders due in the 3 s after the holder was killed",
            f"{len(taken_over)} reminders",
            f"{_spread(taken_over)}; the first due after the kill ({first_due:.2f} s after it) {first_after[1]:.0f} ms late",
            "each within 0.5 s of its fire_at; before, up to the next minute's start (5.3 s, 40.7 s in a soak)",
        ],
        [
            "the standby, waiting for the lock (56 s)",
            "",
            f"{standby[0]:.1f} MB resident, {standby[1]:.3%} of a core",
            "",
        ],
    ]


def _spread(late: list[float]) -> str:
    ordered = sorted(late)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (
        f"median {statistics.median(ordered):.0f} ms, p99 {p99:.0f} ms, worst {max(ordered):.0f} ms,"
        f" earliest {min(ordered):.0f} ms"
    )


def _holder(database: Path, started: list[subprocess.Popen]) -> subprocess.Popen:
    """The process that holds the database's lock (as /proc/locks tells)."""
    from maintctl.store import lock

    pid = lock.holder(lock.default_path(database))
    return next(process for process in started if process.pid == pid)


def _standby_cost(pid: int, start: datetime, begin: float, end: float) -> tuple[float, float]:
    """Given a process waiting for the lock, return its resident memory (MB) and the share of a core it took
    between `begin` and `end` seconds after the start."""
    time.sleep(max(0.0, (start + timedelta(seconds=begin) - datetime.now(UTC)).total_seconds()))
    before, began = _cpu_seconds(pid), time.monotonic()
    time.sleep(max(0.0, (start + timedelta(seconds=end) - datetime.now(UTC)).total_seconds()))
    share = (_cpu_seconds(pid) - before) / (time.monotonic() - began)
    with open(f"/proc/{pid}/status") as status:
        resident = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    return resident / 1024, share


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _app_writes(database: Path, start: datetime, chance: random.Random) -> None:
    """The app, during the two windows: reminders 0.3 s before they are due, and already due as written."""
    app = sqlite3.connect(database, isolation_level=None, timeout=30)
    index = 0
    while datetime.now(UTC) < start + timedelta(seconds=END_AT - 3):
        time.sleep(chance.uniform(0.2, 0.8))
        now = datetime.now(UTC)
        soon = index % 2 == 0
        fire_at = now + timedelta(seconds=0.3) if soon else now
        app.execute(
            "INSERT INTO reminders (id, memory_id, owner_user_id, fire_at, fired) VALUES (?, 'm', 1001, ?, 0)",
            (f"{'soon' if soon else 'due'}{index}", stamp(fire_at)),
        )
        index += 1


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
                for row in lateness(work, redis, options.worst):
                    rows.append(row)
                    print(" | ".join(row), flush=True)
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
