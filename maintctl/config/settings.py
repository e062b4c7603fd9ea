"""One frozen Settings, built from flags, then the environment, then a .env file.

This is the only module that reads the environment.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from maintctl import timestamps
from maintctl.config import backup
from maintctl.config.flags import Flags
from maintctl.config.urls import ping_url_usable, redact_url, redis_url_problem
from maintctl.config.values import (
    ConfigError,
    Sources,
    at_least_one,
    duration,
    optional_path,
    positive_int,
    seconds,
    yes,
)
from maintctl.timestamps import parse_duration, quoted


@dataclass(frozen=True)
class Settings:
    db: Path
    redis_url: str | None
    media_dir: Path
    now: datetime
    now_taken: float = 0.0  # time.monotonic() when `now` was now: the runs' clock goes on from there
    dry_run: bool = False
    json: bool = False
    quiet: bool = False
    actor: str = "system:scheduler"
    stream: str = "notify:telegram"
    job_stream: str = "tasks"  # where the runs of the app's jobs go (MAINTCTL_JOB_STREAM)
    job_results: str = "tasks:results"  # where its workers report them (MAINTCTL_JOB_RESULTS)
    run_job: str | None = None  # `job run NAME`: enqueue a run of this job now, whatever its schedule
    tag_expiry: timedelta = timedelta(days=7)
    reprompt_after: timedelta = timedelta(hours=24)
    batch_size: int = 10000
    hold: float = 1.0  # a transaction takes further batches until it has held the write lock this long
    dedup_ttl: timedelta = timedelta(days=7)
    redis_timeout: float = 5.0
    busy_timeout: float = 30.0
    lock_wait: float = 0.0
    lock_file: Path | None = None  # None: beside the database
    verbose: bool = False
    max_items: int | None = None  # per action and run
    max_seconds: float | None = None  # per run: no batch is begun after it
    run_for: float | None = None  # run-all --for: passes repeat within this many seconds
    run_every: float | None = None  # run-all --every: a pass begins this often
    # Backups (config/backup.py): the destinations as written, a directory, file:///PATH or s3://BUCKET/PREFIX?…
    backup_to: tuple[str, ...] = ()
    backup_keep: int | None = 7  # the newest N; None: only the calendar's
    backup_keep_daily: int = 0  # the newest copy of each of the last D days that have one (UTC)
    backup_keep_weekly: int = 0  # ... of the last W ISO weeks
    backup_keep_monthly: int = 0  # ... of the last M months
    backup_prune: bool = True  # MAINTCTL_BACKUP_PRUNE=off: nothing deleted (the bucket's own rules expire copies)
    backup_media: bool = False
    backup_recipients: str | None = None  # MAINTCTL_BACKUP_RECIPIENTS as written: age1… keys, or a file of them
    backup_identity: Path | None = None  # MAINTCTL_BACKUP_IDENTITY: the age identity file that reads copies
    backup_plaintext: bool = False  # MAINTCTL_BACKUP_PLAINTEXT=yes: URL destinations take unencrypted copies
    checkpoint: bool = True  # optimize checkpoints and truncates the WAL (off where Litestream or LiteFS does)
    config_file: Path | None = None  # the retention rules (MAINTCTL_CONFIG); None: maintctl.toml beside the database
    history_keep: timedelta = timedelta(days=90)
    outbox_keep: timedelta = timedelta(days=7)
    ping_url: str | None = None
    ping_timeout: float = 5.0
    metrics_file: Path | None = None
    stuck_after: timedelta = timedelta(minutes=5)  # status: notifications queued, or entries unacknowledged, this long
    redis_problem: str | None = None  # why the Redis URL cannot be used (it is then never contacted, nor shown)

    @property
    def backup_dir(self) -> Path | None:
        """The first destination that is a directory named as a path (None: every one is a URL)."""
        return next((Path(text).expanduser() for text in self.backup_to if "://" not in text), None)

    @property
    def redis_display(self) -> str:
        """The Redis URL as it may be shown: never with its password (and not
        at all where it cannot be read: its password could be anywhere in it)."""
        if self.redis_problem:
            return "(unusable URL, not shown)"
        return redact_url(self.redis_url) if self.redis_url else "(not set)"


def load(flags: Flags, environ: Mapping[str, str] | None = None) -> Settings:
    """Given the command line's flags, return the Settings, taking what the
    flags leave unsaid from the environment, then from the .env file."""
    sources = Sources(os.environ if environ is None else environ)

    def pick(flag_value, flag_name: str, *names: str) -> tuple[str | None, str]:
        if flag_value not in (None, ""):
            return str(flag_value), flag_name
        return sources.get(*names)

    db_text, _ = pick(flags.db, "--db", "MAINTCTL_DB")
    if db_text is None:
        raise ConfigError("no database given: use --db PATH or set MAINTCTL_DB")
    db = _database_path(db_text)
    if re.search(r"[*?[]", db_text) and not os.path.lexists(db):
        raise ConfigError(
            f"--db: {quoted(db_text)} is a pattern: this command takes one database (run-all and the actions take"
            " patterns)"
        )

    redis_url, redis_source = pick(flags.redis_url, "--redis-url", "MAINTCTL_REDIS_URL", "REDIS_URL")
    redis_problem = redis_url_problem(redis_url)

    media_text, _ = pick(flags.media_dir, "--media-dir", "MAINTCTL_MEDIA_DIR")
    media_dir = Path(media_text).expanduser() if media_text else db.parent / "media"

    now_text, now_source = pick(flags.now, "--now", "MAINTCTL_NOW")
    now_taken = time.monotonic()
    try:
        now = timestamps.parse_instant(now_text) if now_text else timestamps.utc_now()
    except (timestamps.NotAnInstant, OverflowError) as error:
        raise ConfigError(f"{now_source}: {error}") from None

    return Settings(
        db=db,
        redis_url=redis_url,
        redis_problem=f"{redis_source}: {redis_problem}" if redis_problem else None,
        media_dir=media_dir,
        now=now,
        now_taken=now_taken,
        dry_run=flags.dry_run,
        json=flags.json,
        quiet=flags.quiet,
        actor=sources.get("MAINTCTL_ACTOR")[0] or Settings.actor,
        stream=sources.get("MAINTCTL_STREAM")[0] or Settings.stream,
        job_stream=sources.get("MAINTCTL_JOB_STREAM")[0] or Settings.job_stream,
        job_results=sources.get("MAINTCTL_JOB_RESULTS")[0] or Settings.job_results,
        run_job=flags.run_job,
        tag_expiry=duration(sources, "MAINTCTL_TAG_EXPIRY", Settings.tag_expiry),
        reprompt_after=duration(sources, "MAINTCTL_REPROMPT_AFTER", Settings.reprompt_after),
        batch_size=positive_int(sources, "MAINTCTL_BATCH_SIZE", Settings.batch_size, MAX_BATCH_SIZE),
        hold=seconds(sources, "MAINTCTL_HOLD", Settings.hold, zero=True),
        dedup_ttl=duration(sources, "MAINTCTL_DEDUP_TTL", Settings.dedup_ttl),
        redis_timeout=seconds(sources, "MAINTCTL_REDIS_TIMEOUT", Settings.redis_timeout),
        busy_timeout=seconds(sources, "MAINTCTL_BUSY_TIMEOUT", Settings.busy_timeout),
        lock_wait=_seconds_flag(flags.wait, "--wait", zero=True) or 0.0,
        lock_file=Path(lock_file) if (lock_file := sources.get("MAINTCTL_LOCK_FILE")[0]) else None,
        verbose=flags.verbose,
        max_items=at_least_one(flags.max_items, "--max-items"),
        max_seconds=_seconds_flag(flags.max_seconds, "--max-seconds"),
        **_repeat(flags),
        **backup.fields(flags, sources, db),
        checkpoint=yes(sources, "MAINTCTL_CHECKPOINT", default=True),
        config_file=optional_path(sources.get("MAINTCTL_CONFIG")[0]) or db.parent / "maintctl.toml",
        history_keep=duration(sources, "MAINTCTL_HISTORY_KEEP", Settings.history_keep),
        outbox_keep=duration(sources, "MAINTCTL_OUTBOX_KEEP", Settings.outbox_keep),
        ping_url=None if flags.in_fleet else _ping_url(sources),
        ping_timeout=seconds(sources, "MAINTCTL_PING_TIMEOUT", Settings.ping_timeout),
        metrics_file=None if flags.in_fleet else optional_path(sources.get("MAINTCTL_METRICS_FILE")[0]),
        stuck_after=duration(sources, "MAINTCTL_STUCK_AFTER", Settings.stuck_after),
    )


def fleet(flags: Flags, environ: Mapping[str, str] | None = None) -> tuple[tuple[str, ...], str | None, str | None]:
    """Return what names the databases of an acting command: its --db values
    (else MAINTCTL_DB), --shard (else MAINTCTL_SHARD) and Kubernetes'
    JOB_COMPLETION_INDEX, as given (fleet.py reads them)."""
    sources = Sources(os.environ if environ is None else environ)
    named = flags.dbs or ((str(flags.db),) if flags.db else ())
    patterns = named or tuple(filter(None, [sources.get("MAINTCTL_DB")[0]]))
    shard = flags.shard if flags.shard is not None else sources.get("MAINTCTL_SHARD")[0]
    return patterns, shard, sources.get("JOB_COMPLETION_INDEX")[0]


def _database_path(text: str) -> Path:
    """Given --db, return the database's path; a symbolic link stands for the
    file it leads to, so that the lock, the backups and every message are that
    file's, whichever name it was reached by."""
    path = Path(text).expanduser()
    try:
        return path.resolve() if path.is_symlink() else path
    except (OSError, RuntimeError):  # a loop of links, a name too long: open_database names the problem
        return path


def _seconds_flag(seconds: float | None, source: str, zero: bool = False) -> float | None:
    """Given a number of seconds from the command line, return it; refuse what
    is not a finite number above zero (or zero, where `zero` allows it) and at
    most timestamps.LONGEST."""
    if seconds is None:
        return None
    if not (0 <= seconds if zero else 0 < seconds) or math.isnan(seconds):
        raise ConfigError(f"{source}: {seconds:g} is not a positive number of seconds")
    if seconds > timestamps.LONGEST.total_seconds():
        raise ConfigError(f"{source}: {seconds:g} seconds is longer than {timestamps.LONGEST_TEXT}")
    return seconds


def _repeat(flags: Flags) -> dict[str, float | None]:
    """Return run_for and run_every from run-all's --for and --every."""
    if flags.run_for is None:
        if flags.every is not None:
            raise ConfigError("--every goes with --for (such as --for 55s --every 5s)")
        return {"run_for": None, "run_every": None}
    if flags.dry_run:
        raise ConfigError("--for repeats passes; a dry run is one pass: drop --for and --every")
    values: dict[str, float | None] = {"run_every": None}  # --for alone: a pass whenever something is due
    for name, text, key in (("--for", flags.run_for, "run_for"), ("--every", flags.every, "run_every")):
        if text is None:
            continue
        try:
            values[key] = parse_duration(text).total_seconds()
        except ValueError as error:
            raise ConfigError(f"{name}: {error}") from None
    return values


def _ping_url(sources: Sources) -> str | None:
    url, source = sources.get("MAINTCTL_PING_URL")
    if url is not None and not ping_url_usable(url):
        raise ConfigError(f"{source}: not an http:// or https:// URL with a host (not shown: it holds the check's key)")
    return url.rstrip("/") if url else None


MAX_BATCH_SIZE = 1_000_000
