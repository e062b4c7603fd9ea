"""The command line: parse, call the runner or a query, exit. No SQL here.

app.py holds the Typer app and what every command shares (errors, exit
statuses, opening the database); acting.py has the commands that act (the
actions, run-all, init-db), reading.py those that report (history, stats,
status, doctor), scheduling.py pause, resume and schedule, tracing.py `trace …`, jobs.py
the `job` commands.
"""

from maintctl.cli import acting, backups, jobs, reading, scheduling, tracing  # noqa: F401 - importing each adds its commands
from maintctl.cli.app import app, main

__all__ = ["app", "main"]
