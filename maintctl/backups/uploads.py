"""Copies at a URL destination (`file://`, `s3://`): written create-only
(a name taken, by a copy or by a leftover, gives the next number: -2, -3,
...), counted as written only once the store reports the whole of it, and
its manifest written after it; a copy without its manifest is not finished.

What is read back: the stored object's size, which must be the file's. The
bytes themselves are checked on the way in, not read back: every request
carries the SHA-256 of its body in its signature (x-amz-content-sha256,
never UNSIGNED-PAYLOAD), which the store checks before it keeps a part, and
the copy into place is the store's own. An S3 ETag is no digest of a copy
written in parts or copied (it is not the MD5 of its bytes), so it is not
compared; `verify-backups` reads a copy back whole against its manifest's
sha256.

The next pass removes what an interrupted one left (a hidden partial
object, a copy without its manifest, a manifest without its copy), once it
is named with a time an hour or more from now: a run of this database
writing beside it at the same moment (another host's, say) is not robbed
of a copy it has not yet given its manifest. Incomplete multipart uploads
are not listed; the bucket's lifecycle rule (AbortIncompleteMultipartUpload)
removes them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from maintctl import files
from maintctl.backups import copies, keeping
from maintctl.backups.destinations import Bucket, DestinationError, Exists, Folder
from maintctl.backups.steps import Step

GRACE = timedelta(hours=1)  # a leftover named nearer now than this may be another run's copy under way


def leftovers(found: copies.Listing, now: datetime) -> list[str]:
    """Given what the database has at the destination, return the leftovers
    old enough to be removed (see GRACE)."""
    removable = []
    for name in found.leftovers:
        stamp = re.search(copies.STAMP, name)
        if stamp is None:
            continue
        at = datetime.strptime(f"{stamp[1].zfill(8)}T{stamp[2]}Z", "%Y%m%dT%H%M%SZ").replace(tzinfo=now.tzinfo)
        if abs(at - now) >= GRACE:
            removable.append(name)
    return removable


def plan(
    destination: Folder | Bucket, begins: str, now: datetime, size: int, encrypted: bool, rules: keeping.Rules | None
) -> list[Step]:
    """Given the copy's size and the rules (None: MAINTCTL_BACKUP_PRUNE=off),
    return what a pass would do at the destination, changing nothing."""
    found, sizes = _read(destination, begins)
    name, number = next_name(begins, now, encrypted, sizes)
    steps = [Step("removed", destination.shown, left, sizes.get(left, 0)) for left in leftovers(found, now)]
    steps.append(Step("written", destination.shown, name, size))
    new = copies.Copy(name, files.stamp(now), number, size, {})
    return steps + _past(destination, found, new, now, rules)


def write(
    destination: Folder | Bucket,
    begins: str,
    now: datetime,
    stored: Path,
    encrypted: bool,
    manifest: bytes,
    rules: keeping.Rules | None,
    progress=None,
) -> list[Step]:
    """Given the copy as it is to be stored (encrypted or not), its manifest and the rules (None: MAINTCTL_BACKUP_PRUNE=off),
    remove the leftovers of earlier passes, upload the copy create-only,
    check its size as stored, write its manifest, then delete the copies
    past the rules; return the steps. Raises the destination's error."""
    found, sizes = _read(destination, begins)
    steps = []
    if rules is not None:
        for left in leftovers(found, now):
            destination.delete(left)
            steps.append(Step("removed", destination.shown, left, sizes.get(left, 0)))
    name, number = next_name(begins, now, encrypted, sizes)
    size = stored.stat().st_size
    while True:
        try:
            destination.put(name, stored, progress)
            break
        except Exists:  # taken since it was listed: by another run of this database, say
            number += 1
            name = copies.name(begins, now, number, encrypted)
    stored_size = destination.sizes(name).get(name)
    if stored_size != size:
        raise DestinationError(f"{destination.shown}: {name} reads back as {stored_size} bytes, not the {size} sent")
    destination.put_bytes(name + copies.MANIFEST, manifest)
    steps.append(Step("written", destination.shown, name, size))
    new = copies.Copy(name, files.stamp(now), number, size, {})
    past = _past(destination, found, new, now, rules)
    for step in past:
        destination.delete(step.name + copies.MANIFEST)  # first: a copy half deleted is then no finished copy
        destination.delete(step.name)
    return steps + past


def next_name(begins: str, now: datetime, encrypted: bool, sizes: dict[str, int]) -> tuple[str, int]:
    """Given the names at the destination, return the first free name (and
    its number) for a copy taken now: after every copy, manifest or leftover
    of the same second."""
    stamp, taken = files.stamp(now), 0
    for stored in sizes:
        match = re.search(re.escape(begins) + copies.STAMP + r"(?:-(\d+))?\.sqlite3", stored)
        if match and f"{match[1].zfill(8)}T{match[2]}Z" == stamp:
            taken = max(taken, int(match[3] or 1))
    number = taken + 1
    return copies.name(begins, now, number, encrypted), number


def _read(destination: Folder | Bucket, begins: str) -> tuple[copies.Listing, dict[str, int]]:
    """Return the database's copies and leftovers at the destination, and each of its names there with its size."""
    found = copies.listing(destination, begins)
    return found, destination.sizes(begins) | destination.sizes(f".{begins}")


def _past(
    destination: Folder | Bucket, found: copies.Listing, new: copies.Copy, now: datetime, rules: keeping.Rules | None
) -> list[Step]:
    if rules is None:
        return []
    past = keeping.past_rules([*found.copies, new], rules, files.stamp(now))
    return [Step("deleted", destination.shown, copy.name, copy.size) for copy in past]
