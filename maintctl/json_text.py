"""Text as maintctl writes it: JSON (non-ASCII kept as it is) from one
encoder made once (json.dumps with options builds a new encoder for every
call), and lines that stay one line."""

import json

encode = json.JSONEncoder(ensure_ascii=False).encode


def one_line(text: str, longest: int = 1000) -> str:
    """Given a message, return it as one line: line breaks and other control
    characters escaped (so that no value can forge a line of its own), and
    cut short past `longest` characters."""
    escaped = "".join(
        character if character.isprintable() or character == "\t" else repr(character)[1:-1] for character in text
    )
    return escaped if len(escaped) <= longest else escaped[: longest - 1] + "…"


def storable(value):
    """Given a value to bind to SQLite, return it as SQLite can take it: text
    that holds bytes that are not UTF-8 (a path's, say, as Python gives them)
    with those bytes as U+FFFD; anything else as it is."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return value.encode(errors="surrogateescape").decode(errors="replace")
    return value
