"""docs/commands.md's command and option reference, written from the command line itself (the registry's actions
and Typer's commands, their help and options), so that the reference and `--help` cannot disagree.

    python docs/reference.py            # write it into docs/commands.md, between its markers
    python docs/reference.py --check    # exit 1 where docs/commands.md says something else (the tests run this)
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import typer.main

from maintctl.cli import app

COMMANDS = Path(__file__).resolve().parent / "commands.md"
BEGIN = "<!-- the reference below is written by docs/reference.py from --help: edit the commands, not this -->\n"
END = "<!-- end of what docs/reference.py writes -->\n"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _option(parameter: click.Parameter) -> str:
    names = ", ".join(f"`{name}`" for name in [*parameter.opts, *parameter.secondary_opts])
    metavar = f" `{parameter.metavar}`" if getattr(parameter, "metavar", None) else ""
    return f"{names}{metavar}"


def _commands(group: click.Group, context: click.Context, prefix: str = "maintctl") -> list[tuple[str, click.Command]]:
    found = []
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if isinstance(command, click.Group):
            found += _commands(command, context, f"{prefix} {name}")
        elif not command.hidden:
            found.append((f"{prefix} {name}", command))
    return found


def reference() -> str:
    """Return the reference: per command, its summary, its arguments and each option with its help."""
    group = typer.main.get_command(app)
    context = click.Context(group, info_name="maintctl")
    lines = []
    for name, command in _commands(group, context):
        arguments = " ".join(
            parameter.human_readable_name for parameter in command.params if not parameter.opts[0].startswith("-")
        )
        lines += [f"### `{name}{' ' + arguments if arguments else ''}`", "", _cell(command.help or ""), ""]
        options = [
            parameter for parameter in command.params if isinstance(parameter, click.Option) and not parameter.hidden
        ]
        if options:
            lines += ["| option | meaning |", "| --- | --- |"]
            lines += [f"| {_option(option)} | {_cell(option.help or '')} |" for option in options]
            lines.append("")
    return BEGIN + "\n" + "\n".join(lines) + END


def main(arguments: list[str]) -> int:
    text = COMMANDS.read_text()
    if BEGIN not in text or END not in text:
        print(f"{COMMANDS}: the markers are missing", file=sys.stderr)
        return 1
    written = text[: text.index(BEGIN)] + reference() + text[text.index(END) + len(END) :]
    if arguments == ["--check"]:
        if written != text:
            print(
                f"{COMMANDS} says something else than --help: python docs/reference.py writes it anew", file=sys.stderr
            )
            return 1
        return 0
    COMMANDS.write_text(written)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
