"""The Typer app and what its commands share: one-line errors (and, with
--json, one JSON document in every outcome), exit statuses, and opening the
database for a command that asks or tells it something."""

from __future__ import annotations

import errno
import os
import sys
from contextlib import contextmanager
from typing import Annotated

import typer

from maintctl import __version__, json_text
from maintctl.actions import registry
from maintctl.config.flags import Flags
from maintctl.config.settings import ConfigError
from maintctl.json_text import one_line
from maintctl.results import EXIT_FAILED, EXIT_USAGE
from maintctl.store.db import Locked

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Housekeeping for the Core app's SQLite database, one idempotent pass per run (made for cron).",
)


def fail(message: str, json_output: bool = False, code: int = EXIT_USAGE, label: str = "error: ", **known) -> int:
    """Print what ends the command early, on stderr (and with --json also as
    the one document on stdout, with what else is known); return its exit status."""
    print(f"maintctl: {label}{one_line(message)}", file=sys.stderr)
    if json_output:
        print(json_text.document({**known, "error": message, "exit": code}))
    return code


def known_action(action: str, json_output: bool = False) -> str:
    """Given an action's name from the command line, return it; exit 2 naming it where there is no such action."""
    if action not in registry.ORDER:
        raise typer.Exit(fail(f"{action!r} is not an action (one of: {', '.join(registry.ORDER)})", json_output))
    return action


@contextmanager
def opened(flags: Flags, read_only: bool):
    """Yield the settings and a connection for a command that asks or tells
    the database something. Errors become one line (and a JSON document with
    --json): exit 2 for the configuration, 1 for the database failing."""
    from maintctl.config import settings as config
    from maintctl.store import db as database

    try:
        settings = config.load(flags)
        connection = database.open_database(settings.db, read_only=read_only, busy_timeout=settings.busy_timeout)
    except ConfigError as error:
        raise typer.Exit(fail(str(error), flags.json)) from None
    except Locked as error:
        raise typer.Exit(fail(str(error), flags.json, EXIT_FAILED)) from None
    try:
        yield settings, connection
    except database.sqlite3.Error as error:
        raise typer.Exit(fail(f"{settings.db}: {error}", flags.json, EXIT_FAILED)) from None
    except ValueError as error:  # a schedule that cannot be kept, say
        raise typer.Exit(fail(str(error), flags.json)) from None
    finally:
        connection.close()


def _version(value: bool) -> None:
    if value:
        print(f"maintctl {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    pass


def main() -> None:
    """Run the command line. A usage error is one plain line on stderr (a
    box on a terminal), and with --json also a JSON document on stdout; an
    error nothing else caught is one line too, never a traceback; output
    that cannot be written (a full disk, a closed pipe) is said on stderr."""
    import click

    _streams_that_never_fail()
    _only_the_command_asked_for(sys.argv[1:])
    json_output = any(argument == "--json" or argument.startswith("--json=") for argument in sys.argv[1:])
    try:
        code = app(standalone_mode=False, prog_name="maintctl")
    except click.exceptions.NoArgsIsHelpError:
        code = EXIT_USAGE  # the help was shown
    except click.ClickException as error:
        code = _usage_error(error, json_output)
    except click.Abort:
        code = 130
    except Exception as error:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        from maintctl.config.urls import redact_text

        if type(error).__name__ == "ShellDetectionFailure":  # --show-completion, --install-completion run by no shell
            sys.exit(fail("cannot tell which shell this is: run it from the shell to complete in", json_output))

        message = redact_text(f"unexpected {type(error).__name__}: {error}")
        code = _output_failed(error) if _is_output(error) else fail(message, json_output, EXIT_FAILED)
    sys.exit(_flushed(code or 0))


def _only_the_command_asked_for(arguments: list[str]) -> None:
    """Leave registered only the command the arguments name (where they name
    one): Typer builds the options of every registered command as it starts,
    a fifth of what a run with nothing to do costs. Help, completion and a
    name that is no command's still see them all."""
    if not arguments or os.environ.get("_MAINTCTL_COMPLETE"):
        return
    commands = [info for info in app.registered_commands if _command_name(info) == arguments[0]]
    groups = [info for info in app.registered_groups if info.name == arguments[0]]
    if commands or groups:
        app.registered_commands[:] = commands
        app.registered_groups[:] = groups


def _command_name(info) -> str:
    return info.name or info.callback.__name__.lower().replace("_", "-")


def _streams_that_never_fail() -> None:
    """Make stdout and stderr take any text (bytes a path held that are not
    UTF-8 are written escaped), and stand in for one that is closed."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 - for the life of the process
        else:
            stream.reconfigure(errors="backslashreplace")


def _is_output(error: Exception) -> bool:
    """Return whether the error is stdout refusing what was printed (a closed pipe, a full disk)."""
    return isinstance(error, (BrokenPipeError, OSError)) and error.errno in (errno.EPIPE, errno.ENOSPC, errno.EIO)


def _output_failed(error: OSError) -> int:
    """The output could not be written: say so on stderr (if it can be), write
    nothing more to stdout, and return exit status 1."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    try:
        print(f"maintctl: error: the output could not be written ({error.strerror})", file=sys.stderr)
    except OSError:
        pass
    return EXIT_FAILED


def _flushed(code: int) -> int:
    """Given the exit status, flush stdout; return the status (1 where the output could not be written)."""
    try:
        sys.stdout.flush()
    except OSError as error:
        return max(code, _output_failed(error))
    return code


def _usage_error(error, json_output: bool) -> int:
    """Given a click usage error, show it as the place it goes to wants it; return its exit status."""
    if sys.stderr.isatty() and not json_output:
        from typer import rich_utils

        rich_utils.rich_format_error(error)
        return error.exit_code
    import re

    context = getattr(error, "ctx", None)
    hint = f" (see {context.command_path} --help)" if context is not None else ""
    message = re.sub(r"'([^']{39})[^']{2,}'", r"'\1…'", error.format_message())  # a long value, cut short
    # Words the shell split off a value (a password with a space, unquoted) are never shown.
    message = re.sub(
        r"^Got unexpected extra arguments? \(.*\)$",
        "Got words it does not take (not shown: a value with spaces, such as a password, must be quoted)",
        message,
        flags=re.DOTALL,
    )
    return fail(message + hint, json_output, error.exit_code)
