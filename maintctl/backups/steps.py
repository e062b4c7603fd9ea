"""What a backup does at its destinations, a step each: a copy written, an
old one deleted by retention, a leftover of an earlier pass removed. A dry
run shows the same steps without taking them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from maintctl import files

KINDS = ("written", "deleted")  # the counts; a leftover removed is said, not counted


@dataclass(slots=True)
class Step:
    kind: str  # written | deleted | removed (a leftover: a partial upload, a copy without its manifest, ...)
    destination: str  # as shown: without credentials
    name: str
    size: int
    path: Path | None = None  # the copy's path, at a plain directory
    warning: str | None = None

    def planned(self) -> dict:
        shown = {"id": self.name, "step": self.kind, "destination": self.destination, "bytes": self.size}
        return shown | ({"path": str(self.path)} if self.path else {})

    def describe(self) -> str:
        verb = {"written": "write", "deleted": "delete", "removed": "remove the leftover"}[self.kind]
        where = files.printable(self.path) if self.path else f"{self.name} at {self.destination}"
        return f"{verb} {where} ({self.size:,} bytes)"


def tally(steps: list[Step]) -> dict[str, int]:
    """Given the steps (taken, or planned in a dry run), return the counts: copies written and deleted."""
    return {kind: sum(1 for step in steps if step.kind == kind) for kind in KINDS}
