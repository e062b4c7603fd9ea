"""What status's reader checks add: the consumer groups of the notifications' and the jobs' streams read as
`status` reads them (maintctl.store.streams.watched: a client, two pipelined round trips), timed in-process.

    python bench/readers.py             # about ten seconds
    python bench/readers.py --entries 1000000

The notifications' stream holds ENTRIES entries and three groups: `sender` caught up, `late` with 10,000
entries handed and not acknowledged and the rest not yet handed, and `deleted`, whose lag Redis cannot tell
(an entry deleted after its last-delivered id), so that maintctl counts it, up to its limit of 1,000; the
jobs' stream holds 1,000 entries and one group. Prints a Markdown table of the median and the 95th percentile
over the runs."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import redis as redis_py
from run import Redis

from maintctl import timestamps
from maintctl.config.flags import Flags
from maintctl.config.settings import load
from maintctl.store import outbox, streams


def fill(client, stream: str, count: int) -> list[bytes]:
    """Add `count` entries to the stream as maintctl's delivery does (fields data and msg_id); return their ids."""
    ids: list[bytes] = []
    for start in range(0, count, 10_000):
        pipe = client.pipeline(transaction=False)
        for index in range(start, min(count, start + 10_000)):
            pipe.xadd(stream, {"data": '{"user_id": 1001, "message_type": "reminder"}', "msg_id": f"m{index}"})
        ids += pipe.execute()
    return ids


def prepare(client, entries: int) -> None:
    client.flushall()
    ids = fill(client, "notify:telegram", entries)
    for group in ("sender", "late", "deleted"):
        client.xgroup_create("notify:telegram", group, id="0")
    while client.xreadgroup("sender", "bot", {"notify:telegram": ">"}, count=10_000):
        pass
    client.xgroup_setid("notify:telegram", "sender", id="$")
    client.xreadgroup("late", "bot", {"notify:telegram": ">"}, count=10_000)  # handed, never acknowledged
    client.xdel("notify:telegram", ids[len(ids) // 2])  # the `deleted` group's lag: Redis says NULL
    fill(client, "tasks", 1_000)
    client.xgroup_create("tasks", "workers", id="0")


def timed(call, runs: int) -> tuple[float, float]:
    """Return the median and 95th percentile of the call's time, in milliseconds."""
    took = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        took.append((time.perf_counter() - began) * 1000)
    took.sort()
    return statistics.median(took), took[min(len(took) - 1, int(0.95 * len(took)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        server = Redis(Path(directory))
        try:
            client = redis_py.Redis.from_url(server.url)
            prepare(client, arguments.entries)
            database = Path(directory) / "core.db"
            database.touch()
            settings = replace(load(Flags(db=database, redis_url=server.url)), now=timestamps.utc_now())
            found = streams.watched(settings)
            groups = {group.group: group for stream in found for group in stream.groups}
            assert groups["deleted"].lag == streams.LAG_COUNT_LIMIT and not groups["deleted"].lag_exact
            assert groups["late"].pending == 10_000 and groups["sender"].lag == 0
            opened = outbox.redis_client(settings)
            names = streams.written(settings)
            rows = [
                ("status's reader checks, the `deleted` group counted", timed(lambda: streams.watched(settings), arguments.runs)),
                ("the two round trips alone (a client open)", timed(lambda: streams.read(opened, names, settings.now), arguments.runs)),
            ]  # fmt: skip
            client.xgroup_destroy("notify:telegram", "deleted")  # Redis tells every lag: nothing to count
            rows += [
                ("status's reader checks, every lag told by Redis", timed(lambda: streams.watched(settings), arguments.runs)),
                ("the two round trips alone (a client open)", timed(lambda: streams.read(opened, names, settings.now), arguments.runs)),
                ("a PING, for scale", timed(opened.ping, arguments.runs)),
            ]  # fmt: skip
            opened.close()
        finally:
            server.stop()
    print(f"{arguments.entries:,} entries in notify:telegram, 4 groups (then 3) on 2 streams, {arguments.runs} runs\n")
    print("| what | median | p95 |\n| --- | ---: | ---: |")
    for what, (median, p95) in rows:
        print(f"| {what} | {median:.2f} ms | {p95:.2f} ms |")


if __name__ == "__main__":
    main()
