"""Notifications: queued in the database inside the change's transaction,
delivered to the Redis stream after it commits.

Delivery is effectively once. Each notification has a msg_id that never
changes; a small Lua script adds the stream entry only if that msg_id has not
been sent before (SET of a dedup key and XADD in one atomic step), so a run
killed between XADD and marking the row delivered, or two runs delivering at
once, never put an entry in the stream twice.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote, urlsplit

from maintctl import json_text, timestamps
from maintctl.config.settings import Settings
from maintctl.config.urls import redact_url
from maintctl.store import identity
from maintctl.store.db import table_exists, transaction

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS maintctl_outbox (
    id INTEGER PRIMARY KEY,
    msg_id TEXT NOT NULL,
    message TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    delivered_at TEXT,
    stream_id TEXT
)"""

INDEXES = ("CREATE INDEX IF NOT EXISTS maintctl_outbox_undelivered ON maintctl_outbox (id) WHERE delivered_at IS NULL",)

# KEYS[1]: the stream. ARGV[1]: the dedup keys' prefix, ARGV[2]: their TTL in
# seconds, ARGV[3]: a JSON array of [msg_id, data] pairs (one argument and one
# reply per call, not two arguments and a reply per notification: redis-py
# encodes and parses each in Python). Adds each entry unless its msg_id was
# sent already. The dedup keys are not declared in KEYS (they are known only
# inside), but share the stream's hash slot (dedup_prefix), so that on a
# cluster the script runs on the node that holds them all. Returns the stream
# entry ids, space-separated, an id that was there already marked with a '='.
SEND_ONCE_LUA = """
local ids = {}
for _, notification in ipairs(cjson.decode(ARGV[3])) do
  local msg_id, data = notification[1], notification[2]
  local key = ARGV[1] .. msg_id
  local sent = redis.call('GET', key)
  if sent then
    ids[#ids + 1] = '=' .. sent
  else
    local entry = redis.call('XADD', KEYS[1], '*', 'data', data, 'msg_id', msg_id)
    redis.call('SET', key, entry, 'EX', ARGV[2])
    ids[#ids + 1] = entry
  end
end
return table.concat(ids, ' ')
"""


Route = Callable[[str], "str | None"]  # given a msg_id, the stream it goes to (None: the notifications')
Delivered = Callable[[sqlite3.Connection, list[tuple[str, str]]], None]  # (msg_id, entry id) of those delivered


def dedup_prefix(stream: str, database_id: str) -> str:
    """Given the stream and the database's id, return the prefix of the keys
    that record a sent msg_id: one database's notifications never stand in
    for another's that shares the Redis, nor one stream's for another's (the
    stream's name in braces, or the stream's own hash tag where it has one,
    keeps the keys in its hash slot on a cluster)."""
    tag = re.match(r"[^{]*\{([^}]+)\}", stream)  # the hash tag Redis Cluster reads: the first {...}, not empty
    if tag is None:
        return f"maintctl:sent:{{{stream}}}:{database_id}:"
    return f"maintctl:sent:{{{tag[1]}}}:{stream}:{database_id}:"


SCRIPT_CHUNK = 500  # notifications per script call: Redis is busy with one call for about a millisecond


class DeliveryError(Exception):
    """Redis could not take the notifications; they stay queued."""


@dataclass
class Delivery:
    delivered: int = 0  # marked delivered in this run
    already_sent: int = 0  # of those, found in the stream already (a retry)
    streams: dict[str, int] = field(default_factory=dict)  # how many went to each stream


def queue(connection: sqlite3.Connection, notifications: Iterable[tuple[str, str]], settings: Settings) -> None:
    """Given (msg_id, message JSON) pairs, queue them (inside the caller's transaction)."""
    queued_at = timestamps.format_instant(settings.now)
    connection.executemany(
        "INSERT INTO maintctl_outbox (msg_id, message, queued_at) VALUES (?, ?, ?)",
        ((msg_id, message, queued_at) for msg_id, message in notifications),
    )


def undelivered_count(connection: sqlite3.Connection) -> int:
    """Return how many notifications are queued and not yet delivered."""
    if not table_exists(connection, "maintctl_outbox"):
        return 0
    (count,) = connection.execute("SELECT count(*) FROM maintctl_outbox WHERE delivered_at IS NULL").fetchone()
    return count


@dataclass
class QueueState:
    count: int = 0
    oldest: datetime | None = None  # when the oldest undelivered one was queued


def queue_state(connection: sqlite3.Connection) -> QueueState:
    """Return how many notifications wait for delivery, and since when."""
    if not table_exists(connection, "maintctl_outbox"):
        return QueueState()
    count, oldest = connection.execute(
        "SELECT count(*), min(queued_at) FROM maintctl_outbox WHERE delivered_at IS NULL"
    ).fetchone()
    return QueueState(count, timestamps.from_canonical(oldest) if oldest else None)


def redis_client(settings: Settings):
    """Return a client for the configured Redis, with its timeouts and no
    retries: fail fast, the next run is the retry, and nothing is lost
    meanwhile. A node of a Redis Cluster (or Valkey cluster) gets redis-py's
    cluster client, which follows the cluster's redirections and retries
    through a failover. Raise DeliveryError where the URL cannot be used or
    the server does not answer."""
    if settings.redis_problem:
        raise DeliveryError(settings.redis_problem)
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    timeouts = {"socket_connect_timeout": settings.redis_timeout, "socket_timeout": settings.redis_timeout}
    try:
        client = redis.Redis.from_url(settings.redis_url, retry=Retry(NoBackoff(), 0), **timeouts)
        if not client.info("cluster").get("cluster_enabled"):
            return client
        client.close()
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(settings.redis_url, **timeouts)
    except (ValueError, TypeError) as error:  # an option in the URL's query that redis-py cannot take
        raise DeliveryError(describe_error(error, settings)) from None
    except (redis.RedisError, OSError, UnicodeError) as error:
        raise DeliveryError(describe_error(error, settings)) from None


def is_cluster(client) -> bool:
    from redis.cluster import RedisCluster

    return isinstance(client, RedisCluster)


def probe(settings: Settings) -> tuple[str | None, str | None]:
    """Ask the configured Redis whether it answers and runs Lua scripts (as
    delivery needs); return its version, or else why not (never with the
    password)."""
    try:
        client = redis_client(settings)
    except DeliveryError as error:
        return None, str(error)
    import redis

    try:
        if is_cluster(client):
            info = client.info("server", target_nodes=client.get_random_node())
            version = info.get("redis_version", "?") + " (a cluster)"
        else:
            version = client.info("server").get("redis_version", "?")
        client.eval("return 1", 0)
    except (redis.RedisError, OSError, ValueError, TypeError, UnicodeError) as error:
        return None, describe_error(error, settings)
    finally:
        client.close()
    return version, None


def deliver(
    connection: sqlite3.Connection, settings: Settings, route: Route | None = None, delivered: Delivered | None = None
) -> Delivery:
    """Deliver every queued message to its stream (`route` says which; by
    default the notifications'), oldest first, a batch per pipeline, marking
    each batch delivered in one transaction, in which `delivered` is told of
    them too. Raise DeliveryError (the rest stay queued) when Redis cannot
    take them."""
    delivery = Delivery()
    if not undelivered_count(connection):
        return delivery
    client = redis_client(settings)
    database_id = identity.assign(connection)
    import redis  # paid for only when there is something to deliver

    send_once = client.register_script(SEND_ONCE_LUA)
    cluster = is_cluster(client)
    replicas: dict[str, int] = {}  # per stream, the replicas of the node that holds it
    ttl = max(1, int(settings.dedup_ttl.total_seconds()))
    delivered_at = timestamps.format_instant(settings.now)
    try:
        while connection.may_go_on() and (
            batch := connection.execute(
                "SELECT id, msg_id, message FROM maintctl_outbox WHERE delivered_at IS NULL ORDER BY id LIMIT ?",
                (settings.batch_size,),
            ).fetchall()
        ):
            by_stream: dict[str, list] = {}
            for row in batch:
                by_stream.setdefault((route and route(row[1])) or settings.stream, []).append(row)
            batch = [row for rows in by_stream.values() for row in rows]  # in the order the replies come
            # One pipeline for them all; on a cluster, a call per chunk (each to the node of its stream's slot).
            pipe = None if cluster else client.pipeline(transaction=False)
            replies = []
            for stream, rows in by_stream.items():
                prefix = dedup_prefix(stream, database_id)
                for start in range(0, len(rows), SCRIPT_CHUNK):
                    pairs = json_text.encode(
                        [(msg_id, message) for _, msg_id, message in rows[start : start + SCRIPT_CHUNK]]
                    )
                    replies.append(send_once(keys=[stream], args=[prefix, ttl, pairs], client=pipe or client))
            entries = [entry for chunk in (pipe.execute() if pipe else replies) for entry in chunk.decode().split(" ")]
            if cluster:
                for stream in by_stream:
                    _replicated(client, stream, settings, replicas)
            with transaction(connection):
                connection.executemany(
                    "UPDATE maintctl_outbox SET delivered_at = ?, stream_id = ? WHERE id = ? AND delivered_at IS NULL",
                    ((delivered_at, entry.lstrip("="), row_id) for (row_id, _, _), entry in zip(batch, entries)),
                )
                if delivered is not None:
                    delivered(
                        connection, [(msg_id, entry.lstrip("=")) for (_, msg_id, _), entry in zip(batch, entries)]
                    )
            delivery.delivered += len(batch)
            for stream, rows in by_stream.items():
                delivery.streams[stream] = delivery.streams.get(stream, 0) + len(rows)
            delivery.already_sent += sum(1 for entry in entries if entry.startswith("="))
    except (redis.RedisError, OSError, ValueError, TypeError, UnicodeError) as error:  # the socket layer's own, too
        raise DeliveryError(describe_error(error, settings)) from None
    finally:
        client.close()
    return delivery


def _replicated(client, stream: str, settings: Settings, replicas: dict[str, int]) -> None:
    """On a cluster, where the node that holds the stream has replicas, wait
    (WAIT) until one holds what was just added: a master can acknowledge an
    entry and die before its replica has it, and what a replica does not
    hold is lost in the failover. Raise DeliveryError where none does within
    MAINTCTL_REDIS_TIMEOUT: the batch stays queued, and its retry adds
    nothing twice (the dedup keys travel with the entries)."""
    node = client.get_node_from_key(stream)
    if stream not in replicas:
        replicas[stream] = int(client.info("replication", target_nodes=node).get("connected_slaves", 0))
    if not replicas[stream]:
        return
    holding = client.execute_command("WAIT", 1, max(1, int(settings.redis_timeout * 1000)), target_nodes=node)
    if int(holding) < 1:
        raise DeliveryError(
            f"Redis at {redact_url(settings.redis_url)}: no replica of the node holding {stream} took the entries"
            f" within {settings.redis_timeout:g} s; they stay queued and are sent again, once"
        )


def describe_error(error: Exception, settings: Settings) -> str:
    """Given a Redis error, return a one-line reason that never holds the password."""
    reason = " ".join(str(error).split()) or type(error).__name__
    password = urlsplit(settings.redis_url).password
    for secret in {password, unquote(password or "")} - {None, ""}:
        reason = reason.replace(secret, "***")
    return f"Redis at {redact_url(settings.redis_url)}: {reason}"
