"""optimize: SQLite's own housekeeping, once a day by default.

`PRAGMA quick_check` first: a damaged file fails the action, naming what was
found, and nothing is written to it. Then `PRAGMA optimize` (ANALYZE where
the query planner's statistics are missing or stale; a database never
analysed gets a first ANALYZE), each index read to at most 1,000 rows. Then
the WAL checkpointed into the database and truncated
(`wal_checkpoint(TRUNCATE)`; MAINTCTL_CHECKPOINT=off leaves that to
Litestream or LiteFS, which checkpoint themselves). A dry run checks the
file and says what it would analyse and checkpoint.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from maintctl.actions.base.kinds import Single
from maintctl.config.settings import Settings
from maintctl.store.db import ActionError, table_exists

# Rows ANALYZE reads of each index at most (SQLite's advice for PRAGMA
# optimize): statistics good enough for the planner, at a bounded cost
# however large the tables.
_ANALYSIS_LIMIT = 1000
_FRAME_HEADER = 24  # bytes before each page in a WAL file
_WAL_HEADER = 32


class Damaged(ActionError):
    """PRAGMA quick_check found the database damaged; the message says what it found."""


@dataclass(slots=True)
class Step:
    kind: str  # analysed | checkpointed | checked
    what: str  # the table analysed, the WAL, the database
    pages: int = 0  # checkpointed: WAL frames copied into the database
    bytes_freed: int = 0  # checkpointed: what the WAL file shrank by
    warning: str | None = None

    def planned(self) -> dict:
        return {"id": self.what, "step": self.kind, "pages": self.pages, "bytes_freed": self.bytes_freed}

    def describe(self) -> str:
        if self.kind == "analysed":
            return f"analyse {self.what}"
        if self.kind == "checkpointed":
            return f"checkpoint {self.pages} WAL pages into the database, freeing {self.bytes_freed:,} bytes"
        return f"check {self.what} (PRAGMA quick_check)"


def perform(connection: sqlite3.Connection, settings: Settings) -> list[Step]:
    """Check, analyse and checkpoint the database (in a dry run: check it,
    and say what would be analysed and checkpointed); return the steps.
    Raise Damaged where quick_check finds the file damaged, before anything
    is written."""
    found = [" ".join(row[0].split()) for row in connection.execute("PRAGMA quick_check")]
    if found != ["ok"]:  # checked first: nothing is written to a damaged file
        shown = "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3 else "")
        raise Damaged(f"the database is damaged: PRAGMA quick_check found: {shown}")
    connection.execute(f"PRAGMA analysis_limit = {_ANALYSIS_LIMIT}")
    never_analysed = not table_exists(connection, "sqlite_stat1")
    steps = [
        Step("analysed", table)
        for table in (_indexed_tables(connection) if never_analysed else _to_analyse(connection))
    ]
    if not settings.dry_run:
        connection.execute("ANALYZE" if never_analysed else "PRAGMA optimize")
    if settings.checkpoint:
        steps.extend(_checkpoint(connection, settings))
    return [*steps, Step("checked", str(settings.db))]


def _indexed_tables(connection: sqlite3.Connection) -> list[str]:
    """Return the tables that have indexes: what a first ANALYZE gives the query planner statistics of."""
    return [
        name
        for (name,) in connection.execute(
            "SELECT DISTINCT tbl_name FROM sqlite_schema WHERE type = 'index' AND tbl_name NOT LIKE 'sqlite_%'"
            " ORDER BY tbl_name"
        )
    ]


def _to_analyse(connection: sqlite3.Connection) -> list[str]:
    """Return the tables PRAGMA optimize would analyse now (its debugging
    mode, 0x01, lists them and changes nothing)."""
    return [
        row[0].removeprefix("ANALYZE ").strip('"')
        for row in connection.execute("PRAGMA optimize(0x03)")
        if row[0].startswith("ANALYZE ")
    ]


def _checkpoint(connection: sqlite3.Connection, settings: Settings) -> list[Step]:
    """Checkpoint the WAL into the database and truncate it (in a dry run:
    say how much there is); return the step, none where the database is
    not in WAL mode."""
    wal = Path(f"{settings.db}-wal")
    (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
    if mode.lower() != "wal":
        return []
    before = wal.stat().st_size if wal.exists() else 0
    (page_size,) = connection.execute("PRAGMA page_size").fetchone()
    pages = max(0, before - _WAL_HEADER) // (page_size + _FRAME_HEADER)  # TRUNCATE reports none once it is done
    if settings.dry_run:
        return [Step("checkpointed", "WAL", pages=pages, bytes_freed=before)]
    busy, frames, copied = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    after = wal.stat().st_size if wal.exists() else 0
    step = Step("checkpointed", "WAL", pages=max(copied, 0) if busy else pages, bytes_freed=max(before - after, 0))
    if busy:
        step.warning = (
            f"the WAL was not truncated: another connection was using it ({max(frames, 0)} pages in it,"
            f" {max(copied, 0)} checkpointed); the next optimize tries again"
        )
    return [step]


def tally(steps: list[Step]) -> dict[str, int]:
    return {
        "tables_analysed": sum(1 for step in steps if step.kind == "analysed"),
        "wal_pages_checkpointed": sum(step.pages for step in steps),
        "bytes_freed": sum(step.bytes_freed for step in steps),
    }


ACTION = Single(perform=perform, tally=tally)
