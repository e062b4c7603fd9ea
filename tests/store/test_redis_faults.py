"""A real redis-server that dies, hangs or was never started: nothing lost, nothing doubled."""

import signal
import time

import pytest
import redis
from conftest import NOW, RedisServer, start_firing, stream_entries


def queue_backlog(maintctl, core, count):
    core.due_reminders(count, recurring=False)
    assert maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--quiet").code == 0  # queued, no Redis


def assert_each_delivered_once(core, url, count):
    entries = stream_entries(url)
    assert len(entries) == count
    assert len({entry["msg_id"] for entry in entries}) == count
    assert core.sql("SELECT count(*) FROM maintctl_outbox WHERE delivered_at IS NULL") == [(0,)]


def wait_for_entries(port):
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 30
    while client.xlen("notify:telegram") == 0:
        assert time.monotonic() < deadline
        time.sleep(0.005)


@pytest.fixture
def persistent_redis(tmp_path):
    server = RedisServer(tmp_path, "--appendonly", "yes", "--appendfsync", "always").start()
    yield server
    server.stop()


def test_redis_killed_mid_delivery_and_restarted(maintctl, core, tmp_path, persistent_redis):
    queue_backlog(maintctl, core, 30_000)
    delivery = start_firing(core, tmp_path, "--redis-url", persistent_redis.url, env={"MAINTCTL_BATCH_SIZE": "300"})
    wait_for_entries(persistent_redis.port)
    persistent_redis.process.kill()  # SIGKILL, mid-delivery
    persistent_redis.process.wait()

    code = delivery.wait(timeout=30)
    stderr = delivery.stderr.read()
    persistent_redis.start()  # same port, same append-only file

    assert code == 1, stderr
    assert "notifications not delivered: Redis at" in stderr
    assert "stay queued for the next run" in stderr
    assert 0 < len(stream_entries(persistent_redis.url)) < 30_000
    again = maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--redis-url", persistent_redis.url)
    assert again.code == 0, again
    assert_each_delivered_once(core, persistent_redis.url, 30_000)


def test_a_redis_that_hangs_mid_delivery_times_out_and_the_next_run_delivers_each_once(maintctl, core, tmp_path):
    server = RedisServer(tmp_path).start()
    try:
        queue_backlog(maintctl, core, 30_000)
        delivery = start_firing(
            core,
            tmp_path,
            "--redis-url",
            server.url,
            env={"MAINTCTL_BATCH_SIZE": "300", "MAINTCTL_REDIS_TIMEOUT": "1s"},
        )
        wait_for_entries(server.port)
        server.process.send_signal(signal.SIGSTOP)  # hangs mid-delivery: takes what it is sent, answers nothing

        code = delivery.wait(timeout=30)
        stderr = delivery.stderr.read()
        server.process.send_signal(signal.SIGCONT)  # now runs whatever it took while hung
        time.sleep(0.5)
        recorded = core.sql("SELECT count(*) FROM maintctl_outbox WHERE delivered_at IS NOT NULL")[0][0]

        assert code == 1, stderr
        assert "Timeout" in stderr or "timed out" in stderr
        assert len(stream_entries(server.url)) >= recorded
        again = maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--redis-url", server.url, "--json")
        assert again.code == 0, again
        assert_each_delivered_once(core, server.url, 30_000)
    finally:
        server.process.send_signal(signal.SIGCONT)
        server.stop()


def test_redis_not_started_then_started(maintctl, core, tmp_path):
    server = RedisServer(tmp_path)  # its port chosen, nothing listening yet
    queue_backlog(maintctl, core, 50)

    down = maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--redis-url", server.url)
    server.start()
    try:
        up = maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--redis-url", server.url)

        assert down.code == 1
        assert up.code == 0, up
        assert_each_delivered_once(core, server.url, 50)
    finally:
        server.stop()
