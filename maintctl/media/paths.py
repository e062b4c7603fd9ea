"""Where a memory's media path leads, inside the media directory.

A path names a file by its last component: the directories on the way are
resolved, links followed, but a last component that is a link stands for the
link itself (deleting it removes the link, never what it leads to). The
file's contents are what the path leads to with every link followed.
"""

from __future__ import annotations

import os
import stat
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from maintctl.files import printable
from maintctl.store.db import ActionError

# Links followed in a row before a path is taken to lead nowhere (Linux's own limit).
_MOST_LINKS = 40


class Located(NamedTuple):
    """Where a stored media path leads: the name that may be deleted, or why none may."""

    file: str | None
    problem: str | None = None


class MediaDirectory:
    """The media directory, resolved once, with the directories under it
    resolved once each (a batch's files mostly share a few directories), and
    its links found once, when first asked for."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.root = os.path.realpath(path)
        self._resolved: dict[str, str] = {}
        self._links: dict[str, list[str]] | None = None

    def locate(self, stored: str | None) -> Located:
        """Given a memory's media_local_path (relative paths are taken from the
        media directory), return the name it stands for (a link stays a link),
        where that name and what it leads to, links followed, are inside the
        media directory and the latter is a regular file; otherwise no file
        and, where the path leads somewhere it must not, the problem."""
        if not stored:
            return Located(None)
        if not isinstance(stored, str):
            return Located(None, f"media path {stored!r} is not text; left alone")
        try:
            name, real, status = self._resolve(os.path.join(self.path, stored))  # an absolute path stays as it is
        except (ValueError, OSError) as error:
            return Located(None, f"media path {stored!r} cannot be used ({error}); left alone")
        if not (self.inside(name) and self.inside(real)):
            return Located(None, f"media file {stored!r} is outside the media directory {self.path}; left alone")
        if status is None:
            if name != real:
                return Located(None, f"media path {stored!r} is a link that leads nowhere; left alone")
            return Located(None)  # already gone
        if not stat.S_ISREG(status.st_mode):
            return Located(None, f"media path {stored!r} is not a regular file; left alone")
        return Located(name)

    def inside(self, path: str) -> bool:
        """Given a resolved path, return whether it lies inside the media directory."""
        return path.startswith(self.root + os.sep)

    def chain(self, stored: str) -> list[str]:
        """Given a media path, return the names it passes through to its
        file: its own, then each link's target in turn (empty where the path
        cannot be used at all)."""
        names, path = [], os.path.join(self.path, stored)
        try:
            for _ in range(_MOST_LINKS):
                names.append(self._name(path))
                path = os.path.join(os.path.dirname(names[-1]), os.readlink(names[-1]))
        except OSError:
            pass  # not a link (or nothing there): the chain ends
        except ValueError:
            return []
        return names

    def links(self) -> dict[str, list[str]]:
        """Return, for each name that links inside the media directory lead to
        (directly or through other links), those links. The directory is
        walked on the first call only."""
        if self._links is None:
            self._links = defaultdict(list)
            for link in self._walk_links():
                for name in self.chain(link)[1:]:
                    self._links[name].append(link)
        return self._links

    def _walk_links(self) -> Iterator[str]:
        """Yield every symbolic link under the media directory. Each directory
        is read once, and entries are told apart by the type the directory
        listing gives (no status is asked of a regular file). A directory that
        cannot be read raises: no file is deleted while its links are unknown."""
        directories = [self.root]
        while directories:
            try:
                with os.scandir(directories.pop()) as entries:
                    for entry in entries:
                        if entry.is_symlink():
                            yield entry.path
                        elif entry.is_dir(follow_symlinks=False):
                            directories.append(entry.path)
            except FileNotFoundError:
                continue  # no media directory, or one removed meanwhile: no links there
            except OSError as error:
                raise ActionError(
                    f"{printable(error.filename)}: cannot be read ({error.strerror}); no media file is deleted while"
                    " the links in it are unknown: they stay queued"
                ) from None

    def _resolve(self, candidate: str) -> tuple[str, str, os.stat_result | None]:
        """Return the name candidate stands for, the real path it leads to and
        the status of what is there (None where nothing is)."""
        name = self._name(candidate)
        status = _status(name, follow=False)
        if status is not None and stat.S_ISLNK(status.st_mode):
            real = os.path.realpath(name)
            return name, real, _status(real)
        return name, name, status

    def _name(self, candidate: str) -> str:
        """Return candidate with its directory resolved, links followed, and
        its last component as it is (all resolved where that is . or ..)."""
        parent, last = os.path.split(candidate)
        if last in ("", ".", ".."):
            return os.path.realpath(candidate)
        if parent not in self._resolved:
            self._resolved[parent] = os.path.realpath(parent)
        return os.path.join(self._resolved[parent], last)


def _status(path: str, follow: bool = True) -> os.stat_result | None:
    try:
        return os.stat(path, follow_symlinks=follow)
    except FileNotFoundError:
        return None
