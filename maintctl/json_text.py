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
