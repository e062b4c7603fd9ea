"""The backups' part of the metrics file: per destination (label
`destination`, as shown: never a credential), the newest copy of the
database's time and size. A directory is listed on every run (a read of the
directory); a bucket only by a run in which backup or verify-backups ran,
since listing a store costs a request each run (every minute): other runs
carry its figures over from the metrics file they replace, which only those
runs can have changed. A destination without a copy, or one that cannot be
listed and was never listed, has no sample."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from maintctl.backups import freshness, located
from maintctl.backups.destinations import Bucket, Folder
from maintctl.config.settings import Settings
from maintctl.store import identity
from maintctl.store.db import ActionError

TIME, SIZE = "maintctl_backup_newest_timestamp_seconds", "maintctl_backup_newest_bytes"
HELP = {
    TIME: "When the newest backup of the database at the destination was taken (Unix time).",
    SIZE: "The size of the newest backup of the database at the destination, as stored (bytes).",
}
# ACTIONS: the runs that list every destination (the others list directories only).
ACTIONS = frozenset({"backup", "verify-backups"})
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def collect(connection: sqlite3.Connection, settings: Settings, list_all: bool, database: str | None) -> dict:
    """Return the samples: {metric: [(labels, value)]}, labels without the database's (metrics.py adds it)."""
    try:
        database_id = identity.read(connection)
    except ActionError:
        return {TIME: [], SIZE: []}
    found = freshness.newest(
        settings.backup_to,
        settings.db,
        database_id,
        settings.now,
        listed=lambda destination: list_all or isinstance(destination, Folder),
    )
    samples: dict = {TIME: [], SIZE: []}
    shown = set()
    for newest in found:
        if newest.name is None:
            continue
        shown.add(newest.destination)
        samples[TIME].append(({"destination": newest.destination}, newest.created_at.timestamp()))
        samples[SIZE].append(({"destination": newest.destination}, float(newest.size)))
    if not list_all and settings.metrics_file is not None:
        for metric, labels, value in _carried(settings.metrics_file, database):
            if labels["destination"] not in shown and labels["destination"] in _buckets(settings):
                samples[metric].append(({"destination": labels["destination"]}, value))
    return samples


def _buckets(settings: Settings) -> set[str]:
    """Return the destinations that are buckets, as shown."""
    return {found.shown for found in located.parsed(settings.backup_to) if isinstance(found, Bucket)}


def _carried(path: Path, database: str | None) -> list[tuple[str, dict, float]]:
    """Given the metrics file being replaced, return its backup samples (of that database, where one is named)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        metric, _, rest = line.partition("{")
        if metric not in HELP:
            continue
        label_text, _, value = rest.rpartition("} ")
        labels = {
            key: re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], text)
            for key, text in _LABEL.findall(label_text)
        }
        if "destination" not in labels or labels.get("database") != database:
            continue
        try:
            found.append((metric, labels, float(value)))
        except ValueError:
            continue
    return found
