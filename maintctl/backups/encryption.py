"""Copies encrypted in the age format (age-encryption.org/v1) to public keys
only, so that the host writing them, and the store keeping them, hold
nothing that reads them; `age -d -i KEYFILE` reads them as well as maintctl.
Files are streamed through a small buffer, whatever their size.

MAINTCTL_BACKUP_RECIPIENTS holds the recipients (`age1…` X25519 keys or
`ssh-ed25519`/`ssh-rsa` public keys as .pub files write them, separated by
spaces or commas), or the
path of a file of them, one a line (`#` begins a comment), as age's `-R`
reads. MAINTCTL_BACKUP_IDENTITY is the path of an identity file (the
`AGE-SECRET-KEY-1…` lines age-keygen writes, or an ssh private key without
a passphrase), needed only to verify copies'
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
    """Given the words of a list of keys, return the keys (an ssh key is two words, its type and its body, and
    the word after them that begins no key is its comment, as a .pub file writes it: `ssh-ed25519 AAAA… me@host`)."""
    keys: list[str] = []
    for word in words:
        if keys and keys[-1] in ("ssh-ed25519", "ssh-rsa"):
            keys[-1] += " " + word
        elif keys and keys[-1].startswith("ssh-") and keys[-1].count(" ") == 1 and not _KEY.match(word):
            keys[-1] += " " + word  # its comment, dropped where it is read
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
    """Given MAINTCTL_BACKUP_IDENTITY's path, return the identities in it
    (the lines age-keygen writes, or an OpenSSH private key without a
    passphrase, as `age -d -i` reads); raise ConfigError where it is unset,
    unreadable or holds none (never repeating what it holds)."""
    import pyrage

    if path is None:
        raise ConfigError("MAINTCTL_BACKUP_IDENTITY is not set: an encrypted copy cannot be read without it")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not text"
        raise ConfigError(f"MAINTCTL_BACKUP_IDENTITY: {path}: {reason}") from None
    if text.lstrip().startswith("-----BEGIN OPENSSH PRIVATE KEY-----"):
        try:
            return [pyrage.ssh.Identity.from_buffer(text.encode())]
        except pyrage.IdentityError:
            raise ConfigError(
                f"MAINTCTL_BACKUP_IDENTITY: {path}: an ssh key that cannot be read (one with a passphrase cannot)"
            ) from None
    lines = text.splitlines()
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
    with open(source, "rb") as reading, open(target, "xb") as writing:
        target.chmod(0o600)
        decrypt_stream(reading, writing, keys)


def decrypt_stream(reading, writing, keys: list) -> None:
    """Given a readable binary stream of an encrypted copy and a writable one, write what it holds; raise
    NotReadable."""
    import pyrage

    try:
        pyrage.decrypt_io(reading, writing, keys)
    except pyrage.DecryptError as error:  # the header: not for these keys, or damaged
        raise NotReadable(f"cannot be decrypted with MAINTCTL_BACKUP_IDENTITY's keys ({error})") from None
    except OSError as error:
        if error.errno is not None:  # the disk, not the copy
            raise
        raise NotReadable(f"is damaged: a part of it fails its authentication ({error})") from None
