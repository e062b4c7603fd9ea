"""A progress bar on stderr, on a terminal only, for a pass that takes more
than a moment; it is gone when the pass ends (the report says what was done)."""

from __future__ import annotations

import sys
import time

_A_MOMENT = 0.5  # seconds: passes shorter than this never show a bar


class Progress:
    def __init__(self, name: str, enabled: bool):
        self.name = name
        self.enabled = enabled and sys.stderr.isatty()
        self.began = time.monotonic()
        self.bar = None
        self.task = None

    def advance(self, done: int, remaining) -> None:
        """Given the items done so far and a callable that counts those left
        (asked once, only when a bar is shown), update or start the bar."""
        if not self.enabled:
            return
        if self.bar is None:
            if time.monotonic() - self.began < _A_MOMENT:
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn(self.name),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task(self.name, total=done + (remaining() or 0))
        self.bar.update(self.task, completed=done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
