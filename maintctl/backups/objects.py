"""What every destination's objects share: the errors that name a
destination without a secret, the size of a part read or sent at a time, and
what a transfer tells of the bytes it moved."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int], None]  # told the bytes moved since it was last told

CHUNK = 8 * 1024 * 1024  # bytes read or sent at a time: memory stays flat whatever the copy's size


class DestinationError(Exception):
    """A destination could not be used: the message names it and says why, never with a secret."""


class Exists(DestinationError):
    """An object of that name is already there (a create-only write was refused)."""
