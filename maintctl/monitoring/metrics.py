"""MAINTCTL_METRICS_FILE: after every run, the state of each action in the
Prometheus textfile collector's format, written to a temporary file and
renamed so that the collector never reads half of it."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import tempfile
from pathlib import Path

from maintctl import timestamps
from maintctl.actions import registry
from maintctl.config.settings import Settings
from maintctl.jobs import status as job_status
from maintctl.monitoring import backup_metrics
from maintctl.store import history, outbox, schedules

_HELP = {
    "maintctl_last_run_timestamp_seconds": "When the action's last run began (Unix time).",
    "maintctl_last_success_timestamp_seconds": "When the action's last successful run began (Unix time).",
    "maintctl_last_run_duration_seconds": "How long the action's last run took.",
    "maintctl_last_run_failed": "1 when the action's last run failed.",
    "maintctl_consecutive_failures": "How many of the action's latest runs failed in a row.",
    "maintctl_last_run_items": "Items the action's last run processed, by kind.",
    "maintctl_paused": "1 when the action is paused.",
    "maintctl_job_last_success_timestamp_seconds": "When the job's last successful run finished (Unix time).",
    "maintctl_job_last_duration_seconds": "How long the job's last finished run took, enqueue to result.",
    "maintctl_job_consecutive_failures": "How many of the job's latest finished runs failed in a row.",
    "maintctl_notifications_queued": "Notifications queued and not yet delivered.",
    "maintctl_notifications_oldest_queued_age_seconds": "Age of the oldest undelivered notification (0: none).",
    "maintctl_stream_lag": "Entries of the stream not yet handed to the consumer group.",
    "maintctl_stream_oldest_unacknowledged_seconds": (
        "Age of the stream's oldest entry the consumer group has not acknowledged, handed to it or not (0: none)."
    ),
    **backup_metrics.HELP,
}


_FIRST_LINE = b"# HELP maintctl_"  # how every metrics file maintctl writes begins


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


Samples = dict[str, list[tuple[dict[str, str], float]]]  # per metric, its labels and values


def render(connection: sqlite3.Connection, settings: Settings, report=None) -> str:
    """Return the metrics text for the database as it is now."""
    return text(collect(connection, settings, report=report))


def collect(connection: sqlite3.Connection, settings: Settings, database: str | None = None, report=None) -> Samples:
    """Return the metrics of the database as it is now (each labelled with
    `database` where it is given: one of many in one file), after the run
    whose report is given (backup_metrics.py: which destinations it lists);
    for one database, the streams' consumer groups too (stream_samples: a
    run of many adds them once)."""
    samples: Samples = {name: [] for name in _HELP}
    ran = {result.action for result in report.actions if result.status != "skipped"} if report else set()
    samples.update(backup_metrics.collect(connection, settings, bool(ran & backup_metrics.ACTIONS), database))
    kept = schedules.load_all(connection, registry.defaults(registry.ORDER))
    for name in registry.ORDER:
        labels = {"action": name}
        samples["maintctl_paused"].append((labels, 1.0 if kept[name].paused else 0.0))
        recent = history.recent(connection, name, 100)
        ran = [run for run in recent if run.status != "skipped"]
        if not ran:
            continue
        last = ran[0]
        samples["maintctl_last_run_timestamp_seconds"].append((labels, last.started.timestamp()))
        samples["maintctl_last_run_duration_seconds"].append((labels, last.duration_seconds))
        samples["maintctl_last_run_failed"].append((labels, 1.0 if last.status == "failed" else 0.0))
        failures = next((index for index, run in enumerate(ran) if run.status != "failed"), len(ran))
        samples["maintctl_consecutive_failures"].append((labels, float(failures)))
        success = next((run for run in ran if run.status == "ok"), None) or history.last(connection, name, ("ok",))
        if success:
            samples["maintctl_last_success_timestamp_seconds"].append((labels, success.started.timestamp()))
        for kind, count in last.counts.items():
            samples["maintctl_last_run_items"].append(({"action": name, "kind": kind}, float(count)))
    for job in job_status.listing(connection, settings.now):
        labels = {"job": job["name"]}
        with contextlib.suppress(TypeError, ValueError):  # a time spoiled by hand is left out
            at = timestamps.parse_instant(job["last_success"]).timestamp()
            samples["maintctl_job_last_success_timestamp_seconds"].append((labels, at))
        if job["last_duration_ms"] is not None:
            samples["maintctl_job_last_duration_seconds"].append((labels, job["last_duration_ms"] / 1000))
        samples["maintctl_job_consecutive_failures"].append((labels, float(job["failures_in_a_row"])))
    queued = outbox.queue_state(connection)
    samples["maintctl_notifications_queued"].append(({}, float(queued.count)))
    age = (settings.now - queued.oldest).total_seconds() if queued.oldest else 0.0
    samples["maintctl_notifications_oldest_queued_age_seconds"].append(({}, max(0.0, age)))
    if database is None:
        samples.update(stream_samples(settings))
    else:
        return {
            name: [({"database": database, **labels}, value) for labels, value in values]
            for name, values in samples.items()
        }
    return samples


def stream_samples(settings: Settings) -> Samples:
    """Given the settings, return each consumer group's lag and oldest unacknowledged age, for every stream
    maintctl writes; none where no Redis is configured or it does not answer (a run never fails for them,
    and says elsewhere that Redis does not answer). Shared by every database of a run, so never labelled
    with one."""
    from maintctl.store import streams

    if settings.redis_url is None or settings.redis_problem:
        return {}
    try:
        found = streams.watched(settings)
    except streams.ReadError:
        return {}
    lags, ages = [], []
    for stream in found:
        for group in stream.groups:
            labels = {"stream": stream.stream, "group": group.group}
            lags.append((labels, float(group.lag)))
            ages.append((labels, float(group.oldest_unacknowledged_seconds or 0.0)))
    return {"maintctl_stream_lag": lags, "maintctl_stream_oldest_unacknowledged_seconds": ages}


def text(*each: Samples) -> str:
    """Given the samples of one database or more, return the textfile's text."""
    samples: Samples = {name: [] for name in _HELP}
    for one in each:
        for name, values in one.items():
            samples[name].extend(values)
    lines = []
    for name, values in samples.items():
        if not values:
            continue
        lines += [f"# HELP {name} {_HELP[name]}", f"# TYPE {name} gauge"]
        for labels, value in values:
            label_text = ",".join(f'{key}="{_label(text)}"' for key, text in labels.items())
            lines.append(f"{name}{{{label_text}}} {value!r}" if label_text else f"{name} {value!r}")
    return "\n".join(lines) + "\n"


class MetricsFile:
    """A hook (hooks.py): writes the metrics file once the run is recorded."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def started(self, report) -> list[str]:
        return []

    def finished(self, connection: sqlite3.Connection | None, report) -> list[str]:
        if connection is None:  # a window whose path named no database at its end
            return [f"metrics file {self.settings.metrics_file} not written: no database to read them from"]
        return write(connection, self.settings, report)


def write(connection: sqlite3.Connection, settings: Settings, report=None) -> list[str]:
    """Write the metrics file; return the warnings (none when it was written).
    Only a file of maintctl's metrics is ever replaced: a path where
    something else is (the database, a device, a file of other text) is left
    as it is, with a warning."""
    try:
        rendered = render(connection, settings, report)
    except sqlite3.Error as error:
        return [f"metrics file {settings.metrics_file} not written: {error}"]
    return write_text(settings.metrics_file, rendered)


def write_text(path: Path, rendered: str) -> list[str]:
    """Write the metrics text to the file, in its place at once; return the warnings (none when written)."""
    problem = not_ours(path)
    if problem:
        return [f"metrics file {path} not written: {problem}"]
    partial = None
    try:
        # A new file of a name nobody could have laid a link at (mkstemp: O_EXCL), never one that is there.
        descriptor, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(rendered)
        os.chmod(partial, 0o644)  # as a file the collector, another user, reads
        os.replace(partial, path)
    except OSError as error:
        if partial:
            with contextlib.suppress(OSError):
                os.unlink(partial)
        return [f"metrics file {path} not written: {getattr(error, 'strerror', None) or error}"]
    return []


def not_ours(path: Path) -> str | None:
    """Given the metrics file's path, return why it must not be replaced (None where it may)."""
    if not path.name or path.name in (".", ".."):
        return "it names a directory, not a file"
    try:
        status = path.lstat()
    except FileNotFoundError:
        return None
    except OSError as error:
        return error.strerror
    if not stat.S_ISREG(status.st_mode):
        return "something other than a regular file is there"
    if status.st_size:
        with open(path, "rb") as existing:
            if existing.read(len(_FIRST_LINE)) != _FIRST_LINE:
                return "a file that is not maintctl's metrics is there"
    return None
