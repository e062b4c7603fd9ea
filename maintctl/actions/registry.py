"""Every action, declared once: its command, what --help says of it, its
default schedule, the counts it reports and how a dry run words them, the
option groups its command takes, whether it notifies. The commands, run-all's
order, default schedules, reports, history, status, stats, metrics, doctor,
init-db and the tests all read this; the code of each action is imported
only when it runs (`load`), so that --help imports none.

Adding an action is one module in maintctl/actions/, ending in its ACTION
in one of the three shapes of actions/base/kinds.py (`Batched(...)`,
`Single(...)` or `OwnPass(...)`), and one entry here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from maintctl.actions.base.kinds import Action
    from maintctl.config.settings import Settings

DAILY = timedelta(days=1)
WEEKLY = timedelta(days=7)


@dataclass(frozen=True)
class Entry:
    name: str  # the command, and the action's name in history, metrics and output
    summary: str  # its --help
    counts: tuple[str, ...]  # the counts it always reports, in this order
    verbs: Mapping[str, str] = field(default_factory=dict)  # how a dry run words a count ("fired": "would fire")
    every: timedelta | None = None  # its default schedule in run-all: None, every run
    options: tuple[str, ...] = ("limits",)  # the option groups of its command beyond the common ones (cli/options.py)
    queues: str | None = None  # the count of the messages it queues (delivered after it), where it queues any
    # Where run-all has nothing for it to do: why not (None: it runs as its schedule says). Named on its
    # own, it runs anyway.
    skip_unless: Callable[[Settings], str | None] | None = None

    @property
    def notifies(self) -> bool:
        return self.queues is not None

    @property
    def module(self) -> str:
        return "maintctl.actions." + self.name.replace("-", "_")

    def load(self) -> Action:
        """Return the action's code (its module's ACTION)."""
        return importlib.import_module(self.module).ACTION


ACTIONS = (
    Entry(
        "fire-reminders",
        "Fire the reminders that are due and notify their owners.",
        counts=("fired", "created"),
        verbs={"fired": "would fire", "created": "create"},
        queues="fired",
    ),
    Entry(
        "expire-pending",
        "Expire pending uploads past their deadline and delete their media files.",
        counts=("expired", "files_deleted"),
        verbs={"expired": "would expire", "files_deleted": "delete files"},
    ),
    Entry(
        "expire-tags",
        "Delete suggested tags nobody confirmed in time (MAINTCTL_TAG_EXPIRY, default 7d).",
        counts=("expired",),
        verbs={"expired": "would expire"},
    ),
    Entry(
        "requeue-events",
        "Re-prompt users about pending events they never answered (MAINTCTL_REPROMPT_AFTER, default 24h).",
        counts=("requeued",),
        verbs={"requeued": "would re-prompt"},
        queues="requeued",
    ),
    Entry(
        "enqueue-jobs",
        "Enqueue the app's recurring jobs that are due (maintctl job add) for its workers, and read their"
        " results back.",
        counts=("enqueued", "skipped", "results", "timed_out"),
        verbs={"enqueued": "would enqueue", "skipped": "skip", "results": "record results", "timed_out": "time out"},
        options=(),
        queues="enqueued",
    ),
    Entry(
        "retention",
        "Delete the rows older than the rules of maintctl.toml say (MAINTCTL_CONFIG), such as the app's old"
        " audit_log; run-all runs it where that file is.",
        counts=("deleted",),
        verbs={"deleted": "would delete"},
        every=DAILY,
        skip_unless=lambda settings: (
            None if settings.config_file.exists() else f"no rules file ({settings.config_file})"
        ),
    ),
    Entry(
        "prune",
        "Drop maintctl's run history and jobs' runs older than 90 days and delivered notifications older than 7 days.",
        counts=("runs_deleted", "notifications_deleted", "job_runs_deleted"),
        every=DAILY,
    ),
    Entry(
        "optimize",
        "SQLite's own housekeeping: PRAGMA optimize, the WAL checkpointed and truncated (not with"
        " MAINTCTL_CHECKPOINT=off), PRAGMA quick_check.",
        counts=("tables_analysed", "wal_pages_checkpointed", "bytes_freed"),
        verbs={
            "tables_analysed": "would analyse",
            "wal_pages_checkpointed": "would checkpoint",
            "bytes_freed": "free bytes",
        },
        every=DAILY,
        options=(),
    ),
    Entry(
        "backup",
        "Take a consistent, checked copy of the database to each destination (--to: a directory, file://, s3://;"
        " encrypted with age off the host); keep the newest --keep (default 7), or by days, weeks and months.",
        counts=("written", "deleted"),
        every=DAILY,
        options=("backup",),
    ),
    Entry(
        "verify-backups",
        "Fetch the newest backup and one older one at random at each destination and check them against their"
        " manifests; with MAINTCTL_BACKUP_IDENTITY, decrypt them and run PRAGMA integrity_check.",
        counts=("verified", "failed"),
        verbs={"verified": "would verify", "failed": "fail"},
        every=WEEKLY,
        options=("destinations",),
    ),
)
ORDER = tuple(entry.name for entry in ACTIONS)  # the order run-all runs them in
_BY_NAME = {entry.name: entry for entry in ACTIONS}


def defaults(names) -> dict[str, timedelta | None]:
    """Given actions' names, return each one's default interval in run-all (None: every run), as schedules take them."""
    return {name: _BY_NAME[name].every for name in names}


def entry(name: str) -> Entry:
    """Given an action's name, return its entry (KeyError where there is none)."""
    return _BY_NAME[name]
