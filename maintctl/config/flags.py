"""What the command line said: one Flags, None where it said nothing, which
config/settings.py reads into the run's Settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Flags:
    """What the command line said; None where it said nothing."""

    db: Path | None = None
    redis_url: str | None = None
    media_dir: Path | None = None
    now: str | None = None
    dry_run: bool = False
    json: bool = False
    quiet: bool = False
    wait: float | None = None
    verbose: bool = False
    max_items: int | None = None
    max_seconds: float | None = None
    run_for: str | None = None
    every: str | None = None
    backup_to: tuple[str, ...] = ()  # --to, repeated
    keep: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    with_media: bool = False
    run_job: str | None = None
    dbs: tuple[str, ...] = ()  # --db of the acting commands: paths or glob patterns, one run each
    in_fleet: bool = False  # one run of many (fleet.py): the pings and the metrics file are the fleet's
    shard: str | None = None
    parallel: int | None = None
