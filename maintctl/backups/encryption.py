"""Copies encrypted in the age format (age-encryption.org/v1) to public keys
only, so that the host writing them, and the store keeping them, hold
nothing that reads them; `age -d -i KEYFILE` reads them as well as maintctl.
Files are streamed through a small buffer, whatever their size.

MAINTCTL_BACKUP_RECIPIENTS holds the recipients (`age1…` X25519 keys or
`ssh-ed25519`/`ssh-rsa` public keys, separated by spaces or commas), or the
path of a file of them, one a line (`#` begins a comment), as age's `-R`
reads. MAINTCTL_BACKUP_IDENTITY is the path of an identity file (the
`AGE-SECRET-KEY-1…` lines age-keygen writes), needed only to verify copies'
contents and to restore.
"""

from __future__ import annotations

import re
from pathlib import Path

from maintctl.config.values import ConfigError

SUFFIX = ".age"
_KEY = re.compile(r"(age1[0-9a-z]+|ssh-(ed25519|rsa) [A-Za-z0-9+/=]+)")


def recipients(written: str | None) -> list:
    """Given MAINTCTL_BACKUP_RECIPIENTS as written (None: not set), return
    the recipients (empty where none); raise ConfigError naming the one that
    is not a key, or the file that cannot be read."""
    if written is None or not written.strip():
        return []
    text = written.strip()
    source = "MAINTCTL_BACKUP_RECIPIENTS"
    if not _KEY.match(text):
        path = Path(text).expanduser()
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "not text"
            raise ConfigError(
                f"{source}: neither age recipients (age1…) nor a file of them: {path}: {reason}"
            ) from None
        source = f"{source} ({path})"
        lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        keys = [line for line in lines if line]
    else:
        keys = [key for key in re.split(r"[\s,]+", text) if key]
        keys = _joined_ssh_keys(keys)
    found = [_recipient(key, source) for key in keys]
    if not found:
        raise ConfigError(f"{source}: names no recipient")
    return found


def _joined_ssh_keys(words: list[str]) -> list[str]:
    """Given the words of a list of keys, return the keys (an ssh key is two words, its type and its body)."""
    keys: list[str] = []
    for word in words:
        if keys and keys[-1] in ("ssh-ed25519", "ssh-rsa"):
            keys[-1] += " " + word
        else:
            keys.append(word)
    return keys


def _recipient(key: str, source: str):
    import pyrage

    shown = key if len(key) <= 24 else key[:20] + "…"
    try:
        if key.startswith("ssh-"):
            return pyrage.ssh.Recipient.from_str(" ".join(key.split()[:2]))
        return pyrage.x25519.Recipient.from_str(key)
    except pyrage.RecipientError as error:
        raise ConfigError(f"{source}: {shown} is not an age recipient ({error})") from None


def identities(path: Path | None) -> list:
    """Given MAINTCTL_BACKUP_IDENTITY's path, return the identities in it;
    raise ConfigError where it is unset, unreadable or holds none (never
    repeating what it holds)."""
    import pyrage

    if path is None:
        raise ConfigError("MAINTCTL_BACKUP_IDENTITY is not set: an encrypted copy cannot be read without it")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not text"
        raise ConfigError(f"MAINTCTL_BACKUP_IDENTITY: {path}: {reason}") from None
    found = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            found.append(pyrage.x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            raise ConfigError(f"MAINTCTL_BACKUP_IDENTITY: {path}: line {number} is not an age identity") from None
    if not found:
        raise ConfigError(f"MAINTCTL_BACKUP_IDENTITY: {path} holds no age identity (AGE-SECRET-KEY-1…)")
    return found


def encrypt(source: Path, target: Path, to: list) -> None:
    """Given a file, write it encrypted to the recipients at target (created, private)."""
    import pyrage

    with open(source, "rb") as reading, open(target, "xb") as writing:
        target.chmod(0o600)
        pyrage.encrypt_io(reading, writing, to)


class NotReadable(Exception):
    """An encrypted copy the identities cannot read, or that is damaged."""


def decrypt(source: Path, target: Path, keys: list) -> None:
    """Given an encrypted file, write what it holds at target (created, private); raise NotReadable."""
    import pyrage

    with open(source, "rb") as reading, open(target, "xb") as writing:
        target.chmod(0o600)
        try:
            pyrage.decrypt_io(reading, writing, keys)
        except pyrage.DecryptError as error:
            raise NotReadable(f"cannot be decrypted with MAINTCTL_BACKUP_IDENTITY's keys ({error})") from None
