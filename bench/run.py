"""maintctl's benchmark: whole processes against the floor and the hand-written way.

    python bench/run.py                       # the targets' sizes (see the README for how long)
    python bench/run.py --sizes 10000,100000,1000000 --runs 1 --only fire-reminders,expire-pending,expire-tags,requeue-events

Builds each database once per size (bench/build.py), copies it for every run, starts its
own redis-server on a free loopback port, and prints a Markdown table of medians, peak
memory and ratios."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import build

BENCH = Path(__file__).resolve().parent
NOW = "2026-11-22T09:30:00.000Z"
EARLIER = "2026-11-22T09:29:00.000Z"
# As an installation runs: no MAINTCTL_ settings, and compiled modules cached (pip writes them at install;
# an environment that forbids writing them would have every run compile maintctl from source).
ENV = {
    key: value
    for key, value in os.environ.items()
    if not key.startswith("MAINTCTL_") and key not in ("REDIS_URL", "PYTHONDONTWRITEBYTECODE")
}


class Redis:
    def __init__(self, directory: Path):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
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
                str(directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(100):
            if (
                subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False).stdout
                == b"PONG\n"
            ):
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def flush(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "flushall"], check=True, capture_output=True)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def measure(command: list[str], cwd: Path) -> tuple[float, float]:
    """Run a whole process; return its wall time (s) and peak resident memory (MiB).

    The peak is the process's own VmHWM, read from /proc while it runs: the
    rusage of a child also counts the parent's memory that it was forked with."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL)
    status, peak_kib = Path(f"/proc/{process.pid}/status"), 0
    while process.poll() is None:
        try:
            line = next(line for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
            peak_kib = max(peak_kib, int(line.split()[1]))
        except (OSError, StopIteration):
            pass
        time.sleep(0.002)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}")
    return elapsed, peak_kib / 1024


def maintctl(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "maintctl", *arguments, "--now", NOW, "--quiet"]


def floor(*arguments: str) -> list[str]:
    return [sys.executable, str(BENCH / "floors.py"), *arguments]


def runs(template: Path, work: Path, command, runs: int, redis: Redis, prepare=None) -> tuple[float, float]:
    """Copy the template for each run, prepare it, time the command; return the median time and the peak memory."""
    times, peaks = [], []
    for _ in range(runs):
        database = work / "run.db"
        shutil.copyfile(template, database)
        media = work / "media"
        shutil.rmtree(media, ignore_errors=True)
        media.mkdir()
        if prepare:
            prepare(media)
        # On disk, as a day-old upload is (unlinking a file never written out costs next to nothing,
        # and the kernel writes it out at an unknown moment); and the first commit's fsync would
        # otherwise pay for writing out the whole fresh copy of the database.
        os.sync()
        redis.flush()
        elapsed, peak = measure(command(database, media), work)
        times.append(elapsed)
        peaks.append(peak)
    return statistics.median(times), max(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="100000", help="due items per scenario, comma-separated (default 100000, the targets' size)"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (default 3)")
    parser.add_argument(
        "--idle", type=int, default=1_000_000, help="reminders and memories for the idle run (default 1000000)"
    )
    parser.add_argument(
        "--retention", type=int, default=1_000_000, help="old audit rows for the retention run (default 1000000)"
    )
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help="comma-separated scenarios (default all: " + ", ".join(SCENARIOS) + ")",
    )
    parser.add_argument(
        "--one-at-a-time",
        type=int,
        default=5_000,
        help="due reminders for the hand-written comparison (default 5000: it commits each one)",
    )
    options = parser.parse_args()
    sizes = [int(size) for size in options.sizes.split(",")]
    chosen = options.only.split(",")
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario: {', '.join(sorted(unknown))}")

    with tempfile.TemporaryDirectory(prefix="maintctl-bench-") as scratch:
        work = Path(scratch)
        redis = Redis(work)
        rows = []
        try:
            for size in sizes:
                rows += scenarios(work, size, options.runs, redis, chosen)
            if "one-at-a-time" in chosen:
                rows.append(one_at_a_time(work, options.one_at_a_time, redis))
            if "idle" in chosen:
                rows.append(idle(work, options.idle, options.runs, redis))
            if "retention" in chosen:
                rows.append(retention(work, options.retention, options.runs, redis))
        finally:
            redis.stop()
    print(f"\n{os.cpu_count()} cores; medians of {options.runs} runs; whole processes, start-up included\n")
    print("| scenario | items | maintctl | comparison | ratio | target | maintctl peak memory |")
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    growth(rows, sizes)


def _row(name, size, ours, theirs, against, target, peak):
    ratio = ours / theirs
    return [
        name,
        f"{size:,}",
        f"{ours:.2f} s",
        f"{theirs:.2f} s ({against})",
        f"{ratio:.2f}×",
        target,
        f"{peak:.0f} MiB",
    ]


def fire_reminders(work: Path, size: int, count: int, redis: Redis) -> list[str]:
    template = work / f"reminders-{size}.db"
    build.reminders(template, size, size)
    ours = runs(
        template,
        work,
        lambda db, _: maintctl("fire-reminders", "--db", str(db), "--redis-url", redis.url),
        count,
        redis,
    )
    theirs = runs(template, work, lambda db, _: floor("fire", str(db), redis.url), count, redis)
    return _row("fire-reminders", size, ours[0], theirs[0], "floor", "≤ 1.5× floor, ≤ 100 MiB", ours[1])


def expire_pending(work: Path, size: int, count: int, redis: Redis) -> list[str]:
    template = work / f"pending-{size}.db"
    build.pending(template, size, size)
    files = lambda media: build.media_files(media, size)
    ours = runs(
        template,
        work,
        lambda db, media: maintctl("expire-pending", "--db", str(db), "--media-dir", str(media)),
        count,
        redis,
        files,
    )
    theirs = runs(template, work, lambda db, media: floor("expire-pending", str(db), str(media)), count, redis, files)
    return _row("expire-pending (with files)", size, ours[0], theirs[0], "floor", "≤ 2× floor", ours[1])


def expire_tags(work: Path, size: int, count: int, redis: Redis) -> list[str]:
    template = work / f"tags-{size}.db"
    build.tags(template, size, size)
    ours = runs(template, work, lambda db, _: maintctl("expire-tags", "--db", str(db)), count, redis)
    theirs = runs(template, work, lambda db, _: floor("expire-tags", str(db)), count, redis)
    return _row("expire-tags", size, ours[0], theirs[0], "floor", "≤ 2× floor", ours[1])


def requeue_events(work: Path, size: int, count: int, redis: Redis) -> list[str]:
    template = work / f"events-{size}.db"
    build.events(template, size, size)
    ours = runs(
        template,
        work,
        lambda db, _: maintctl("requeue-events", "--db", str(db), "--redis-url", redis.url),
        count,
        redis,
    )
    theirs = runs(template, work, lambda db, _: floor("requeue-events", str(db), redis.url), count, redis)
    return _row("requeue-events", size, ours[0], theirs[0], "floor", "≤ 2× floor", ours[1])


PER_SIZE = {
    "fire-reminders": fire_reminders,
    "expire-pending": expire_pending,
    "expire-tags": expire_tags,
    "requeue-events": requeue_events,
}
SCENARIOS = (*PER_SIZE, "one-at-a-time", "idle", "retention")


def scenarios(work: Path, size: int, count: int, redis: Redis, chosen: list[str]) -> list[list[str]]:
    made = []
    for name, scenario in PER_SIZE.items():
        if name in chosen:
            made.append(scenario(work, size, count, redis))
            print(" | ".join(made[-1]), flush=True)
    return made


def one_at_a_time(work: Path, size: int, redis: Redis) -> list[str]:
    template = work / f"reminders-{size}.db"
    if not template.exists():
        build.reminders(template, size, size)
    ours = runs(
        template, work, lambda db, _: maintctl("fire-reminders", "--db", str(db), "--redis-url", redis.url), 1, redis
    )
    theirs = runs(template, work, lambda db, _: floor("fire_one_at_a_time", str(db), redis.url), 1, redis)
    row = _row(
        "fire-reminders vs one at a time", size, ours[0], theirs[0], "one at a time", "≤ 0.2× (5× faster)", ours[1]
    )
    print(" | ".join(row), flush=True)
    return row


def idle(work: Path, size: int, count: int, redis: Redis) -> list[str]:
    template = work / f"idle-{size}.db"
    build.idle(template, size)
    # As cron finds it a minute after the last run: today's backup and prune done, nothing due.
    earlier = [sys.executable, "-m", "maintctl", "run-all", "--db", str(template), "--now", EARLIER, "--quiet"]
    subprocess.run(earlier, cwd=work, env=ENV, check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(work / "backups", ignore_errors=True)
    ours = runs(
        template, work, lambda db, _: maintctl("run-all", "--db", str(db), "--redis-url", redis.url), count, redis
    )
    theirs = runs(template, work, lambda db, _: floor("idle", str(db)), count, redis)
    row = _row("run-all, nothing due", size, ours[0], theirs[0], "bare script", "≤ 4× bare script", ours[1])
    print(" | ".join(row), flush=True)
    return row


RULES = (BENCH.parent / "examples" / "maintctl.toml").read_text()  # the rules the README shows

WRITER = """
import sqlite3, sys, time, pathlib
connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
stop, worst, writes = pathlib.Path(sys.argv[2]), 0.0, 0
while not stop.exists():
    began = time.monotonic()
    connection.execute("BEGIN IMMEDIATE")
    worst = max(worst, time.monotonic() - began)
    connection.execute("INSERT INTO users (telegram_user_id) VALUES (?)", (10_000_000 + writes,))
    connection.execute("COMMIT")
    writes += 1
    time.sleep(0.01)
print(worst, writes)
"""


def retention(work: Path, size: int, count: int, redis: Redis) -> list[str]:
    """Deleting `size` old audit rows (and keeping a tenth, and 100,000 young ones) against one DELETE; and,
    in one more run, how long the app's writes wait meanwhile."""
    template = work / f"audit-{size}.db"
    build.audit(template, size, 100_000)
    (work / "maintctl.toml").write_text(RULES)
    command = lambda db, _: maintctl("retention", "--db", str(db))  # noqa: E731
    ours = runs(template, work, command, count, redis)
    theirs = runs(template, work, lambda db, _: floor("retention", str(db)), count, redis)
    database, stop = work / "run.db", work / "stop-writing"
    shutil.copyfile(template, database)
    stop.unlink(missing_ok=True)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(database), str(stop)], stdout=subprocess.PIPE, text=True
    )
    time.sleep(0.5)
    subprocess.run(command(database, None), cwd=work, env=ENV, check=True)
    stop.touch()
    worst, writes = writer.communicate()[0].split()
    row = _row("retention (old audit rows)", size, ours[0], theirs[0], "floor", "≤ 1.5× floor", ours[1])
    row[0] += f"; the app's {writes} writes meanwhile waited at most {float(worst):.2f} s (target ≤ 0.25 s)"
    print(" | ".join(row), flush=True)
    return row


def growth(rows: list[list[str]], sizes: list[int]) -> None:
    if len(sizes) < 2:
        return
    print("\nGrowth (time per item, µs, by size):\n")
    names = sorted(
        {
            row[0]
            for row in rows
            if row[0] in ("fire-reminders", "expire-pending (with files)", "expire-tags", "requeue-events")
        }
    )
    print("| scenario | " + " | ".join(f"{size:,}" for size in sizes) + " |")
    print("| --- |" + " ---: |" * len(sizes))
    for name in names:
        cells = []
        for size in sizes:
            row = next(row for row in rows if row[0] == name and row[1] == f"{size:,}")
            cells.append(f"{float(row[2].split()[0]) / size * 1e6:.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
