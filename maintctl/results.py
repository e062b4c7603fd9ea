"""What a run did: each action's result, the notifications, the whole
report and its exit status. Imports nothing of maintctl's, so that every
layer can use these types and the arrows still point one way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from maintctl.config.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED, EXIT_TERMINATED = 0, 1, 2, 75, 143
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C), as shells report it


@dataclass
class ActionResult:
    action: str
    counts: dict[str, int]
    status: str = "ok"  # ok | failed | skipped
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    planned: list[Any] | None = None  # the items, in a dry run
    reason: str | None = None  # why it was skipped
    started: datetime | None = None
    duration: float = 0.0
    recorded: bool = True  # False for an action skipped only because its schedule says not yet
    usage: bool = False  # it failed because its configuration is wrong (exit 2)
    # Called inside the transaction of each batch, with the counts of the batches in it: the run's history row
    # is brought up to date with what it commits (run/passes.py sets it).
    on_commit: Callable[[Any, dict[str, int]], None] | None = None

    def add(self, counts: dict[str, int], items: list[Any]) -> None:
        """Count what the items (changed, or planned in a dry run) did, and keep their warnings."""
        for name, count in counts.items():
            self.counts[name] = self.counts.get(name, 0) + count
        self.warnings.extend(item.warning for item in items if item.warning)


@dataclass
class Notifications:
    involved: bool = False  # an action that queues notifications ran
    delivered: int = 0
    already_sent: int = 0
    streams: dict[str, int] = field(default_factory=dict)  # how many were delivered to each stream
    would_queue: int = 0  # in a dry run
    queued: int = 0  # still waiting after the run
    error: str | None = None


@dataclass
class Report:
    settings: Settings
    actions: list[ActionResult] = field(default_factory=list)
    notifications: Notifications = field(default_factory=Notifications)
    stopped: str | None = (
        None  # the signal that stopped it (SIGTERM, SIGINT): the batch in hand finished, the rest left
    )
    run_id: str | None = None  # None in a dry run, which is not recorded
    passes: int = 0
    slots_skipped: int = 0  # --for/--every: slots that began while a pass overran
    run_warnings: list[str] = field(default_factory=list)  # about the run itself: history, metrics, pings
    history_rows: dict[str, int] = field(default_factory=dict)  # each action's row in the history, once begun
    history_in: Any = None  # the connection those rows were written through (a window may follow a new file)
    database_error: str | None = None  # a window's path named no database to use at its end (exit 2)

    @property
    def exit_code(self) -> int:
        if self.stopped:
            return EXIT_INTERRUPTED if self.stopped == "SIGINT" else EXIT_TERMINATED
        if self.database_error or self.settings.redis_problem or any(result.usage for result in self.actions):
            return EXIT_USAGE  # the others ran; what is configured wrong waits to be put right
        failed = any(result.status == "failed" for result in self.actions)
        return EXIT_FAILED if failed or self.notifications.error else EXIT_OK

    @property
    def warnings(self) -> list[str]:
        return [f"{result.action}: {warning}" for result in self.actions for warning in result.warnings] + list(
            self.run_warnings
        )

    def result_for(self, name: str) -> ActionResult | None:
        return next((result for result in self.actions if result.action == name), None)
