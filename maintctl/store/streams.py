"""The app's readers of the streams maintctl writes: for each stream, its
consumer groups (XINFO GROUPS), each group's lag (entries not yet handed to
it) and its oldest entry not acknowledged, whether handed to the group and
pending (XPENDING's summary: the smallest pending id) or not yet handed (the
first entry after the group's last-delivered-id). An entry's age is read from
its id (the milliseconds Redis stamped it with) against the run's now.

Two pipelined round trips for every stream and group together, each command
O(1) or O(log n) in the stream's length, so that a run or `status` pays
about a millisecond for it. On a Redis Cluster the cluster client sends each
command to the node that holds the stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from maintctl.config.settings import Settings
from maintctl.store import outbox

# Redis 7 keeps a group's lag, but says NULL where it cannot tell (entries deleted after the group's last-delivered
# id, or an older Redis that has no lag at all); maintctl then counts the entries after that id, inside Redis
# (no entry crosses the network), up to this many: a count that reaches it means "at least". Redis is busy for
# the count: a thousand take it about 1.3 ms, ten thousand 14 ms (bench/readers.py).
LAG_COUNT_LIMIT = 1_000
COUNT_AFTER_LUA = "return #redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])"


class ReadError(Exception):
    """The streams could not be read (Redis does not answer); the reason never holds the password."""


@dataclass
class Group:
    """One consumer group of a stream, as its reader left it."""

    group: str
    consumers: int
    pending: int  # handed to the group's consumers, not acknowledged
    last_delivered_id: str
    lag: int  # entries not yet handed to the group
    lag_exact: bool = True  # False: counted by maintctl up to LAG_COUNT_LIMIT and reached it ("at least")
    oldest_pending_id: str | None = None
    oldest_pending_seconds: float | None = None
    oldest_unread_id: str | None = None  # the first entry after last_delivered_id
    oldest_unread_seconds: float | None = None

    @property
    def oldest_unacknowledged_seconds(self) -> float | None:
        """Return the age of the oldest entry the group has not acknowledged, handed to it or not (None: none)."""
        ages = [age for age in (self.oldest_pending_seconds, self.oldest_unread_seconds) if age is not None]
        return max(ages) if ages else None

    def as_json(self) -> dict:
        return {
            "group": self.group,
            "consumers": self.consumers,
            "lag": self.lag,
            "lag_exact": self.lag_exact,
            "pending": self.pending,
            "last_delivered_id": self.last_delivered_id,
            "oldest_unacknowledged_seconds": self.oldest_unacknowledged_seconds,
            "oldest_pending_id": self.oldest_pending_id,
            "oldest_pending_seconds": self.oldest_pending_seconds,
            "oldest_unread_id": self.oldest_unread_id,
            "oldest_unread_seconds": self.oldest_unread_seconds,
        }


@dataclass
class Stream:
    """One stream maintctl writes, and its consumer groups."""

    stream: str
    exists: bool
    length: int = 0
    groups: list[Group] = field(default_factory=list)
    error: str | None = None  # the key holds something else than a stream

    @property
    def no_groups(self) -> bool:
        return self.error is None and not self.groups

    def as_json(self) -> dict:
        return {
            "stream": self.stream,
            "exists": self.exists,
            "length": self.length,
            "no_groups": self.no_groups,
            "groups": [group.as_json() for group in self.groups],
            "error": self.error,
        }


def written(settings: Settings) -> list[str]:
    """Given the settings, return the streams maintctl writes: the notifications' and the jobs' (once each)."""
    return list(dict.fromkeys((settings.stream, settings.job_stream)))


def watched(settings: Settings) -> list[Stream]:
    """Given the settings (the Redis URL, the streams, now), return each stream maintctl writes with its
    groups. Raise ReadError where Redis cannot be asked."""
    import redis

    try:
        client = outbox.redis_client(settings)
    except outbox.DeliveryError as error:
        raise ReadError(str(error)) from None
    try:
        return read(client, written(settings), settings.now)
    except (redis.RedisError, OSError, ValueError, TypeError, UnicodeError) as error:
        raise ReadError(outbox.describe_error(error, settings)) from None
    finally:
        client.close()


def read(client, names: list[str], now: datetime) -> list[Stream]:
    """Given a Redis client (or a cluster's), the streams' names and now, return each stream and its groups:
    one pipeline asks each stream's type, length and groups; a second asks each group's pending summary, its
    first entry not yet handed to it and, where Redis does not keep it, its lag."""
    first = client.pipeline(transaction=False)
    for name in names:
        first.type(name)
        first.xlen(name)
        first.xinfo_groups(name)
    replies = first.execute(raise_on_error=False)
    streams, asked = [], []
    for index, name in enumerate(names):
        kind, length, groups = replies[3 * index : 3 * index + 3]
        kind = text(kind)
        if kind == "none":
            streams.append(Stream(name, exists=False))
        elif kind != "stream":
            streams.append(Stream(name, exists=True, error=f"the key {name} holds a {kind}, not a stream"))
        elif isinstance(groups, Exception):
            raise groups
        else:
            stream = Stream(name, exists=True, length=int(length))
            streams.append(stream)
            asked += [(stream, described) for described in groups]
    if not asked:
        return streams
    second = client.pipeline(transaction=False)
    for stream, described in asked:
        last = text(described["last-delivered-id"])
        second.xpending(stream.stream, described["name"])  # as Redis gave it: a name need not be UTF-8
        second.xrange(stream.stream, min=f"({last}", max="+", count=1)
        if described.get("lag") is None:
            second.eval(COUNT_AFTER_LUA, 1, stream.stream, f"({last}", LAG_COUNT_LIMIT)
    replies = iter(second.execute())
    for stream, described in asked:
        pending, unread = next(replies), next(replies)
        lag, exact = described.get("lag"), True
        if lag is None:
            lag = int(next(replies))
            exact = lag < LAG_COUNT_LIMIT
        group = Group(
            group=text(described["name"]),
            consumers=int(described["consumers"]),
            pending=int(pending["pending"]),
            last_delivered_id=text(described["last-delivered-id"]),
            lag=int(lag),
            lag_exact=exact,
        )
        if pending["pending"] and pending["min"] is not None:
            group.oldest_pending_id = text(pending["min"])
            group.oldest_pending_seconds = age(group.oldest_pending_id, now)
        if unread:
            group.oldest_unread_id = text(unread[0][0])
            group.oldest_unread_seconds = age(group.oldest_unread_id, now)
        stream.groups.append(group)
    return streams


def age(entry_id: str, now: datetime) -> float:
    """Given a stream entry's id and now, return how long ago Redis added the entry, in seconds (0 where
    the entry is from now's future: --now names an earlier instant)."""
    added = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(entry_id.partition("-")[0]))
    return round(max(0.0, (now - added).total_seconds()), 3)


def stuck(streams: list[Stream], stuck_after: timedelta) -> list[str]:
    """Given the streams read and MAINTCTL_STUCK_AFTER, return a line for each group whose oldest entry not
    acknowledged has waited longer than that (the app's reader is down), and for each key that is not a
    stream."""
    lines = []
    for stream in streams:
        if stream.error:
            lines.append(f"stream {stream.stream}: {stream.error}")
        for group in stream.groups:
            waited = group.oldest_unacknowledged_seconds
            if waited is None or waited <= stuck_after.total_seconds():
                continue
            handed = group.oldest_pending_seconds is not None and group.oldest_pending_seconds >= waited
            how = "handed to it and not acknowledged" if handed else "not yet handed to it"
            lines.append(
                f"stream {stream.stream}, group {group.group}: an entry has waited {duration(waited)}, {how}"
                f" (more than MAINTCTL_STUCK_AFTER, {duration(stuck_after.total_seconds())}): the app's reader is"
                f" down ({group.pending} pending, lag {group.lag}{'' if group.lag_exact else '+'})"
            )
    return lines


def duration(seconds: float) -> str:
    """Given seconds, return them as a person reads them: 40 s, 12 min, 3.5 h, 2.0 d."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def text(value) -> str:
    """Given what redis-py returns for a name or an id (bytes or str), return it as text."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
