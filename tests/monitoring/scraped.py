"""What Prometheus sees of maintctl's metrics file: maintctl run as a process at given minutes after the Unix epoch
(promtool's tests begin there), the file it left read back after each run, and node_exporter's textfile collector
imitated: every scrape exports the file as it is then (its series, the labels the scrape adds, the file's own `job`
renamed `exported_job`, and node_textfile_mtime_seconds), until the next run replaces it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

SCRAPE_LABELS = {"instance": "core-host:9100", "job": "node"}
# maintctl_stream_*: named by the contract ("Where is my reminder?"), written once status watches the readers.
STREAM_METRICS = {"maintctl_stream_lag", "maintctl_stream_oldest_unacknowledged_seconds"}
_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Series = tuple[str, tuple[tuple[str, str], ...]]  # the metric's name and its labels


def at_minute(minute: float) -> str:
    """Given minutes after the Unix epoch, return that instant as --now takes it."""
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str) -> dict[Series, float]:
    """Given a textfile's text, return its samples."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.fullmatch(line)
        assert match, f"not a sample of the text format: {line!r}"
        labels = tuple(sorted(_LABEL.findall(match.group(2) or "")))
        samples[match.group(1), labels] = float(match.group(3))
    return samples


class Scrapes:
    """maintctl's runs in one situation, and the series a scrape every `step` minutes would have made of them."""

    def __init__(self, maintctl, directory: Path, env: dict | None = None):
        self.maintctl = maintctl
        self.directory = directory
        self.metrics_file = directory / "maintctl.prom"
        self.env = {"MAINTCTL_METRICS_FILE": str(self.metrics_file), **(env or {})}
        self.files: list[tuple[float, dict[Series, float] | None]] = []  # (minute, the file after that run)

    def run(self, minute: float, command: str, *arguments: str, expect: int = 0):
        """Run `maintctl COMMAND --db core.db --now MINUTE ARGUMENTS` and keep the metrics file it left."""
        result = self.maintctl(
            command, "--db", "core.db", "--now", at_minute(minute), *arguments, env=self.env, cwd=self.directory
        )
        assert result.code == expect, result
        written = self.metrics_file.read_text() if self.metrics_file.exists() else None
        self.files.append((minute, parse(written) if written is not None else None))
        return result

    def names(self) -> set[str]:
        """Return the metric names maintctl wrote in any of the runs."""
        return {name for _, samples in self.files if samples for name, _ in samples}

    def input_series(self, until: float, step: float = 1) -> list[dict]:
        """Return promtool's input_series: each scrape from minute 0 to `until`, every `step` minutes."""
        scrapes = []
        for index in range(int(until // step) + 1):
            minute = index * step
            written = [(at, samples) for at, samples in self.files if at <= minute]
            scraped = {("node_textfile_scrape_error", ()): 0.0}
            if written and written[-1][1] is not None:
                at, samples = written[-1]
                scraped.update(samples)
                scraped["node_textfile_mtime_seconds", (("file", self.metrics_file.name),)] = at * 60
            scrapes.append(scraped)
        every = {series for scraped in scrapes for series in scraped}
        return [
            {"series": _selector(*series), "values": _values([scraped.get(series) for scraped in scrapes])}
            for series in sorted(every)
        ]


def _selector(name: str, labels: tuple[tuple[str, str], ...]) -> str:
    """Given a series of the file, return it as the scrape labels it, in promtool's series notation."""
    renamed = {("exported_" + key if key in SCRAPE_LABELS else key): value for key, value in labels}
    inner = ",".join(f'{key}="{value}"' for key, value in {**renamed, **SCRAPE_LABELS}.items())
    return f"{name}{{{inner}}}"


def _values(values: list[float | None]) -> str:
    """Given a value per scrape (None: no sample), return them in promtool's expanding notation."""
    runs: list[list] = []
    for value in values:
        if runs and runs[-1][0] == value:
            runs[-1][1] += 1
        else:
            runs.append([value, 1])
    return " ".join(f"_x{count}" if value is None else f"{value!r}+0x{count - 1}" for value, count in runs)


def everything_written(maintctl, core, directory: Path, redis_url: str) -> set[str]:
    """Return the metric names of a real run that has something of each kind to tell: every action run (a backup
    taken among them), a reminder's notification delivered, a job of the app enqueued and its result read."""
    import json

    import redis

    scrapes = Scrapes(maintctl, directory, env={"MAINTCTL_REDIS_URL": redis_url})
    client = redis.Redis.from_url(redis_url)
    for stream, group in (("notify:telegram", "telegram-sender"), ("tasks", "workers")):  # the app's readers
        client.xgroup_create(stream, group, id="$", mkstream=True)
    core.reminder("r1", fire_at=at_minute(0))
    core.job("nightly", every="1m", added_at=at_minute(0))
    scrapes.run(0, "run-all", "--quiet")
    ((_, fields),) = client.xrange("tasks")
    result = {"job_run_id": json.loads(fields[b"data"])["job_run_id"], "status": "success", "result": {}}
    client.xadd("tasks:results", {"data": json.dumps(result)})
    scrapes.run(1, "run-all", "--quiet")
    return scrapes.names()
