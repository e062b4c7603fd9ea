"""The retention rules of maintctl.toml (beside the database, or where
MAINTCTL_CONFIG says), read with the standard library's tomllib:

    [[retention]]
    name = "old-audit"          # how the rule is named in output, history and metrics
    table = "audit_log"
    timestamp = "created_at"    # compared as an instant, like every timestamp
    older_than = "180d"
    where = "action != 'fired'" # optional SQL condition

A file that is not TOML, a key that is unknown or missing, a value of the
wrong type, an age that is not a duration, a `where` that would reach
outside its parentheses or two rules of one name raise ConfigError naming
the file and what is wrong (exit 2)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from maintctl.config.settings import ConfigError
from maintctl.timestamps import parse_duration

_REQUIRED = ("name", "table", "timestamp", "older_than")
_OPTIONAL = ("where",)


@dataclass(frozen=True)
class Rule:
    name: str
    table: str
    timestamp: str
    age: timedelta
    age_text: str  # as the file says it
    where: str | None = None


def read_rules(path: Path) -> list[Rule]:
    """Given the rules file's path, return its rules ([] where there is no file)."""
    import tomllib

    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        document = tomllib.loads(text.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    unknown = sorted(set(document) - {"retention"})
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (the file holds [[retention]] rules)")
    entries = document.get("retention", [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ConfigError(f"{path}: retention must be a list of tables ([[retention]])")
    rules = [_rule(path, index, entry) for index, entry in enumerate(entries, start=1)]
    names = [rule.name for rule in rules]
    repeated = next((name for name in names if names.count(name) > 1), None)
    if repeated:
        raise ConfigError(f"{path}: two rules are named {repeated!r}")
    return rules


def _rule(path: Path, index: int, entry: dict) -> Rule:
    """Given the file, a rule's place in it and its keys, return the Rule."""
    where = f"{path}: rule {index}" + (f" ({entry['name']!r})" if isinstance(entry.get("name"), str) else "")
    unknown = sorted(set(entry) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (keys: {', '.join(_REQUIRED + _OPTIONAL)})")
    missing = [key for key in _REQUIRED if key not in entry]
    if missing:
        raise ConfigError(f"{where}: the key {missing[0]!r} is missing")
    for key in (*_REQUIRED, *_OPTIONAL):
        if key in entry and (not isinstance(entry[key], str) or not entry[key].strip()):
            raise ConfigError(f"{where}: {key} must be a text that is not empty")
    try:
        age = parse_duration(entry["older_than"])
    except ValueError as error:
        raise ConfigError(f"{where}: older_than: {error}") from None
    if "where" in entry and (problem := _where_problem(entry["where"])):
        raise ConfigError(f"{where}: where: {problem}")
    return Rule(entry["name"], entry["table"], entry["timestamp"], age, entry["older_than"], entry.get("where"))


_CLOSING = {"'": "'", '"': '"', "`": "`", "[": "]"}


def _where_problem(condition: str) -> str | None:
    """Given a rule's `where`, return why it cannot stand as one condition
    inside the parentheses that retention puts it in (None where it can):
    its parentheses must pair up outside quotes, and it may hold no comment
    (which would hide the closing one), no `;` and no parameter."""
    depth, index = 0, 0
    while index < len(condition):
        character = condition[index]
        if character in _CLOSING:
            end = condition.find(_CLOSING[character], index + 1)
            if end < 0:
                return "a quote is not closed"
            index = end + 1  # a doubled quote inside is two quoted parts side by side: the same to this count
            continue
        if condition.startswith(("--", "/*"), index):
            return "a comment (-- or /*) is not allowed"
        if character == ";":
            return "a ; is not allowed"
        if character in "?:@$" and not (index and (condition[index - 1].isalnum() or condition[index - 1] in "_$")):
            word = re.match(r"[?:@$][A-Za-z0-9_]*", condition[index:]).group()
            return f"a parameter ({word}) is not allowed"
        depth += {"(": 1, ")": -1}.get(character, 0)
        if depth < 0:
            return "its parentheses do not pair up"
        index += 1
    return "its parentheses do not pair up" if depth else None
