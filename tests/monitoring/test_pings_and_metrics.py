"""Being told: pings to a real HTTP server on loopback, and the metrics file parsed back."""

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import NOW, free_port


class PingServer:
    """A Healthchecks stand-in that records every ping it gets."""

    def __init__(self):
        self.pings: list[tuple[str, str, str]] = []  # (path, rid, body)
        pings = self.pings

        class Handler(BaseHTTPRequestHandler):
            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                parts = urlsplit(self.path)
                pings.append((parts.path, parse_qs(parts.query).get("rid", [""])[0], body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"OK")

            do_GET = do_POST = answer

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/ping/d1c2-secret-key"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ping_server():
    server = PingServer()
    yield server
    server.close()


class TestPings:
    def test_a_good_run_pings_start_then_success_with_one_rid(self, maintctl, core, ping_server):
        result = maintctl(
            "run-all", "--db", core.path, "--now", NOW, "--json", env={"MAINTCTL_PING_URL": ping_server.url}
        )

        assert result.code == 0, result
        paths = [path for path, _, _ in ping_server.pings]
        assert paths == ["/ping/d1c2-secret-key/start", "/ping/d1c2-secret-key"]
        assert {rid for _, rid, _ in ping_server.pings} == {result.json()["run_id"]}
        assert "fire-reminders  ok" in ping_server.pings[1][2]

    def test_a_failed_run_pings_fail_with_a_summary_as_the_body(self, maintctl, core, ping_server):
        core.reminder("r1")
        core.sql("CREATE TRIGGER no BEFORE UPDATE ON reminders BEGIN SELECT RAISE(ABORT, 'frozen'); END")

        result = maintctl("fire-reminders", "--db", core.path, "--now", NOW, env={"MAINTCTL_PING_URL": ping_server.url})

        assert result.code == 1
        path, _, body = ping_server.pings[-1]
        assert path == "/ping/d1c2-secret-key/fail"
        assert "fire-reminders failed" in body and "frozen" in body

    def test_dry_runs_and_runs_that_found_the_lock_held_do_not_ping(self, maintctl, core, ping_server, tmp_path):
        import fcntl
        import os

        env = {"MAINTCTL_PING_URL": ping_server.url}
        maintctl("run-all", "--db", core.path, "--now", NOW, "--dry-run", env=env)
        descriptor = os.open(core.path.with_name("core.db.maintctl.lock"), os.O_RDWR | os.O_CREAT)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            busy = maintctl("run-all", "--db", core.path, "--now", NOW, env=env)
        finally:
            os.close(descriptor)

        assert busy.code == 75
        assert ping_server.pings == []

    def test_an_unreachable_ping_url_is_a_warning_that_never_fails_the_run_nor_shows_the_key(self, maintctl, core):
        url = f"http://127.0.0.1:{free_port()}/ping/d1c2-secret-key"

        result = maintctl("run-all", "--db", core.path, "--now", NOW, env={"MAINTCTL_PING_URL": url})

        assert result.code == 0, result
        assert "maintctl: warning: ping /start to http://127.0.0.1:" in result.err
        assert "secret" not in result.out + result.err

    def test_a_ping_url_that_is_not_http_is_a_configuration_error(self, maintctl, core):
        result = maintctl("run-all", "--db", core.path, env={"MAINTCTL_PING_URL": "ftp://example.org/x"})

        assert result.code == 2 and "MAINTCTL_PING_URL" in result.err


def read_metrics(path) -> dict[tuple[str, tuple], float]:
    """Parse the Prometheus text format back: {(name, ((label, value), ...)): value}."""
    samples = {}
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        assert match, line
        labels = tuple(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        samples[match.group(1), labels] = float(match.group(3))
    return samples


def test_the_metrics_file_tells_each_action_last_run_success_duration_items_and_the_queue(maintctl, core, tmp_path):
    from datetime import datetime

    metrics = tmp_path / "textfile" / "maintctl.prom"
    metrics.parent.mkdir()
    core.reminder("r1")
    core.reminder("r2")
    env = {"MAINTCTL_METRICS_FILE": str(metrics)}

    result = maintctl("run-all", "--db", core.path, "--now", NOW, env=env)

    assert result.code == 0, result
    samples = read_metrics(metrics)
    now = datetime.fromisoformat(NOW).timestamp()
    fire = (("action", "fire-reminders"),)
    assert samples["maintctl_last_run_timestamp_seconds", fire] == now
    assert samples["maintctl_last_success_timestamp_seconds", fire] == now
    assert samples["maintctl_last_run_failed", fire] == 0
    assert samples["maintctl_consecutive_failures", fire] == 0
    assert samples["maintctl_last_run_duration_seconds", fire] >= 0
    assert samples["maintctl_last_run_items", (("action", "fire-reminders"), ("kind", "fired"))] == 2
    assert samples["maintctl_paused", (("action", "backup"),)] == 0
    assert samples["maintctl_notifications_queued", ()] == 2
    assert list(metrics.parent.iterdir()) == [metrics]  # no temporary file left

    core.sql("CREATE TRIGGER no BEFORE UPDATE ON reminders BEGIN SELECT RAISE(ABORT, 'frozen'); END")
    core.reminder("r3")
    maintctl("fire-reminders", "--db", core.path, "--now", "2026-11-22T09:31:00Z", env=env)
    maintctl("fire-reminders", "--db", core.path, "--now", "2026-11-22T09:32:00Z", env=env)

    samples = read_metrics(metrics)
    assert samples["maintctl_last_run_failed", fire] == 1
    assert samples["maintctl_consecutive_failures", fire] == 2
    assert samples["maintctl_last_success_timestamp_seconds", fire] == now
    assert samples["maintctl_notifications_oldest_queued_age_seconds", ()] == 120


def test_a_metrics_file_that_cannot_be_written_is_a_warning(maintctl, core, tmp_path):
    result = maintctl(
        "run-all", "--db", core.path, "--now", NOW, env={"MAINTCTL_METRICS_FILE": str(tmp_path / "no" / "m.prom")}
    )

    assert result.code == 0
    assert "warning: metrics file" in result.err and "not written" in result.err


@pytest.mark.parametrize("what", ["the database", "a file of other text", "a device", "a directory"])
def test_the_metrics_file_never_replaces_what_is_not_a_metrics_file(maintctl, core, tmp_path, what):
    import os
    import stat

    target = {
        "the database": core.path,
        "a file of other text": tmp_path / "notes.txt",
        "a device": tmp_path / "null",
        "a directory": tmp_path,
    }[what]
    if what == "a file of other text":
        target.write_text("keep me\n")
    if what == "a device":
        os.mknod(target, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    before = target.lstat()
    content = target.read_bytes() if target.is_file() else None

    result = maintctl("run-all", "--db", core.path, "--now", NOW, env={"MAINTCTL_METRICS_FILE": str(target)})
    again = maintctl("run-all", "--db", core.path, "--now", NOW)

    assert result.code == 0, result
    assert f"maintctl: warning: metrics file {target} not written: " in result.err
    assert stat.S_IFMT(target.lstat().st_mode) == stat.S_IFMT(before.st_mode)
    if content is not None:
        assert target.read_bytes() == content or what == "the database"
    assert again.code == 0, again  # the database is still a database
