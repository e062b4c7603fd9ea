"""What tells the world about a run of one database, beside its output: a
Healthchecks-style ping (pings.py) and a Prometheus textfile (metrics.py),
each behind the same small interface, so that the runner calls hooks and
knows neither. A run over many databases (run/fleet.py) pings once and
writes one metrics file for them all, so it drives pings.py and metrics.py
itself, and its runs get no hooks of their own."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from maintctl.config.settings import Settings
    from maintctl.results import Report


class Hook(Protocol):
    def started(self, report: Report) -> list[str]:
        """The run has begun (holding the lock); return warnings, none when all went well."""

    def finished(self, connection: sqlite3.Connection | None, report: Report) -> list[str]:
        """The run is over and recorded; return warnings, none when all went well."""


def configured(settings: Settings) -> list[Hook]:
    """Given the run's settings, return the hooks they ask for (importing only those)."""
    hooks: list[Hook] = []
    if settings.ping_url:
        from maintctl.monitoring.pings import Pinger

        hooks.append(Pinger(settings))
    if settings.metrics_file:
        from maintctl.monitoring.metrics import MetricsFile

        hooks.append(MetricsFile(settings))
    return hooks
