"""URLs that may hold secrets: the Redis URL (parsed once, refused without
being shown where it cannot be read) and how any URL may be shown."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

_ENCODE_HINT = "percent-encode a password's special characters: # as %23, / as %2F, ? as %3F, @ as %40, % as %25"
# The options redis-py reads from a URL's query, each with what its value must be.
_NUMBER = r"[0-9]{1,9}(\.[0-9]{1,9})?"  # finite, not negative: a timeout of -1, nan or 1e400 is refused
_WHOLE = r"[0-9]{1,9}"
_YES_NO = r"(?i)(1|0|true|false|yes|no|on|off|y|n)"
_ANY = r"[^\x00-\x1f]*"
_REDIS_QUERY_OPTIONS = {
    "db": _WHOLE,
    "username": _ANY,
    "password": _ANY,
    "socket_timeout": _NUMBER,
    "socket_connect_timeout": _NUMBER,
    "timeout": _NUMBER,
    "socket_keepalive": _YES_NO,
    "retry_on_timeout": _YES_NO,
    "max_connections": _WHOLE,
    "health_check_interval": _WHOLE,
    "client_name": _ANY,
    "protocol": r"[23]",
    "ssl_cert_reqs": r"(?i)(none|optional|required)",
    "ssl_ca_certs": _ANY,
    "ssl_certfile": _ANY,
    "ssl_keyfile": _ANY,
    "ssl_check_hostname": _YES_NO,
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
    if "@" in parts.path or "@" in parts.query:
        return f"the URL cannot be read, not shown ({_ENCODE_HINT})"
    options = dict(pair.partition("=")[::2] for pair in parts.query.split("&") if pair)
    for name, value in options.items():
        if name not in _REDIS_QUERY_OPTIONS or not re.fullmatch(_REDIS_QUERY_OPTIONS[name], unquote(value)):
            return f"the URL's query has an option or value maintctl cannot use, not shown ({_ENCODE_HINT})"
    if any(name.startswith("ssl_") for name in options) and scheme != "rediss":
        return "the URL's query has ssl_ options, which only a rediss:// URL takes; not shown"
    if "ssl_keyfile" in options and "ssl_certfile" not in options:
        return "the URL's query has ssl_keyfile without ssl_certfile; not shown"
    if scheme == "unix":
        return None if parts.path else "a unix:// URL needs the socket's path (unix:///run/redis.sock)"
    if not parts.hostname or not _host_name(parts.hostname):
        return f"the URL names no host that can be reached, not shown ({_ENCODE_HINT})"
    if port == 0 or not re.fullmatch(r"/?([0-9]{1,5})?", parts.path):
        return f"the URL's port or database number cannot be read, not shown ({_ENCODE_HINT})"
    return None


def _host_name(host: str) -> bool:
    """Given a URL's host, return whether it is an IP address or a name that
    DNS can hold (what the socket layer would otherwise fail on with an error
    of its own, such as an empty or overlong label)."""
    import ipaddress

    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        host.encode("idna")
    except UnicodeError:
        return False
    return True


def ping_url_usable(url: str) -> bool:
    """Return whether the ping URL is an http:// or https:// URL with a host that can be asked."""
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 1) > 0
    except ValueError:
        return False
    return usable and url.isprintable() and " " not in url


def redact_url(url: str) -> str:
    """Given a URL, return it with any password replaced by ***."""
    try:
        parts = urlsplit(url)
        if "@" not in parts.netloc and "password=" not in parts.query.lower():
            return url
        netloc = parts.netloc
        if "@" in netloc:  # a user part without a password may be a password written without its colon
            user = f"{parts.username or ''}:***" if parts.password else "***"
            netloc = f"{user}@{netloc.rpartition('@')[2]}"
        query = re.sub(r"(?i)(password=)[^&]*", r"\1***", parts.query)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "(unreadable URL)"


def redact_text(text: str) -> str:
    """Given any text (an unexpected error's, say), return it with the
    password part of every URL in it replaced by ***."""
    return re.sub(r"([a-z][a-z0-9+.-]*://)\S*@", r"\1***@", text, flags=re.IGNORECASE)
