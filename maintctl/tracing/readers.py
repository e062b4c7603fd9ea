"""The stream's side of a trace: for one entry, what each consumer group of
its stream did with it. Read only: XINFO GROUPS, XPENDING and XRANGE of
exactly that entry (and GET of its dedup key where its outbox row is gone);
never XREADGROUP, XACK or XCLAIM, so no group's state moves. On a Redis
Cluster the client sends each command to the node of the stream's slot."""

from __future__ import annotations

from dataclasses import dataclass

from maintctl.store.streams import text


@dataclass
class GroupState:
    group: str
    read: bool  # handed the entry: its id is at or before the group's last-delivered-id
    pending: bool
    consumer: str | None = None
    idle_ms: int | None = None
    deliveries: int | None = None

    def as_json(self) -> dict:
        return {
            "group": self.group,
            "read": self.read,
            "pending": self.pending,
            "consumer": self.consumer,
            "idle_ms": self.idle_ms,
            "deliveries": self.deliveries,
        }


@dataclass
class StreamSide:
    stream_exists: bool
    entry_present: bool  # still in the stream (not trimmed away nor deleted)
    groups: list[GroupState]


def entry_key(entry_id: str) -> tuple[int, int]:
    """Given a stream entry id ('ms-seq'), return it as numbers, to compare ids as Redis does."""
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds), int(sequence or 0)


def sent_entry(client, key: str) -> str | None:
    """Given the dedup key delivery set for a msg_id, return the entry id it holds (None once it expired)."""
    value = client.get(key)
    return text(value) if value is not None else None


class NotAStream(Exception):
    """The stream's key holds something else: no reader can read it."""


def read_side(client, stream: str, entry_id: str) -> StreamSide:
    """Given a client, a stream and an entry id, return whether the entry is
    still there and, per consumer group, whether the group has been handed
    it and whether it waits for an acknowledgement (by whom, idle how long,
    delivered how often)."""
    import redis

    kind = text(client.type(stream))
    if kind == "none":
        return StreamSide(False, False, [])
    if kind != "stream":
        raise NotAStream(f"the key {stream} holds a {kind}, not a stream")
    entry_present = bool(client.xrange(stream, min=entry_id, max=entry_id, count=1))
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:  # the key is there but holds no stream
        return StreamSide(False, False, [])
    wanted = entry_key(entry_id)
    states = []
    for group in groups:
        name = text(group["name"])
        read = wanted <= entry_key(text(group["last-delivered-id"]))
        asked = group["name"]  # as Redis gave it: a name need not be UTF-8
        pending = client.xpending_range(stream, asked, min=entry_id, max=entry_id, count=1) if read else []
        if pending:
            (held,) = pending
            states.append(
                GroupState(
                    name,
                    True,
                    True,
                    text(held["consumer"]),
                    int(held["time_since_delivered"]),
                    int(held["times_delivered"]),
                )
            )
        else:
            states.append(GroupState(name, read, False))
    return StreamSide(True, entry_present, states)
