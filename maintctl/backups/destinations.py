"""Where backups go, as the command line and MAINTCTL_BACKUP_TO name them:
a directory (a path), `file:///PATH`, or `s3://BUCKET/PREFIX` with the
store's options in its query (`endpoint=`, `region=`, `path_style=true`)
for any S3-compatible store: parsed here into a Folder (folder.py) or a
Bucket (bucket.py), each a flat set of named objects that it lists, writes
create-only, reads and deletes; what the objects are (copies, manifests) is
the backup's business.

Credentials for s3 come from the environment (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), never from the URL, and no
message repeats them: a destination is shown as its URL, which holds none.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from maintctl.backups.bucket import Bucket
from maintctl.backups.folder import Folder
from maintctl.backups.objects import DestinationError, Exists, Progress

__all__ = ["BadDestination", "Bucket", "Destination", "DestinationError", "Exists", "Folder", "Progress", "parse"]

_S3_OPTIONS = ("endpoint", "region", "path_style")


class BadDestination(ValueError):
    """A destination as written cannot be used at all (a configuration error)."""


Destination = Folder | Bucket


def parse(text: str) -> Destination:
    """Given a destination as written, return it; raise BadDestination
    naming what is wrong (a URL with credentials in it is named without them)."""
    if "://" not in text:
        if not text:
            raise BadDestination("a backup destination is empty")
        return Folder(Path(text), plain=True)
    scheme = text.partition("://")[0].lower()
    try:
        parts = urlsplit(text)
    except ValueError:
        raise BadDestination(f"the backup destination {scheme}://… cannot be read as a URL") from None
    if parts.username is not None or parts.password is not None:
        raise BadDestination(
            f"the backup destination {scheme}://… has credentials in it (not shown): give them in the environment"
            " (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), never in the URL"
        )
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise BadDestination(f"the backup destination {text} must be file:///ABSOLUTE/PATH")
        return Folder(Path(unquote(parts.path)), plain=False)
    if scheme != "s3":
        raise BadDestination(f"the backup destination {scheme}://… is not a directory, file:// or s3:// URL")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(_S3_OPTIONS))
    if unknown:
        raise BadDestination(
            f"the backup destination's query has {', '.join(unknown)}, which maintctl does not take"
            f" (it takes {', '.join(_S3_OPTIONS)}; credentials come from the environment)"
        )
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", parts.hostname or ""):
        raise BadDestination(
            f"the backup destination s3://{parts.netloc}… does not name a bucket (3 to 63 of a-z 0-9 . -)"
        )
    endpoint = options.get("endpoint")
    if endpoint is not None and not re.fullmatch(r"https?://[^\s/?#]+/?", endpoint):
        raise BadDestination(f"the backup destination's endpoint {endpoint!r} must be http(s)://HOST[:PORT]")
    shown = f"s3://{parts.hostname}{parts.path.rstrip('/')}" + (f"?{parts.query}" if parts.query else "")
    return Bucket(shown, parts.hostname, unquote(parts.path).strip("/"), options)
