"""maintctl over many databases in one invocation (`run-all --db 'tenants/*.db'`).

    python bench/fleet.py                   # about four minutes

idle: 1,000 tenant databases of 1,000 reminders each, nothing due, a minute after the last run (the day's
backups, prune and optimize done): the time per database of one `run-all` over all of them.
due: 100 tenant databases of 1,000 due reminders each, against one database of 100,000 due: the time per
reminder of each, as whole processes."""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import build
from run import EARLIER, ENV, NOW, Redis


def maintctl(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "maintctl", *arguments, "--quiet"]


def tenants(template: Path, directory: Path, count: int) -> str:
    """Copy the template `count` times into the directory, each to get its own id; return their pattern."""
    directory.mkdir()
    with sqlite3.connect(template) as connection:
        connection.execute("DELETE FROM maintctl_meta")  # each copy is given an id of its own by its first backup
    for number in range(count):
        shutil.copyfile(template, directory / f"tenant{number:04d}.db")
    return str(directory / "*.db")


def timed(command: list[str], cwd: Path) -> float:
    began = time.perf_counter()
    subprocess.run(command, env=ENV, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def idle(work: Path, count: int, size: int, redis: Redis) -> list[str]:
    template = work / "idle-tenant.db"
    build.reminders(template, 0, size)
    pattern = tenants(template, work / "idle", count)
    timed(maintctl("run-all", "--db", pattern, "--now", EARLIER, "--redis-url", redis.url), work)
    elapsed = timed(maintctl("run-all", "--db", pattern, "--now", NOW, "--redis-url", redis.url), work)
    return [
        "run-all over idle tenant databases",
        f"{count:,} × {size:,} reminders",
        f"{elapsed:.2f} s: {elapsed / count * 1000:.1f} ms per database",
        "≤ 10 ms per database",
    ]


def due(work: Path, count: int, size: int, redis: Redis) -> list[str]:
    template = work / "due-tenant.db"
    build.reminders(template, size, 0)
    pattern = tenants(template, work / "due", count)
    single = work / "single.db"
    build.reminders(single, size * count, 0)
    os.sync()
    redis.flush()
    many = timed(maintctl("fire-reminders", "--db", pattern, "--now", NOW, "--redis-url", redis.url), work)
    redis.flush()
    one = timed(maintctl("fire-reminders", "--db", str(single), "--now", NOW, "--redis-url", redis.url), work)
    items = size * count
    return [
        "fire-reminders over tenant databases, against one database",
        f"{count:,} × {size:,} due",
        f"{many / items * 1e6:.1f} µs per reminder against {one / items * 1e6:.1f} µs ({many / one:.2f}×)",
        "≤ 1.3× one database's",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="idle,due", help="comma-separated: idle, due")
    options = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="maintctl-fleet-") as scratch:
        work = Path(scratch)
        redis = Redis(work)
        try:
            if "idle" in options.only:
                rows.append(idle(work, 1000, 1000, redis))
                print(" | ".join(rows[-1]), flush=True)
            if "due" in options.only:
                rows.append(due(work, 100, 1000, redis))
                print(" | ".join(rows[-1]), flush=True)
        finally:
            redis.stop()
    print(f"\n{os.cpu_count()} cores; one run each; --parallel defaults to the CPU count\n")
    print("| measurement | databases | maintctl | target |")
    print("| --- | ---: | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
