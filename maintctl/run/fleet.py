"""An acting command's run on each database it names, and what each ends
in: the exceptions a run ends in become exit statuses here.

`--db` may be repeated and each value may be a glob pattern; `--shard I/N`
keeps the databases whose stable hash of the path, modulo N, is I. Each
database gets its own run (its own lock, history and audit rows), in a pool
of worker processes forked once (`--parallel N`, default the CPU count), each
taking databases in turn: one process start for a thousand databases, not a
thousand. One database's failure never stops the others.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from maintctl.config import settings as config
from maintctl.config.flags import Flags
from maintctl.config.settings import ConfigError
from maintctl.results import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_LOCKED, EXIT_OK, EXIT_TERMINATED, EXIT_USAGE, Report
from maintctl.store import lock
from maintctl.store.db import Locked, Stop, Stopped

_NOT_DATABASES = ("-wal", "-shm", "-journal", ".maintctl.lock")  # what a pattern may match beside a database
_PATTERN = re.compile(r"[*?[]")


@dataclass
class Attempt:
    """One run on one database: its report, or why nothing was done."""

    code: int
    report: Report | None = None
    message: str | None = None
    label: str = "error: "  # how the message is said ("" where it is no error: another run held the lock)


def attempt(names: list[str], flags: Flags, scheduled: bool, stop: Stop | None = None) -> Attempt:
    """Run the actions on the database the flags name (`stop`, where given, the run's: see runner.run);
    return what it ended in."""
    from maintctl.run import runner

    try:
        settings = config.load(flags)
        replica = _replica(settings.db)
        if replica:
            return Attempt(EXIT_OK, message=replica, label="")
        return Attempt(0, runner.run(names, settings, scheduled, stop))
    except ConfigError as error:
        return Attempt(EXIT_USAGE, message=str(error))
    except Locked as error:
        return Attempt(EXIT_FAILED, message=str(error))
    except lock.Busy as busy:  # a run overlapping another: nothing wrong
        return Attempt(EXIT_LOCKED, message=f"{busy}; this run did nothing", label="")
    except Stopped as stopped:  # while waiting for the lock: nothing was begun
        code = EXIT_INTERRUPTED if stopped.signal_name == "SIGINT" else EXIT_TERMINATED
        return Attempt(code, message=f"{stopped}; this run did nothing", label="")


def _replica(database: Path) -> str | None:
    """Return why the database is not to be written where it is a LiteFS replica (a .primary file beside it)."""
    primary = database.parent / ".primary"
    try:
        if not primary.is_file():
            return None
        holder = primary.read_text(errors="replace").strip()[:100]
    except OSError:
        return None
    return (
        f"{database}: a LiteFS replica (the primary is {holder or 'elsewhere'}); skipped: run maintctl on the primary"
    )


def is_fleet(flags: Flags) -> bool:
    """Return whether the flags name databases by more than one path: a repeated --db, a pattern, a shard."""
    patterns, shard, _ = config.fleet(flags)
    return len(patterns) > 1 or any(_PATTERN.search(pattern) for pattern in patterns) or shard is not None


def databases(flags: Flags) -> list[Path]:
    """Return the databases the flags name, patterns expanded, each file
    once however it is reached (another spelling, a link), in the shard asked
    for. Raise ConfigError for a pattern that matches nothing or a shard that
    cannot be read."""
    patterns, shard_text, job_index = config.fleet(flags)
    if not patterns:
        raise ConfigError(
            "no database given: use --db PATH (or a pattern such as '/srv/tenants/*.db') or set MAINTCTL_DB"
        )
    if flags.run_for is not None:
        raise ConfigError(
            "--for keeps one database's window; over many databases run one pass a minute (drop --for and --every)"
        )
    found: dict[str, Path] = {}  # the real file: the path it was first named by
    for pattern in patterns:
        if not pattern.strip():
            raise ConfigError("--db: an empty value names no database")
        if not _PATTERN.search(pattern) or os.path.lexists(pattern):  # a name with [ * ? that is there is itself
            found.setdefault(_real(pattern), Path(pattern).expanduser())
            continue
        matched = [
            name
            for name in sorted(glob.glob(os.path.expanduser(pattern)))
            if not name.endswith(_NOT_DATABASES) and not os.path.isdir(name)
        ]
        if not matched:
            raise ConfigError(f"--db {pattern!r}: no file matches the pattern")
        for name in matched:
            found.setdefault(_real(name), Path(name))
    if shard_text is None:
        return list(found.values())
    index, count = _shard(shard_text, job_index)
    return [path for path in found.values() if shard_of(path, count) == index]


def _real(name: str) -> str:
    """The file a name reaches (links followed, `./` and `..` read), so that no file is run twice."""
    try:
        return os.path.realpath(os.path.expanduser(name))
    except (OSError, ValueError):
        return name


def _shard(text: str, job_index: str | None) -> tuple[int, int]:
    """Given --shard (I/N, or N with I from JOB_COMPLETION_INDEX), return I and N."""
    match = re.fullmatch(r"\s*(?:([0-9]{1,9})\s*/\s*)?([0-9]{1,9})\s*", text)
    if match and match[1] is None:
        if job_index is None:
            raise ConfigError(f"--shard: {text.strip()!r} names N alone, and JOB_COMPLETION_INDEX is not set")
        if not re.fullmatch(r"\s*[0-9]{1,9}\s*", job_index):
            raise ConfigError(f"JOB_COMPLETION_INDEX: {job_index[:40]!r} is not a whole number")
        index, count = int(job_index), int(match[2])
    elif match:
        index, count = int(match[1]), int(match[2])
    else:
        raise ConfigError(
            f"--shard: {text[:40]!r} is not I/N (such as 0/4), nor N with JOB_COMPLETION_INDEX set, as Kubernetes sets it"
        )
    if not 0 <= index < count:
        raise ConfigError(f"--shard: {index}/{count}: I must be from 0 to N-1")
    return index, count


def shard_of(path: Path, count: int) -> int:
    """Given a database's path, return its shard of `count`: a stable hash of its file name, so that hosts
    that mount the databases at other paths agree, and adding a database moves no other."""
    digest = hashlib.sha256(os.fsencode(path.name)).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass
class Outcome:
    """What one database's run says, as the fleet's output gathers it."""

    database: str
    code: int
    document: dict = field(default_factory=dict)
    out: list[str] = field(default_factory=list)  # its lines for stdout
    err: list[str] = field(default_factory=list)  # its lines for stderr
    metrics: dict | None = None  # its samples for the fleet's metrics file (metrics.collect)


def _one(task: tuple[list[str], Flags, bool, Path, bool], stop: Stop) -> Outcome:
    """In a worker: run on one database, stopped by `stop`, and say what it ended in (and its metrics,
    where the fleet keeps them)."""
    from maintctl.show import report as reports

    names, flags, scheduled, path, metrics = task
    done = attempt(names, replace(flags, db=path, dbs=(), in_fleet=True), scheduled, stop)
    if done.report is None:
        document = {"error": done.message, "skipped": True} if done.code == EXIT_OK else {"error": done.message}
        quiet = flags.quiet and done.code in (EXIT_OK, EXIT_LOCKED)
        err = [] if quiet else [f"maintctl: {done.label}{done.message}"]
        return Outcome(str(path), done.code, document, [], err)
    outcome = done.report
    quiet = flags.quiet and outcome.exit_code == 0 and not outcome.warnings
    return Outcome(
        str(path),
        outcome.exit_code,
        reports.as_json(outcome),
        [] if flags.quiet else reports.summary_lines(outcome),
        [] if quiet else reports.problem_lines(outcome),
        _metrics(outcome) if metrics else None,
    )


def _metrics(report) -> dict | None:
    """Return the database's metrics after its run, labelled with its path (None where they cannot be read)."""
    import sqlite3

    from maintctl.monitoring import metrics
    from maintctl.store import db

    settings = report.settings
    try:
        connection = db.open_database(settings.db, read_only=True, busy_timeout=settings.busy_timeout)
        try:
            return metrics.collect(connection, settings, str(settings.db), report)
        finally:
            connection.close()
    except (ConfigError, sqlite3.Error, OSError):
        return None


def run(names: list[str], flags: Flags, paths: list[Path], scheduled: bool) -> tuple[list[Outcome], list[str]]:
    """Run on each database, several at once; return their outcomes in the
    order of the paths, and the fleet's own warnings. The fleet pings once
    (MAINTCTL_PING_URL: as it begins, and how it ended, each database's exit
    status in the body) and writes one metrics file, each sample labelled
    with its database."""
    told = _fleet_settings(flags, paths)
    pinger = None
    warnings: list[str] = []
    if told and told.ping_url and not flags.dry_run:
        from maintctl.monitoring.pings import Pinger
        from maintctl.store import identity

        pinger = Pinger(told)
        warnings += pinger.begin(identity.new_uuid())
    keep_metrics = bool(told and told.metrics_file and not flags.dry_run)
    tasks = [(names, flags, scheduled, path, keep_metrics) for path in paths]
    outcomes = _run_all(tasks, min(flags.parallel or os.cpu_count() or 1, len(tasks)))
    if keep_metrics:
        from maintctl.monitoring import metrics

        samples = [outcome.metrics for outcome in outcomes if outcome.metrics]
        samples.append(metrics.stream_samples(told))  # the streams the databases share: once, unlabelled
        warnings += metrics.write_text(told.metrics_file, metrics.text(*samples))
    if pinger:
        body = "".join(f"{outcome.database}: exit {outcome.code}\n" for outcome in outcomes)
        warnings += pinger.end(exit_code(outcomes), body)
    return outcomes, warnings


def _run_all(tasks: list[tuple], workers: int) -> list[Outcome]:
    """Run the tasks, `workers` at once (workers.py); return their outcomes in order, those a signal kept
    from beginning said so."""
    from maintctl.run import workers as pool

    results, by = pool.run(_one, tasks, workers)
    code = EXIT_INTERRUPTED if by == "SIGINT" else EXIT_TERMINATED
    message = f"not run: stopped by {by} before it began"
    return [
        result or Outcome(str(task[3]), code, {"error": message}, [], [f"maintctl: {message}"])
        for result, task in zip(results, tasks)
    ]


def _fleet_settings(flags: Flags, paths: list[Path]):
    """The settings the fleet's pings and metrics file are read from (None where no database is named)."""
    if not paths:
        return None
    return config.load(replace(flags, db=paths[0], dbs=()))


def exit_code(outcomes: list[Outcome]) -> int:
    """The fleet's exit status: 0 where every run's was; else the gravest (2, then 1, then a signal's, then 75)."""
    codes = {outcome.code for outcome in outcomes} - {EXIT_OK}
    for code in (EXIT_USAGE, EXIT_FAILED, EXIT_TERMINATED, EXIT_INTERRUPTED, EXIT_LOCKED):
        if code in codes:
            return code
    return EXIT_OK
