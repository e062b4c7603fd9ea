"""Notifications: queued in the database inside the change's transaction,
delivered to the Redis stream after it commits.

Delivery is effectively once. Each notification has a msg_id that never
changes; a small Lua script adds the stream entry only if that msg_id has not
been sent before (SET of a dedup key and XADD in one atomic step), so a run
killed between XADD and marking the row delivered, or two runs delivering at
once, never put an entry in the stream twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from maintctl import timestamps
from maintctl.config import Settings, redact_url
from maintctl.db import table_exists, transaction

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS maintctl_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id TEXT NOT NULL UNIQUE,
    message TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    delivered_at TEXT,
    stream_id TEXT
)"""

INDEXES = ("CREATE INDEX IF NOT EXISTS maintctl_outbox_undelivered ON maintctl_outbox (id) WHERE delivered_at IS NULL",)

# KEYS[1] the stream, KEYS[2] the msg_id's dedup key; ARGV: data, msg_id, TTL.
# Returns the stream entry id and 1 when it added the entry, 0 when the
# msg_id had been sent already.
SEND_ONCE_LUA = """
local sent = redis.call('GET', KEYS[2])
if sent then return {sent, 0} end
local entry = redis.call('XADD', KEYS[1], '*', 'data', ARGV[1], 'msg_id', ARGV[2])
redis.call('SET', KEYS[2], entry, 'EX', ARGV[3])
return {entry, 1}
"""

DEDUP_PREFIX = "maintctl:sent:"


class DeliveryError(Exception):
    """Redis could not take the notifications; they stay queued."""


@dataclass
class Delivery:
    delivered: int = 0  # marked delivered in this run
    already_sent: int = 0  # of those, found in the stream already (a retry)


def ensure_table(connection: sqlite3.Connection) -> None:
    connection.execute(TABLE_SQL)


def queue(connection: sqlite3.Connection, notifications: Iterable[tuple[str, dict]], settings: Settings) -> None:
    """Given (msg_id, message) pairs, queue them (inside the caller's transaction)."""
    queued_at = timestamps.format_instant(settings.now)
    connection.executemany(
        "INSERT INTO maintctl_outbox (msg_id, message, queued_at) VALUES (?, ?, ?)",
        ((msg_id, json.dumps(message, ensure_ascii=False), queued_at) for msg_id, message in notifications),
    )


def undelivered_count(connection: sqlite3.Connection) -> int:
    """Return how many notifications are queued and not yet delivered."""
    if not table_exists(connection, "maintctl_outbox"):
        return 0
    (count,) = connection.execute("SELECT count(*) FROM maintctl_outbox WHERE delivered_at IS NULL").fetchone()
    return count


def deliver(connection: sqlite3.Connection, settings: Settings) -> Delivery:
    """Deliver every queued notification to the stream, oldest first, a batch
    per pipeline, marking each batch delivered in one transaction. Raise
    DeliveryError (the rest stay queued) when Redis cannot take them."""
    delivery = Delivery()
    if not undelivered_count(connection):
        return delivery
    import redis  # paid for only when there is something to deliver
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.redis_timeout,
        socket_timeout=settings.redis_timeout,
        retry=Retry(NoBackoff(), 0),  # fail fast: the next run is the retry, and nothing is lost meanwhile
    )
    send_once = client.register_script(SEND_ONCE_LUA)
    ttl = max(1, int(settings.dedup_ttl.total_seconds()))
    delivered_at = timestamps.format_instant(settings.now)
    try:
        while not connection.check_stop() and (
            batch := connection.execute(
                "SELECT id, msg_id, message FROM maintctl_outbox WHERE delivered_at IS NULL ORDER BY id LIMIT ?",
                (settings.batch_size,),
            ).fetchall()
        ):
            pipe = client.pipeline(transaction=False)
            for _, msg_id, message in batch:
                send_once(keys=[settings.stream, DEDUP_PREFIX + msg_id], args=[message, msg_id, ttl], client=pipe)
            results = pipe.execute()
            with transaction(connection):
                connection.executemany(
                    "UPDATE maintctl_outbox SET delivered_at = ?, stream_id = ? WHERE id = ? AND delivered_at IS NULL",
                    ((delivered_at, entry.decode(), row_id) for (row_id, _, _), (entry, _) in zip(batch, results)),
                )
            delivery.delivered += len(batch)
            delivery.already_sent += sum(1 for _, added in results if not added)
    except redis.RedisError as error:
        raise DeliveryError(_describe(error, settings)) from None
    finally:
        client.close()
    return delivery


def _describe(error: Exception, settings: Settings) -> str:
    """Given a Redis error, return a one-line reason that never holds the password."""
    reason = " ".join(str(error).split()) or type(error).__name__
    password = urlsplit(settings.redis_url).password
    for secret in {password, unquote(password or "")} - {None, ""}:
        reason = reason.replace(secret, "***")
    return f"Redis at {redact_url(settings.redis_url)}: {reason}"
