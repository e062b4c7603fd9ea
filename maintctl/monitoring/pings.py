"""Healthchecks-style pings (MAINTCTL_PING_URL): `<url>/start` when a run
begins, `<url>` when it went well, `<url>/fail` with a short summary as the
body when it did not, or when the app's reader of a stream maintctl writes is
stuck (status's reader check: an entry unacknowledged longer than
MAINTCTL_STUCK_AFTER, though the run itself went well); each with the run's
id as `rid`, so that the service can pair them. A ping that fails is a
warning, never the run's failure."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from maintctl.config.settings import Settings


def without_key(url: str) -> str:
    """Given a ping URL, return it as it may be shown: without its path (which
    holds the check's key) or any password."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/…"


class Pinger:
    """A hook (hooks.py): pings as the run begins and ends, with the run's id as rid."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.url = settings.ping_url or ""
        self.timeout = settings.ping_timeout
        self.run_id = ""

    def started(self, report) -> list[str]:
        return self.begin(report.run_id)

    def finished(self, connection, report) -> list[str]:
        from maintctl.show import report as showing

        return self.end(report.exit_code, showing.plain_text(report))

    def begin(self, run_id: str) -> list[str]:
        """Ping that the run (of one database or many) has begun; return the warnings."""
        self.run_id = run_id
        return self._send("/start", None)

    def end(self, code: int, body: str) -> list[str]:
        """Ping how the run ended, with its summary (after the readers that are stuck, which fail it
        too); return the warnings."""
        stuck = stuck_readers(self.settings)
        return self._send("" if code == 0 and not stuck else "/fail", "".join(f"{line}\n" for line in stuck) + body)

    def _send(self, suffix: str, body: str | None) -> list[str]:
        """Ping; return the warnings (none when the ping was taken)."""
        import urllib.request

        parts = urlsplit(self.url)
        query = "&".join(part for part in (parts.query, urlencode({"rid": self.run_id})) if part)
        url = urlunsplit((parts.scheme, parts.netloc, parts.path + suffix, query, ""))
        data = body.encode(errors="replace")[:10_000] if body is not None else None
        request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
        request.add_header("User-Agent", "maintctl")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read(1024)
        except Exception as error:  # noqa: BLE001 - a ping that fails is a warning, whatever the endpoint did
            return [f"ping {suffix or '/'} to {without_key(self.url)} failed: {_reason(error)}"]
        return []


def _reason(error: Exception) -> str:
    """Given why a ping failed, say it without the URL (whose path is the check's key)."""
    import urllib.error

    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    reason = getattr(error, "reason", None)
    if isinstance(reason, OSError):
        return reason.strerror or type(reason).__name__
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return f"{type(error).__name__} (the endpoint's answer could not be read)"


def stuck_readers(settings: Settings) -> list[str]:
    """Given the settings, return a line for each consumer group whose oldest unacknowledged entry has waited
    longer than MAINTCTL_STUCK_AFTER; none where no Redis is configured or it does not answer (a delivery
    that fails already fails the run)."""
    from maintctl.store import streams

    if settings.redis_url is None or settings.redis_problem:
        return []
    try:
        return streams.stuck(streams.watched(settings), settings.stuck_after)
    except streams.ReadError:
        return []
