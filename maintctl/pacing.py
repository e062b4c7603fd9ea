"""How a pass paces itself on the app's database: the size of its next batch within --max-items and
--max-seconds, how long it leaves the write lock free between transactions, and what it says of its
batches with -v. The batch loop (actions/base/batches.py) and retention's pass (retention/deleting.py)
share them."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from maintctl.config.settings import Settings

# Between transactions the write lock is left free this long: the longest a
# connection waiting on it with SQLite's busy timeout sleeps between tries,
# so that the app's writes get in rather than find it taken again.
LET_IN = 0.1


def batch_size(settings: Settings, done: int, deadline: float | None) -> tuple[int, str | None]:
    """Given the items done so far, return the next batch's size, or the
    limit that says no further batch is to begin (each action does at least
    one, so that none is starved)."""
    size = settings.batch_size
    if settings.max_items is not None:
        size = min(size, settings.max_items - done)
        if size <= 0:
            return 0, f"--max-items {settings.max_items}"
    if done and deadline is not None and time.monotonic() >= deadline:
        return 0, f"--max-seconds {settings.max_seconds:g}"
    return size, None


def say(settings: Settings, message: str) -> None:
    """With -v, tell stderr how the run goes."""
    if settings.verbose:
        print(f"maintctl: {message}", file=sys.stderr, flush=True)
