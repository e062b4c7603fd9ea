"""URLs that may hold secrets: the Redis URL (parsed once, refused without
being shown where it cannot be read) and how any URL may be shown."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_ENCODE_HINT = "percent-encode a password's special characters: # as %23, / as %2F, ? as %3F, @ as %40, % as %25"
# The options redis-py reads from a URL's query (redis.connection.URL_QUERY_ARGUMENT_PARSERS and its own names).
_REDIS_QUERY_OPTIONS = {
    "db",
    "username",
    "password",
    "socket_timeout",
    "socket_connect_timeout",
    "socket_keepalive",
    "retry_on_timeout",
    "max_connections",
    "health_check_interval",
    "client_name",
    "protocol",
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_check_hostname",
    "ssl_min_version",
    "timeout",
    "path",
}


def redis_url_problem(url: str | None) -> str | None:
    """Given a Redis URL (or None), return why it cannot be used, in words
    that never repeat any part of it (a password may be anywhere in a URL that
    does not parse); None where it can be."""
    if url is None:
        return None
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme not in ("redis", "rediss", "unix"):
        return "this is not a Redis URL (it must start with redis://, rediss:// or unix://); not shown, as it may hold a password"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return f"the URL cannot be read, not shown ({_ENCODE_HINT})"
    if parts.fragment or "#" in url:
        return f"the URL has a '#', not shown ({_ENCODE_HINT})"
    query = [pair.partition("=") for pair in parts.query.split("&") if pair]
    if "@" in parts.path or "@" in parts.query or any(name not in _REDIS_QUERY_OPTIONS for name, _, _ in query):
        return f"the URL cannot be read, not shown ({_ENCODE_HINT})"
    if scheme == "unix":
        return None if parts.path else "a unix:// URL needs the socket's path (unix:///run/redis.sock)"
    if not parts.hostname:
        return f"the URL names no host, not shown ({_ENCODE_HINT})"
    if port == 0 or not re.fullmatch(r"/?([0-9]{1,5})?", parts.path):
        return f"the URL's port or database number cannot be read, not shown ({_ENCODE_HINT})"
    return None


def redact_url(url: str) -> str:
    """Given a URL, return it with any password replaced by ***."""
    try:
        parts = urlsplit(url)
        if "@" not in parts.netloc and "password=" not in parts.query.lower():
            return url
        netloc = parts.netloc
        if "@" in netloc:  # a bare user part may be a password written without its colon
            user = f"{parts.username or ''}:***" if parts.password is not None else "***"
            netloc = f"{user}@{netloc.rpartition('@')[2]}"
        query = re.sub(r"(?i)(password=)[^&]*", r"\1***", parts.query)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "(unreadable URL)"


def redact_text(text: str) -> str:
    """Given any text (an unexpected error's, say), return it with the
    password part of every URL in it replaced by ***."""
    return re.sub(r"([a-z][a-z0-9+.-]*://)\S*@", r"\1***@", text, flags=re.IGNORECASE)

