"""`maintctl backups`: this database's finished copies at each destination."""

from __future__ import annotations

import sys

import typer

from maintctl.cli.app import app, fail, opened
from maintctl.cli.options import DbOption, JsonOption, QuietOption, ToOption
from maintctl.config.flags import Flags
from maintctl.json_text import one_line
from maintctl.results import EXIT_FAILED


@app.command("backups")
def backups_command(
    db: DbOption = None,
    to: ToOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """This database's copies at each destination, oldest first: name, created_at, size, encrypted. A destination
    that cannot be listed is named with why (exit 1); the others are still listed."""
    from maintctl.backups import located
    from maintctl.backups.destinations import BadDestination
    from maintctl.show import views
    from maintctl.store import identity

    flags = Flags(db=db, backup_to=tuple(to or ()), json=json_output)
    with opened(flags, read_only=True) as (settings, connection):
        database_id = identity.read(connection)
    try:
        found = located.listed(settings.backup_to, settings.db, database_id)
    except BadDestination as error:
        raise typer.Exit(fail(str(error), json_output)) from None
    failed = [entry for entry in found if "error" in entry]
    if json_output and not (quiet and not failed):
        views.as_json({"destinations": found})
    elif not quiet:
        for entry in found:
            if "error" in entry:
                continue
            views.table(
                f"{entry['destination']}: {len(entry['copies'])} {'copy' if len(entry['copies']) == 1 else 'copies'}",
                ("name", "created_at", "size", "encrypted"),
                [
                    (copy["name"], copy["created_at"], f"{copy['size']:,}", copy["encrypted"])
                    for copy in entry["copies"]
                ],
            )
    for entry in failed:
        print(f"maintctl: error: {one_line(entry['error'])}", file=sys.stderr)
    raise typer.Exit(EXIT_FAILED if failed else 0)
