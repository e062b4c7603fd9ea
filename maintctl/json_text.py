"""Text as maintctl writes it: JSON (non-ASCII kept as it is) from one
encoder made once (json.dumps with options builds a new encoder for every
call), strict whatever it is given, and lines that stay one line."""

import json
import math

_COMPACT = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
_INDENTED = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=2).encode


def encode(value) -> str:
    """Given a value, return it as compact strict JSON (see `finite`)."""
    try:
        return _COMPACT(value)
    except ValueError:
        return _COMPACT(finite(value))


def document(value) -> str:
    """Given a document to print, return it as strict JSON, indented: NaN
    and the infinities (which JSON has no word for, and parsers in other
    languages refuse) as null."""
    try:
        return _INDENTED(value)
    except ValueError:
        return _INDENTED(finite(value))


def finite(value):
    """Given a value made of JSON's types, return it with every float that
    is not finite (NaN, Infinity, a number such as 1e999 past a double's
    range) as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def has_non_finite(value) -> bool:
    """Given a value made of JSON's types, return whether it holds a float that is not finite."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(has_non_finite(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_non_finite(item) for item in value)
    return False


def one_line(text: str, longest: int = 1000) -> str:
    """Given a message, return it as one line: line breaks and other control
    characters escaped (so that no value can forge a line of its own), and
    cut short past `longest` characters."""
    escaped = "".join(
        character if character.isprintable() or character == "\t" else repr(character)[1:-1] for character in text
    )
    return escaped if len(escaped) <= longest else escaped[: longest - 1] + "…"
