"""Which other processes have a file open or locked, as Linux tells in /proc:
each process's open files (/proc/PID/fd, readable for one's own user's
processes, or all as root) and every file lock (/proc/locks, readable by all).
Elsewhere nothing is found."""

from __future__ import annotations

import os
import re
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
    device: tuple[int, int]  # the major and minor number of the filesystem the file is on
    inode: int
    waiting: bool  # asked for, not yet granted


def file_locks() -> list[FileLock]:
    """Return the file locks the kernel lists in /proc/locks ([] where it
    cannot be read). Each names its file as MAJOR:MINOR:INODE, the device
    numbers in hexadecimal."""
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
        if (
            len(fields) >= 6
            and re.fullmatch(r"[0-9a-f]+:[0-9a-f]+:[0-9]+", fields[5])
            and fields[4].lstrip("-").isdigit()
        ):
            major, minor, inode = fields[5].split(":")
            found.append(FileLock(fields[1], int(fields[4]), (int(major, 16), int(minor, 16)), int(inode), waiting))
    return found


def locks_on(paths: list[Path]) -> list[tuple[FileLock, Path]]:
    """Given files, return the locks held on (or asked for) each, with the
    file: those on its device and inode, never another filesystem's file
    with the same inode number."""
    by_file: dict[tuple[tuple[int, int], int], Path] = {}
    for path in paths:
        try:
            status = path.stat()
        except OSError:
            continue  # not there: nobody has it locked
        for device in _devices(path, status):
            by_file[device, status.st_ino] = path
    return [(lock, by_file[lock.device, lock.inode]) for lock in file_locks() if (lock.device, lock.inode) in by_file]


def _devices(path: Path, status: os.stat_result) -> set[tuple[int, int]]:
    """Given a file and its status, return the devices that /proc/locks may
    name its filesystem by: its st_dev, and the device of the mount it lies
    on, which is what /proc/locks gives (on btrfs, st_dev names a subvolume
    instead)."""
    devices = {(os.major(status.st_dev), os.minor(status.st_dev))}
    mounted = _mount_device(os.fsencode(os.path.realpath(path)))
    return devices | {mounted} if mounted else devices


def _mount_device(real: bytes) -> tuple[int, int] | None:
    """Given a resolved path, return the major and minor number of the mount
    it lies on, as /proc/self/mountinfo tells (None where it cannot be read)."""
    try:
        mounts = Path("/proc/self/mountinfo").read_bytes().splitlines()
    except OSError:
        return None
    device, longest = None, -1
    for line in mounts:  # ID PARENT MAJOR:MINOR ROOT MOUNT-POINT ...; of two mounts on one point, the later is seen
        fields = line.split()
        if len(fields) < 5 or not re.fullmatch(rb"[0-9]+:[0-9]+", fields[2]):
            continue
        point = re.sub(rb"\\([0-7]{3})", lambda escape: bytes([int(escape[1], 8)]), fields[4])  # \040 is a space
        if (real == point or real.startswith(point.rstrip(b"/") + b"/")) and len(point) >= longest:
            major, minor = fields[2].split(b":")
            device, longest = (int(major), int(minor)), len(point)
    return device


def holders(paths: list[Path]) -> list[Holder]:
    """Given files, return the other processes that have one of them open or
    hold (or wait for) a lock on one, each once, with those of the files it has."""
    own = os.getpid()
    by_target: dict[str, Path] = {}
    for path in paths:
        if path.exists():
            by_target[os.path.realpath(path)] = path
    found = {(lock.pid, path) for lock, path in locks_on(paths)}
    for pid in _process_ids():
        for target in _open_files(pid):
            if target in by_target:
                found.add((pid, by_target[target]))
    return [
        Holder(pid, _command(pid), tuple(sorted(path for other, path in found if other == pid)))
        for pid in sorted({pid for pid, _ in found} - {own})
    ]


def running(pid) -> bool:
    """Given a process id, return whether a process of this host has it (another user's counts)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


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
