"""Showing a run: one JSON document, a rich table on a terminal, plain lines otherwise.

Results go to stdout; warnings and errors to stderr. --quiet prints nothing
when all went well, and only the warnings and errors otherwise.
"""

from __future__ import annotations

import sys

from maintctl import json_text, timestamps
from maintctl.actions import registry
from maintctl.json_text import one_line
from maintctl.results import ActionResult, Report


def as_json(report: Report) -> dict:
    """Given a run's report, return the document --json prints."""
    settings = report.settings
    notes = report.notifications
    document = {
        "now": timestamps.format_instant(settings.now),
        "dry_run": settings.dry_run,
        "actions": [_action_json(result) for result in report.actions],
    }
    if report.run_id:
        document["run_id"] = report.run_id
    if settings.run_for:
        document["passes"] = report.passes
        document["slots_skipped"] = report.slots_skipped
    if report.run_warnings:
        document["warnings"] = report.run_warnings
    if report.database_error:
        document["error"] = report.database_error
    if notes.involved or notes.queued or settings.redis_problem:
        document["notifications"] = {
            "stream": settings.stream,
            "redis": settings.redis_display,
            "delivered": notes.delivered,
            "already_in_stream": notes.already_sent,
            "streams": notes.streams,
            "queued": notes.queued,
            "error": notes.error or settings.redis_problem,
        }
        if settings.dry_run:
            document["notifications"]["would_queue"] = notes.would_queue
    return document


def _action_json(result: ActionResult) -> dict:
    item = {
        "action": result.action,
        "status": result.status,
        "counts": result.counts,
        "error": result.error,
        "warnings": [warning if len(warning) <= 1000 else warning[:999] + "…" for warning in result.warnings],
        "notes": result.notes,
        "duration_seconds": round(result.duration, 3),
    }
    if result.reason:
        item["reason"] = result.reason
    if result.planned is not None:
        item["planned"] = [planned.planned() for planned in result.planned]
    return item


def show(report: Report) -> None:
    """Print the report as the settings ask."""
    settings = report.settings
    quiet_now = settings.quiet and report.exit_code == 0 and not report.warnings
    if quiet_now:
        return
    if settings.json:
        print(json_text.document(as_json(report)))
        for line in problem_lines(report):  # the errors go to stderr too, as every error does
            if line.startswith("maintctl: error: "):
                print(one_line(line), file=sys.stderr)
        return
    if not settings.quiet:
        if sys.stdout.isatty():
            _show_rich(report)
        else:
            for line in summary_lines(report):
                print(one_line(line))
    for line in problem_lines(report):
        print(one_line(line), file=sys.stderr)


def _counts_text(result: ActionResult, dry_run: bool) -> str:
    if dry_run:
        verbs = registry.entry(result.action).verbs
        return ", ".join(f"{verbs.get(name, name)} {count}" for name, count in result.counts.items())
    return ", ".join(f"{name.replace('_', ' ')} {count}" for name, count in result.counts.items())


def summary_lines(report: Report) -> list[str]:
    settings = report.settings
    lines = []
    if settings.dry_run:
        lines.append(f"dry run as of {timestamps.format_instant(settings.now)}: nothing was changed")
    width = max((len(result.action) for result in report.actions), default=0)
    if report.passes > 1:
        skipped = (
            f" ({report.slots_skipped} slots skipped: passes took longer than --every)" if report.slots_skipped else ""
        )
        lines.append(f"{report.passes} passes{skipped}")
    for result in report.actions:
        done = f"({result.reason})" if result.status == "skipped" else _counts_text(result, settings.dry_run)
        lines.append(f"{result.action:<{width}}  {result.status:<7}  {done}".rstrip())
        lines.extend(f"  {item.describe()}" for item in result.planned or ())
        lines.extend(f"  note: {note}" for note in result.notes)
    line = _notifications_line(report)
    if line:
        lines.append(line)
    return lines


def _notifications_line(report: Report) -> str | None:
    settings, notes = report.settings, report.notifications
    if not (notes.involved or notes.queued):
        return None
    if settings.dry_run:
        text = f"notifications: would queue {notes.would_queue}"
        return text + (f"; {notes.queued} already queued" if notes.queued else "")
    if notes.error or settings.redis_problem:
        return f"notifications: {notes.delivered} delivered, {notes.queued} still queued"
    if settings.redis_url is None:
        if not notes.queued:
            return "notifications: none waiting (no Redis URL set)"
        return (
            f"notifications: {notes.queued} queued, not delivered: no Redis URL is set"
            " (--redis-url, MAINTCTL_REDIS_URL or REDIS_URL); the next run with one delivers them"
        )
    others = {stream: count for stream, count in notes.streams.items() if stream != settings.stream}
    text = f"notifications: {notes.delivered} delivered to {settings.stream} at {settings.redis_display}"
    if others:  # the runs of the app's jobs, on theirs
        parts = [f"{notes.delivered - sum(others.values())} to {settings.stream}"]
        parts += [f"{count} to {stream}" for stream, count in others.items()]
        text = f"notifications: {notes.delivered} delivered ({', '.join(parts)}) at {settings.redis_display}"
    if notes.already_sent:
        text += f" ({notes.already_sent} were in the stream already)"
    return text


def plain_text(report: Report) -> str:
    """Given a run's report, return it as the plain lines a terminal-less run prints (for a ping's body)."""
    return "\n".join(one_line(line) for line in summary_lines(report) + problem_lines(report)) + "\n"


def problem_lines(report: Report) -> list[str]:
    lines = [f"maintctl: warning: {warning}" for warning in report.warnings]
    for result in report.actions:
        if result.error:
            lines.append(f"maintctl: error: {result.action} failed: {result.error}")
    if report.database_error:
        lines.append(f"maintctl: error: {report.database_error}")
    if report.stopped:
        lines.append(
            f"maintctl: stopped by {report.stopped}: the batch in hand was finished, the rest is left for the next run"
        )
    notes = report.notifications
    if report.settings.redis_problem:
        lines.append(f"maintctl: error: {report.settings.redis_problem}; notifications stay queued ({notes.queued})")
    elif notes.error:
        lines.append(
            f"maintctl: error: notifications not delivered: {notes.error}; {notes.queued} stay queued for the next run"
        )
    return lines


def _show_rich(report: Report) -> None:
    from rich.console import Console  # only on a terminal
    from rich.markup import escape
    from rich.table import Table

    settings = report.settings
    console = Console()
    title = f"maintctl dry run as of {timestamps.format_instant(settings.now)}" if settings.dry_run else None
    table = Table(title=title, show_edge=False)
    table.add_column("action")
    table.add_column("status")
    table.add_column("would do" if settings.dry_run else "done")
    styles = {"ok": "green", "failed": "bold red", "skipped": "yellow"}
    for result in report.actions:
        done = escape(result.reason or "") if result.status == "skipped" else _counts_text(result, settings.dry_run)
        table.add_row(result.action, f"[{styles[result.status]}]{result.status}[/]", done)
        for item in result.planned or ():
            table.add_row("", "", f"[dim]{escape(item.describe())}[/]")
        for note in result.notes:
            table.add_row("", "", f"[yellow]{escape(note)}[/]")
    console.print(table)
    line = _notifications_line(report)
    if line:
        console.print(one_line(line), highlight=False, markup=False)
