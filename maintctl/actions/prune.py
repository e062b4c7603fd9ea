"""prune: drop maintctl's run history and the finished runs of the app's
jobs older than 90 days, and delivered notifications older than 7 days
(MAINTCTL_HISTORY_KEEP, MAINTCTL_OUTBOX_KEEP). A job's latest occurrence is
kept whatever its age: its next one is counted from it. It never touches the
app's tables or audit_log."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from maintctl import json_text, timestamps
from maintctl.actions.base.batches import Batched
from maintctl.config.settings import Settings
from maintctl.store.db import table_exists

# The tables grow in id order with time, so the old rows are found from the
# oldest id on, and the scan stops at the first row young enough to keep.
_OLD_RUN = (
    "status IN ('success', 'failed', 'skipped') AND scheduled_for < :cutoff AND scheduled_for <"
    " (SELECT max(latest.scheduled_for) FROM maintctl_job_runs latest"
    " WHERE latest.job = maintctl_job_runs.job AND latest.by_hand = 0)"
)
_OLD = {
    "maintctl_runs": "SELECT id, started_at FROM maintctl_runs WHERE started_at < :cutoff ORDER BY id LIMIT :limit",
    "maintctl_outbox": (
        "SELECT id, delivered_at FROM maintctl_outbox"
        " WHERE delivered_at IS NOT NULL AND delivered_at < :cutoff ORDER BY id LIMIT :limit"
    ),
    "maintctl_job_runs": f"SELECT rowid, scheduled_for FROM maintctl_job_runs WHERE {_OLD_RUN} ORDER BY rowid LIMIT :limit",
}
_DELETE = {
    "maintctl_runs": "DELETE FROM maintctl_runs WHERE id IN (SELECT value FROM json_each(:ids)) AND started_at < :cutoff",
    "maintctl_outbox": (
        "DELETE FROM maintctl_outbox WHERE id IN (SELECT value FROM json_each(:ids))"
        " AND delivered_at IS NOT NULL AND delivered_at < :cutoff"
    ),
    "maintctl_job_runs": f"DELETE FROM maintctl_job_runs WHERE rowid IN (SELECT value FROM json_each(:ids)) AND {_OLD_RUN}",
}
_COUNT_NAME = {
    "maintctl_runs": "runs_deleted",
    "maintctl_outbox": "notifications_deleted",
    "maintctl_job_runs": "job_runs_deleted",
}


@dataclass(slots=True)
class OldRow:
    table: str
    row_id: int
    at: str  # when it ran, or was delivered
    warning: str | None = None

    def planned(self) -> dict:
        return {"id": self.row_id, "table": self.table, "at": self.at}

    def describe(self) -> str:
        what = {"maintctl_runs": "run", "maintctl_outbox": "delivered notification"}.get(self.table, "job run")
        return f"{what} {self.row_id} of {self.at}"


def _cutoffs(settings: Settings) -> dict[str, str]:
    return {
        "maintctl_runs": timestamps.format_instant(timestamps.shift(settings.now, -settings.history_keep)),
        "maintctl_outbox": timestamps.format_instant(timestamps.shift(settings.now, -settings.outbox_keep)),
        "maintctl_job_runs": timestamps.format_instant(timestamps.shift(settings.now, -settings.history_keep)),
    }


def plan(connection: sqlite3.Connection, settings: Settings, limit: int | None) -> list[OldRow]:
    """Given the run's settings, return up to `limit` (None: all) rows past their keeping time."""
    old: list[OldRow] = []
    for table, cutoff in _cutoffs(settings).items():
        wanted = -1 if limit is None else limit - len(old)
        if wanted == 0 or not table_exists(connection, table):
            continue
        rows = connection.execute(_OLD[table], {"cutoff": cutoff, "limit": wanted})
        old.extend(OldRow(table, row_id, at) for row_id, at in rows)
    return old


def apply(connection: sqlite3.Connection, old: list[OldRow], settings: Settings) -> list[OldRow]:
    """Delete the planned rows that are still past their keeping time; return those."""
    deleted = []
    for table, cutoff in _cutoffs(settings).items():
        rows = [row for row in old if row.table == table]
        if rows:
            ids = json_text.encode([row.row_id for row in rows])
            gone = {
                row_id
                for (row_id,) in connection.execute(f"{_DELETE[table]} RETURNING rowid", {"ids": ids, "cutoff": cutoff})
            }
            deleted.extend(row for row in rows if row.row_id in gone)
    return deleted


def tally(deleted: list[OldRow]) -> dict[str, int]:
    counts = dict.fromkeys(_COUNT_NAME.values(), 0)
    for row in deleted:
        counts[_COUNT_NAME[row.table]] += 1
    return counts


def count_due(connection: sqlite3.Connection, settings: Settings) -> int:
    return len(plan(connection, settings, None))


ACTION = Batched(plan=plan, apply=apply, tally=tally, count_due=count_due)
