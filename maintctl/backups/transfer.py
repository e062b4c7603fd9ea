"""A bar for bytes moving to or from a destination, on stderr: only where
stderr is a terminal and the command was not asked for --quiet or --json,
so that cron mail and scripts never see it; gone once the copy is moved."""

from __future__ import annotations

import sys


class Transfer:
    """Use as `with Transfer(label, total, shown) as moved: ... moved(n)`; moved is None where no bar is shown."""

    def __init__(self, label: str, total: int, shown: bool):
        self.label, self.total = label, total
        self.shown = shown and sys.stderr.isatty()
        self.bar = None

    def __enter__(self):
        if not self.shown:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.bar.start()
        task = self.bar.add_task(self.label, total=self.total or None)
        return lambda count: self.bar.advance(task, count)

    def __exit__(self, *_: object) -> None:
        if self.bar is not None:
            self.bar.stop()
