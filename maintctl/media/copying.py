"""The copy of the media directory that `backup --with-media` writes beside
the database's: regular files (with their bits and times), directories and
symbolic links (as links). Named pipes, sockets and devices hold no media and
cannot be copied as files: they are left out, and said so."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from maintctl.files import kind, printable
from maintctl.store.db import ActionError


def copy(media: Path, destination: Path) -> str | None:
    """Given the media directory and where its copy goes (nothing there yet),
    copy it, the copy made 0700 until it is whole (then given the media
    directory's bits); return a warning where files were left out. Raises
    ActionError where the copy cannot be made."""
    if not media.is_dir():
        raise ActionError(f"{printable(media)}: the media directory does not exist (drop --with-media?)")
    destination.mkdir(mode=0o700)
    try:
        left_out = copy_tree(media, destination)
    except OSError as error:
        named = printable(error.filename) if error.filename else printable(media)
        raise ActionError(f"the media copy failed: {named}: {error.strerror or error}") from None
    if not left_out:
        return None
    (first, first_kind), count = min(left_out), len(left_out)
    more = f", and {count - 1} more" if count > 1 else ""
    return (
        f"{printable(media)}: {count} file{'s' if count > 1 else ''} left out of the media copy (it takes regular"
        f" files, directories and links): {printable(first)}, {first_kind}{more}"
    )


def copy_tree(source: Path, destination: Path) -> list[tuple[Path, str]]:
    """Given a directory and an empty directory to copy it into, copy what it
    holds (each directory made 0700 until it is whole, then given its own
    bits); a file removed meanwhile is no longer there to copy. Return the
    files of other kinds left out, each with its kind."""
    left_out = []
    with os.scandir(source) as entries:
        for entry in entries:
            target = destination / entry.name
            try:
                if entry.is_symlink():
                    os.symlink(os.readlink(entry.path), target)
                elif entry.is_dir(follow_symlinks=False):
                    target.mkdir(mode=0o700)
                    left_out += copy_tree(Path(entry.path), target)
                elif entry.is_file(follow_symlinks=False):
                    shutil.copy2(entry.path, target, follow_symlinks=False)
                else:
                    left_out.append((Path(entry.path), kind(entry.stat(follow_symlinks=False).st_mode)))
            except FileNotFoundError:
                continue  # removed by the app while the copy was made
    shutil.copystat(source, destination, follow_symlinks=False)
    return left_out
