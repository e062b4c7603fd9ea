"""The app's readers in the metrics file and the ping: a run with Redis configured writes each consumer group's
lag and oldest unacknowledged age, and pings /fail while a reader is stuck."""

import re

import pytest
from conftest import NOW, free_port
from test_pings_and_metrics import PingServer
from test_readers import STREAM, Sender, at, fire

UNESCAPED = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}  # the text format's escapes in a label's value


@pytest.fixture
def pings():
    server = PingServer()
    yield server
    server.close()


def stream_samples(path) -> dict[tuple[str, tuple], float]:
    """Parse the stream lines of the metrics file back, label values unescaped as the text format says:
    {(name, ((label, value), ...)): value}."""
    samples = {}
    for line in path.read_text().splitlines():
        if line.startswith("maintctl_stream_"):
            match = re.fullmatch(r"([a-z_]+)\{(.*)\} (\S+)", line)
            assert match, line
            labels = re.findall(r'(\w+)="((?:[^"\\\n]|\\[\\"n])*)"', match.group(2))
            assert ",".join(f'{name}="{value}"' for name, value in labels) == match.group(2), line
            labels = tuple((name, re.sub(r'\\[\\"n]', lambda m: UNESCAPED[m[0]], value)) for name, value in labels)
            samples[match.group(1), labels] = float(match.group(3))
    return samples


def test_a_run_writes_each_groups_lag_and_oldest_unacknowledged_age(maintctl, core, redis_url, tmp_path):
    metrics = tmp_path / "maintctl.prom"
    sender = Sender(redis_url)
    escaped = Sender(redis_url, stream="tasks", group='work"ers\\1\nnight')  # a name the text format must escape
    first = fire(maintctl, core, redis_url, "r1")
    assert sender.read() == [first]  # handed, never acknowledged
    second = fire(maintctl, core, redis_url, "r2")  # not yet handed

    result = maintctl(
        "run-all", "--db", core.path, "--redis-url", redis_url, "--now", at(first, 10),
        env={"MAINTCTL_METRICS_FILE": str(metrics)},
    )  # fmt: skip

    assert result.code == 0, result
    assert stream_samples(metrics) == {
        ("maintctl_stream_lag", (("stream", STREAM), ("group", "sender"))): 1.0,
        ("maintctl_stream_oldest_unacknowledged_seconds", (("stream", STREAM), ("group", "sender"))): 600.0,
        ("maintctl_stream_lag", (("stream", "tasks"), ("group", 'work"ers\\1\nnight'))): 0.0,
        ("maintctl_stream_oldest_unacknowledged_seconds", (("stream", "tasks"), ("group", 'work"ers\\1\nnight'))): 0.0,
    }
    text = metrics.read_text()
    assert 'maintctl_stream_lag{stream="tasks",group="work\\"ers\\\\1\\nnight"} 0.0' in text
    assert "# TYPE maintctl_stream_oldest_unacknowledged_seconds gauge" in text
    sender.acknowledge(sender.read() + [first])
    maintctl(
        "run-all", "--db", core.path, "--redis-url", redis_url, "--now", at(second, 10),
        env={"MAINTCTL_METRICS_FILE": str(metrics)},
    )  # fmt: skip
    assert (
        stream_samples(metrics)[
            "maintctl_stream_oldest_unacknowledged_seconds", (("stream", STREAM), ("group", "sender"))
        ]
        == 0.0
    )
    escaped.client.close()


def test_many_databases_write_the_streams_once_without_a_database_label(maintctl, core, redis_url, tmp_path):
    from conftest import new_core

    other = new_core(tmp_path / "other.db")
    metrics = tmp_path / "maintctl.prom"
    Sender(redis_url)

    result = maintctl(
        "run-all", "--db", core.path, "--db", other.path, "--redis-url", redis_url, "--now", NOW,
        env={"MAINTCTL_METRICS_FILE": str(metrics)},
    )  # fmt: skip

    assert result.code == 0, result
    assert stream_samples(metrics) == {
        ("maintctl_stream_lag", (("stream", STREAM), ("group", "sender"))): 0.0,
        ("maintctl_stream_oldest_unacknowledged_seconds", (("stream", STREAM), ("group", "sender"))): 0.0,
    }
    other.connection.close()


def test_without_redis_or_with_redis_down_no_stream_metrics_and_the_run_goes_on(maintctl, core, tmp_path):
    metrics = tmp_path / "maintctl.prom"
    env = {"MAINTCTL_METRICS_FILE": str(metrics)}
    down = f"redis://127.0.0.1:{free_port()}/0"

    without = maintctl("run-all", "--db", core.path, "--now", NOW, env=env)
    written_without = stream_samples(metrics)
    unreachable = maintctl("run-all", "--db", core.path, "--now", NOW, "--redis-url", down, env=env)

    assert without.code == 0 and written_without == {}
    assert unreachable.code == 0, unreachable  # nothing to deliver: Redis down fails no run
    assert stream_samples(metrics) == {} and "maintctl_last_run_failed" in metrics.read_text()
    assert "Traceback" not in unreachable.err


def test_the_ping_fails_while_a_reader_is_stuck_and_succeeds_once_it_caught_up(
    maintctl,
    core,
    redis_url,
    pings,
):
    sender = Sender(redis_url)
    entry = fire(maintctl, core, redis_url, "r1")
    assert sender.read() == [entry]
    env = {"MAINTCTL_PING_URL": pings.url}

    stuck = maintctl("run-all", "--db", core.path, "--redis-url", redis_url, "--now", at(entry, 6), env=env)
    stuck_ping = pings.pings[-1]
    young = maintctl("run-all", "--db", core.path, "--redis-url", redis_url, "--now", at(entry, 4), env=env)
    young_ping = pings.pings[-1]
    sender.acknowledge([entry])
    back = maintctl("run-all", "--db", core.path, "--redis-url", redis_url, "--now", at(entry, 6), env=env)

    assert stuck.code == 0, stuck  # the run itself went well
    path, _, body = stuck_ping
    assert path == "/ping/d1c2-secret-key/fail"
    assert body.startswith(f"stream {STREAM}, group sender: an entry has waited 6 min, handed to it and not ack")
    assert "the app's reader is down" in body and "fire-reminders" in body
    assert young.code == 0 and young_ping[0] == "/ping/d1c2-secret-key"
    assert back.code == 0 and pings.pings[-1][0] == "/ping/d1c2-secret-key"


def test_many_databases_ping_fail_while_a_reader_is_stuck(
    maintctl,
    core,
    redis_url,
    pings,
    tmp_path,
):
    from conftest import new_core

    other = new_core(tmp_path / "other.db")
    sender = Sender(redis_url)
    entry = fire(maintctl, core, redis_url, "r1")
    assert sender.read() == [entry]

    result = maintctl(
        "run-all", "--db", core.path, "--db", other.path, "--redis-url", redis_url, "--now", at(entry, 6),
        env={"MAINTCTL_PING_URL": pings.url},
    )  # fmt: skip

    assert result.code == 0, result
    path, _, body = pings.pings[-1]
    assert path == "/ping/d1c2-secret-key/fail" and "group sender" in body and "exit 0" in body
    other.connection.close()
