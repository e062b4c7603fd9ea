"""Which other processes have a file open or locked, as Linux tells in /proc:
each process's open files (/proc/PID/fd, readable for one's own user's
processes, or all as root) and every file lock (/proc/locks, readable by all).
Elsewhere nothing is found."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str
    paths: tuple[Path, ...]  # the files it has open or locked

    def describe(self) -> str:
        return f"pid {self.pid} ({self.command}) has {', '.join(path.name for path in self.paths)} open"


@dataclass(frozen=True)
class FileLock:
    kind: str  # POSIX (SQLite's), FLOCK (maintctl's own), OFDLCK, ...
    pid: int  # -1 for a lock that belongs to an open file, not a process (OFDLCK)
    inode: int
    waiting: bool  # asked for, not yet granted


def file_locks() -> list[FileLock]:
    """Return the file locks the kernel lists in /proc/locks ([] where it cannot be read)."""
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        fields = line.split()
        waiting = len(fields) > 1 and fields[1] == "->"
        if waiting:
            del fields[1]
        if len(fields) >= 6 and fields[5].count(":") == 2:
            pid, inode = fields[4], fields[5].rsplit(":", 1)[1]
            if pid.lstrip("-").isdigit() and inode.isdigit():
                found.append(FileLock(fields[1], int(pid), int(inode), waiting))
    return found


def holders(paths: list[Path]) -> list[Holder]:
    """Given files, return the other processes that have one of them open or
    hold (or wait for) a lock on one, each once, with those of the files it has."""
    own = os.getpid()
    by_target: dict[str, Path] = {}
    by_inode: dict[int, Path] = {}
    for path in paths:
        try:
            by_inode[path.stat().st_ino] = path
        except OSError:
            continue  # not there: nobody has it open
        by_target[os.path.realpath(path)] = path
    found = {(lock.pid, by_inode[lock.inode]) for lock in file_locks() if lock.inode in by_inode}
    for pid in _process_ids():
        for target in _open_files(pid):
            if target in by_target:
                found.add((pid, by_target[target]))
    return [
        Holder(pid, _command(pid), tuple(sorted(path for other, path in found if other == pid)))
        for pid in sorted({pid for pid, _ in found} - {own})
    ]


def _process_ids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def _open_files(pid: int) -> list[str]:
    """Given a process, return the paths of the files it has open ([] where
    it has ended or is not ours to look at)."""
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []
    targets = []
    for descriptor in descriptors:
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{descriptor}"))
        except OSError:
            continue
    return targets


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() or "?"
    except OSError:
        return "?" if pid > 0 else "an open file's lock"
