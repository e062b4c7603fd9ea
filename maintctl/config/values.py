"""Reading one value: where it came from (the environment, then the .env
file), and what it must be (a duration, a whole number, yes or no), each
refusal a ConfigError naming the variable and the file it was found in."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from maintctl.timestamps import parse_duration, quoted


class ConfigError(Exception):
    """The command line or the configuration is wrong; the message says what."""


class Sources:
    """Looks a name up in the environment, then in the .env file, and says
    where each value came from so that an error can name it."""

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ
        self.env_file, self.dotenv = read_env_file(environ)

    def get(self, *names: str) -> tuple[str | None, str]:
        for layer, where in ((self.environ, ""), (self.dotenv, f" in {self.env_file}")):
            for name in names:
                value = layer.get(name)
                if value not in (None, ""):
                    return value, f"{name}{where}"
        return None, names[0]


def read_env_file(environ: Mapping[str, str]) -> tuple[Path | None, dict[str, str]]:
    named = environ.get("MAINTCTL_ENV_FILE")
    path = Path(named) if named else Path(".env")
    try:
        exists = path.is_file()
    except OSError as error:
        raise ConfigError(f"MAINTCTL_ENV_FILE: cannot be read ({error.strerror})") from None
    if not exists:
        if named:
            raise ConfigError(f"MAINTCTL_ENV_FILE: {path} does not exist")
        return None, {}
    from dotenv import dotenv_values  # only paid for where a .env file exists

    try:
        values = dotenv_values(path)
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read ({error})") from None
    return path, {key: value for key, value in values.items() if value is not None}


def optional_path(text: str | None) -> Path | None:
    return Path(text).expanduser() if text else None


def at_least_one(number: int | None, source: str) -> int | None:
    if number is not None and number < 1:
        raise ConfigError(f"{source}: {number} is not a positive whole number")
    return number


def yes(sources: Sources, name: str, default: bool = False) -> bool:
    text, source = sources.get(name)
    if text is None:
        return default
    if text.strip().lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ConfigError(f"{source}: {quoted(text)} is neither yes nor no")
    return text.strip().lower() in ("1", "true", "yes", "on")


def duration(sources: Sources, name: str, default: timedelta) -> timedelta:
    text, source = sources.get(name)
    if text is None:
        return default
    try:
        return parse_duration(text)
    except ValueError as error:
        raise ConfigError(f"{source}: {error}") from None


def seconds(sources: Sources, name: str, default: float, zero: bool = False) -> float:
    """Given a variable's name, return its duration in seconds (0 too where `zero` allows it)."""
    if zero and (sources.get(name)[0] or "").strip() in ("0", "0s"):
        return 0.0
    return duration(sources, name, timedelta(seconds=default)).total_seconds()


def positive_int(sources: Sources, name: str, default: int, maximum: int = 2**63 - 1) -> int:
    text, source = sources.get(name)
    if text is None:
        return default
    if not re.fullmatch(r"\s*[0-9]{1,19}\s*", text) or not 1 <= int(text) <= maximum:
        raise ConfigError(f"{source}: {quoted(text)} is not a whole number from 1 to {maximum:,}")
    return int(text)
