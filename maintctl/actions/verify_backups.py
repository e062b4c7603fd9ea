"""verify-backups: at each destination (--to, MAINTCTL_BACKUP_TO), fetch this
database's newest copy and one older copy chosen at random, and check them:
the bytes against the manifest's size and sha256; where
MAINTCTL_BACKUP_IDENTITY names an age identity file, the copy decrypted, the
SQLite file against the manifest's plain_sha256, and PRAGMA integrity_check
on it (a plain copy is checked so without an identity). A copy that does not
check out, or a destination that cannot be read, fails the action (exit 1),
naming the copy and the destination; the other destinations are still
checked. Each copy is streamed to a private temporary file beside the
database, removed once checked. A plain directory's copies from before
manifests are checked with integrity_check only.

The older copy is chosen by a draw seeded with the run's now and the
destination, so that a dry run at the same --now names the copies the run
would fetch. A database without copies anywhere (no backup yet) has nothing
to verify, and a note says so (status is what tells a destination without copies).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from maintctl import files, timestamps
from maintctl.actions.base.kinds import OwnPass
from maintctl.backups import copies, encryption, fetching, keeping, located
from maintctl.backups.destinations import BadDestination, DestinationError
from maintctl.backups.transfer import Transfer
from maintctl.config.settings import ConfigError, Settings
from maintctl.store import identity
from maintctl.store.db import ActionError, Connection


@dataclass(slots=True)
class Step:
    kind: str  # verified | failed | planned (a dry run: it would be fetched)
    destination: str  # as shown, without credentials
    copy: str | None  # None: the destination itself failed
    size: int = 0
    detail: str = ""  # what was checked, or why it failed
    warning: str | None = None

    def planned(self) -> dict:
        return {"id": self.copy, "destination": self.destination, "bytes": self.size, "step": self.kind}

    def describe(self) -> str:
        if self.kind == "planned":
            return f"fetch and check {self.copy} ({self.size:,} bytes) from {self.destination}"
        return f"{self.kind} {self.copy or self.destination}: {self.detail}"


def perform(connection: Connection, settings: Settings) -> list[Step]:
    """Check the chosen copies at each destination (in a dry run: say which
    it would fetch); return the steps. Raise ConfigError where a destination
    or the identity file cannot be used at all."""
    parsed = located.parsed(settings.backup_to)
    for destination in parsed:
        if isinstance(destination, BadDestination):
            raise ConfigError(str(destination))
    keys = encryption.identities(settings.backup_identity) if settings.backup_identity else None
    database_id = identity.read(connection)
    if database_id is None:
        return []
    begins = located.begins(settings.db, database_id)
    steps: list[Step] = []
    for destination in parsed:
        try:
            found = copies.listing(destination, begins).copies
        except DestinationError as error:
            steps.append(Step("failed", destination.shown, None, detail=str(error)))
            continue
        if not found:
            steps.append(Step("none", destination.shown, None, detail="no copy of this database to verify"))
            continue
        for copy in chosen(found, settings, destination.shown):
            if settings.dry_run:
                steps.append(Step("planned", destination.shown, copy.name, copy.size))
            else:
                steps.append(_verify(connection, settings, destination, copy, keys))
    return steps


def chosen(found: list[copies.Copy], settings: Settings, shown: str) -> list[copies.Copy]:
    """Given a destination's copies (oldest first), return the newest (as rotation orders them: keeping.order) and
    one older one drawn at random."""
    draw = random.Random(f"{timestamps.format_instant(settings.now)} {shown}")
    found = keeping.order(found, files.stamp(settings.now))
    return [found[-1], *([draw.choice(found[:-1])] if len(found) > 1 else [])]


def _verify(connection: Connection, settings: Settings, destination, copy: copies.Copy, keys: list | None) -> Step:
    """Fetch the copy and check it; return the step saying how it went."""
    step = Step("verified", destination.shown, copy.name, copy.size)
    bar = Transfer(f"verifying {copy.name}", copy.size, not (settings.quiet or settings.json))
    with fetching.workspace(settings.db.parent) as directory, bar as moved:

        def progress(count: int) -> None:
            connection.may_go_on()  # SIGTERM: the copy in hand is dropped, its file removed
            if moved:
                moved(count)

        try:
            fetched = fetching.fetch(destination, destination.shown, copy, directory, keys, progress)
        except (fetching.NotVerified, DestinationError) as error:
            step.kind, step.detail = "failed", str(error)
            return step
        checked = ["sha256"] if copy.manifest is not None else []
        if fetched.plain is None:
            step.detail = "; ".join([*checked, "not decrypted: MAINTCTL_BACKUP_IDENTITY is not set"])
            return step
        problems = fetching.integrity_problems(fetched.plain)
        if problems:
            step.kind = "failed"
            step.detail = f"{destination.shown}: {copy.name}: fails PRAGMA integrity_check ({'; '.join(problems[:3])})"
            return step
        if copy.encrypted:
            checked.append("decrypted")
        step.detail = ", ".join([*checked, *(["plain_sha256"] if copy.manifest else []), "integrity_check ok"])
    return step


def tally(steps: list[Step]) -> dict[str, int]:
    return {
        "verified": sum(1 for step in steps if step.kind in ("verified", "planned")),
        "failed": sum(1 for step in steps if step.kind == "failed"),
    }


def notes(connection: Connection, settings: Settings) -> list[str]:
    if identity.read(connection) is None:
        return ["the database has no id yet: no backup was taken of it, so there is nothing to verify"]
    return []


class VerifyFailed(ActionError):
    """A copy that is not what its manifest says, or a destination that cannot be read."""


def run(connection: Connection, settings: Settings, result, deadline) -> None:
    """Check the copies, count what was checked, then fail where a copy or a destination did not check out."""
    steps = perform(connection, settings)
    result.add(tally(steps), steps)
    result.notes.extend(
        f"{step.destination}: {step.copy}: verified ({step.detail})"
        if step.kind == "verified"
        else f"{step.destination}: {step.detail}"
        for step in steps
        if step.kind in ("verified", "none")
    )
    failures = [step.detail for step in steps if step.kind == "failed"]
    if failures:
        raise VerifyFailed("; ".join(failures))


ACTION = OwnPass(preview=perform, run=run, tally=tally, notes=notes)
