"""Showing history, stats, status, doctor and schedules: one JSON document
with --json, rich tables on a terminal, plain aligned lines otherwise."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from maintctl import json_text
from maintctl.json_text import one_line


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{key} {count}" for key, count in value.items()) or "-"
    return one_line(str(value), 200)


def table(title: str | None, headers: Sequence[str], rows: Sequence[Sequence], styles: dict | None = None) -> None:
    """Print rows under headers: a rich table on a terminal, aligned plain text otherwise."""
    cells = [[_cell(value) for value in row] for row in rows]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        shown = Table(title=escape(one_line(title)) if title else None, show_edge=False)
        for header in headers:
            shown.add_column(header)
        for row in cells:
            shown.add_row(*(_styled(escape(cell), styles) for cell in row))
        Console().print(shown)
        return
    if title:
        print(one_line(title))
    widths = [max([len(header)] + [len(row[index]) for row in cells]) for index, header in enumerate(headers)]
    for row in [list(headers), *cells]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _styled(cell: str, styles: dict | None) -> str:
    style = (styles or {}).get(cell)
    return f"[{style}]{cell}[/]" if style else cell


STATUS_STYLES = {
    "ok": "green",
    "success": "green",
    "failed": "bold red",
    "skipped": "yellow",
    "interrupted": "bold red",
    "running": "cyan",
    "FAIL": "bold red",
    "warn": "yellow",
}


def as_json(document) -> None:
    print(json_text.document(document))


def history(runs: list, as_document: bool) -> None:
    if as_document:
        as_json({"runs": [run.as_json() for run in runs]})
        return
    if not runs:
        print("no runs recorded yet")
        return
    table(
        None,
        ("started", "action", "status", "took", "counts", "error or reason", "host", "pid"),
        [
            (
                run.started_at,
                run.action,
                run.status,
                f"{run.duration_seconds:.2f}s",
                run.counts,
                run.error or run.reason,
                run.host,
                run.pid,
            )
            for run in runs
        ],
        STATUS_STYLES,
    )


def stats(document: dict, as_document: bool) -> None:
    if as_document:
        as_json(document)
        return
    rows = []
    for row in document["actions"]:
        rate = f"{row['success_rate'] * 100:.1f}%" if row["success_rate"] is not None else None
        rows.append(
            (
                row["action"],
                row["runs"],
                rate,
                row["duration_avg_seconds"],
                row["duration_p95_seconds"],
                row["items"],
                row["last_success"],
                row["last_failure"],
            )
        )
    table(
        f"since {document['since']}",
        ("action", "runs", "success", "avg s", "p95 s", "items", "last success", "last failure"),
        rows,
    )
    for row in document["actions"]:
        for line in row.get("notes", ()):
            print(one_line(line))


def status(document: dict, as_document: bool, quiet: bool = False) -> None:
    """Print the status; with quiet, only what needs attention (and nothing when nothing does)."""
    if quiet and not document["attention"]:
        return
    if as_document:
        as_json(document)
        return
    if quiet:
        for line in document["attention"]:
            print(f"maintctl: attention: {one_line(line)}", file=sys.stderr)
        return
    rows = []
    for row in document["actions"]:
        state = "paused" if row["paused"] else (row["last_status"] or "never run")
        rows.append(
            (
                row["action"],
                state,
                row["schedule"],
                row["last_run"],
                row["last_success"],
                row["due_now"],
                row["next_due"],
            )
        )
    table(
        None,
        ("action", "state", "schedule", "last run", "last success", "due now", "next due"),
        rows,
        {**STATUS_STYLES, "paused": "yellow"},
    )
    for row in document["actions"]:
        if row["paused"]:
            reason = f": {row['paused_reason']}" if row["paused_reason"] else ""
            print(one_line(f"{row['action']} paused since {row['paused_at']}{reason}"))
    queued = document["notifications"]
    if queued["queued"]:
        print(
            f"notifications: {queued['queued']} queued, the oldest since {queued['oldest_queued_at']}"
            f" ({queued['oldest_age_seconds']:g} s)"
        )
    else:
        print("notifications: none waiting")
    if document.get("jobs"):
        jobs(document["jobs"], as_document=False)
    _backups(document.get("backups") or {})
    holder = document["lock"]["held_by_pid"]
    print(f"lock: held by pid {holder}" if holder else "lock: free")
    if document.get("redis"):
        redis = document["redis"]
        kind = " (a cluster)" if (redis.get("version") or "").endswith("(a cluster)") else ""
        print(one_line(f"redis: {redis['url']} answers{kind}" if redis["answers"] else f"redis: {redis['error']}"))
    for stream in document.get("streams") or ():
        _readers(stream)
    for line in document["attention"]:
        print(f"maintctl: attention: {one_line(line)}", file=sys.stderr)


def _readers(stream: dict) -> None:
    """Print a stream's consumer groups: each one's lag and oldest entry not acknowledged (status)."""
    from maintctl.store.streams import duration

    name = stream["stream"]
    if stream["error"]:
        return  # said among what needs attention
    if stream["no_groups"]:
        made = "" if stream["exists"] else " (it does not exist yet)"
        print(one_line(f"stream {name}: no consumer group{made}: its reader cannot be watched"))
        return
    for group in stream["groups"]:
        lag = f"{group['lag']}{'' if group['lag_exact'] else '+'}"
        waited = group["oldest_unacknowledged_seconds"]
        oldest = f", the oldest unacknowledged {duration(waited)} old" if waited is not None else ", all acknowledged"
        print(one_line(f"stream {name}, group {group['group']}: lag {lag}, {group['pending']} pending{oldest}"))


def _backups(backups: dict) -> None:
    """Print each destination's newest backup of the database (status)."""
    for newest in backups.get("destinations", []):
        if newest["error"]:
            continue  # said among what needs attention
        held = f"{newest['newest']} ({newest['created_at']}, {newest['size']:,} bytes)" if newest["newest"] else "none"
        print(one_line(f"backups at {newest['destination']}: newest {held}"))
    if backups.get("note"):
        print(one_line(backups["note"]))


def jobs(listed: list[dict], as_document: bool) -> None:
    """Print the app's jobs: schedule, next run, last run and its outcome."""
    if as_document:
        as_json({"jobs": listed})
        return
    rows = [
        (
            job["name"],
            job["type"],
            job["bot"],
            job["schedule"] + ("" if job["enabled"] else " (paused)"),
            job["next_run"] or "-",
            (job["last_run"] or {}).get("scheduled_for"),
            (job["last_run"] or {}).get("status") or "never run",
        )
        for job in listed
    ]
    table("jobs", ("job", "type", "bot", "schedule", "next run", "last run", "its status"), rows, STATUS_STYLES)


def job_runs(runs: list[dict], as_document: bool) -> None:
    """Print a job's runs, newest first."""
    if as_document:
        as_json({"runs": runs})
        return
    rows = [
        (
            run["scheduled_for"],
            run["status"] + (" (by hand)" if run["by_hand"] else ""),
            run["enqueued_at"],
            run["finished_at"],
            run["duration_ms"],
            run["skipped_occurrences"] or "",
            run["error"] or "",
        )
        for run in runs
    ]
    table(None, ("scheduled for", "status", "enqueued", "finished", "ms", "coalesced", "error"), rows, STATUS_STYLES)


def doctor(checks: list, as_document: bool, quiet: bool = False) -> None:
    """Print the checks; with quiet, only those that fail or warn."""
    if quiet:
        checks = [check for check in checks if check.state in ("fail", "warn")]
        if not checks:
            return
    if as_document:
        as_json({"checks": [vars(check) for check in checks], "ok": not any(c.state == "fail" for c in checks)})
        return
    labels = {"ok": "ok", "warn": "warn", "fail": "FAIL", "info": ""}
    table(
        None,
        ("", "check", "result"),
        [(labels[check.state], check.name, check.detail) for check in checks],
        STATUS_STYLES,
    )
