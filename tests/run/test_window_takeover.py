"""A window that dies is taken over at once: with the recommended cron line
(crontab.example), one invocation holds the lock and the next one waits for
it, and takes over the moment the holder is killed (SIGKILL) or stopped
(SIGTERM). cron is played by a thread starting the line every PERIOD seconds
instead of every minute, its times scaled alike. Real processes, a real
redis-server, the real clock."""

import os
import shlex
import signal
import threading
import time
from datetime import UTC, datetime

from conftest import EXAMPLES, flock_pids, stream_entries, until
from test_window import lateness_ms, run_all

from maintctl.store import lock
from maintctl.timestamps import parse_duration

PERIOD = 2.0  # seconds for cron's minute


def recommended(period: float) -> list[str]:
    """The recommended cron line's arguments (crontab.example), its times scaled from cron's minute to `period`."""
    crontab = (EXAMPLES.parent / "crontab.example").read_text().splitlines()
    (line,) = [line for line in crontab if line.startswith("* * * * * ") and "--for" in line]
    arguments = shlex.split(line.split("/maintctl ", 1)[1])
    scaled = []
    for previous, argument in zip(["", *arguments], arguments):
        if previous == "--for":
            argument = f"{parse_duration(argument).total_seconds() * period / 60:g}s"
        elif previous == "--wait":
            argument = f"{float(argument) * period / 60:g}"
        scaled.append(argument)
    return [argument for argument in scaled[1:] if argument != "--quiet"]  # run-all's options


class Cron:
    """Starts the recommended line every `period` seconds, as cron does every minute, until stopped."""

    def __init__(self, core, redis_url: str, period: float = PERIOD):
        self.core, self.redis_url, self.period = core, redis_url, period
        self.arguments = recommended(period)
        self.started = []
        self.stopped = threading.Event()
        self.began = time.monotonic()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            self.started.append(run_all(self.core, *self.arguments, "--redis-url", self.redis_url))
            self.stopped.wait(self.began + len(self.started) * self.period - time.monotonic())

    def until(self, seconds: float) -> None:
        """Sleep until `seconds` after cron's first start."""
        time.sleep(max(0.0, self.began + seconds - time.monotonic()))

    def holder(self):
        pid = lock.holder(lock.default_path(self.core.path))
        return next(process for process in self.started if process.pid == pid)

    def end(self) -> dict[int, int]:
        """Stop starting; stop those still running (SIGTERM); return each one's exit status by pid."""
        self.stopped.set()
        self.thread.join()
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        return {process.pid: process.wait(timeout=30) for process in self.started}


def stamp(moment: float) -> str:
    instant = datetime.fromtimestamp(moment, UTC)
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


def wait_for_entries(redis_url: str, count: int, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while len(stream_entries(redis_url)) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_the_recommended_line_keeps_a_standby():
    arguments = recommended(60)
    window = parse_duration(arguments[arguments.index("--for") + 1]).total_seconds()
    wait = float(arguments[arguments.index("--wait") + 1])

    assert window >= 120 and wait >= window - 60  # alive through the next minute's start, and waiting that long


def test_a_window_killed_is_taken_over_by_the_standby_and_its_next_reminder_fires_on_time(core, redis_url):
    core.memory("m1")
    core.reminder("before-the-kill", fire_at=stamp(time.time() + PERIOD + 0.3))
    cron = Cron(core, redis_url)
    cron.until(PERIOD + 0.5)  # the second start is waiting for the lock
    holder = cron.holder()

    holder.kill()
    killed = time.time()
    core.reminder("after-the-kill", fire_at=stamp(killed + 1.0))
    wait_for_entries(redis_url, 2)
    codes = cron.end()

    assert codes[holder.pid] == -signal.SIGKILL
    late = lateness_ms(redis_url)
    assert sorted(late) == ["after-the-kill", "before-the-kill"]  # each once
    assert 0 <= late["after-the-kill"] < 500, late
    assert len(stream_entries(redis_url)) == 2
    assert core.sql("SELECT count(*) FROM audit_log WHERE action = 'fired'") == [(2,)]


def test_a_window_stopped_with_sigterm_exits_143_and_the_standby_takes_over(core, redis_url):
    core.memory("m1")
    cron = Cron(core, redis_url)
    cron.until(PERIOD + 0.5)
    holder = cron.holder()

    holder.send_signal(signal.SIGTERM)
    stopped = time.time()
    core.reminder("after-the-stop", fire_at=stamp(stopped + 1.0))
    wait_for_entries(redis_url, 1)
    codes = cron.end()

    assert codes[holder.pid] == 143
    late = lateness_ms(redis_url)
    assert list(late) == ["after-the-stop"] and 0 <= late["after-the-stop"] < 500, late


def test_two_standbys_at_once_take_over_in_turn_and_fire_each_reminder_once(core, redis_url):
    core.memory("m1")
    arguments = recommended(PERIOD)
    first = run_all(core, *arguments, "--redis-url", redis_url)
    until(lambda: flock_pids(lock.default_path(core.path)) == [first.pid], "the first window's lock")
    standbys = [run_all(core, *arguments, "--redis-url", redis_url) for _ in range(2)]
    until(
        lambda: flock_pids(lock.default_path(core.path), waiting=True) == sorted(process.pid for process in standbys),
        "both standbys' wait for the lock",
    )

    first.kill()
    core.reminder("after-the-first-kill", fire_at=stamp(time.time() + 0.5))
    wait_for_entries(redis_url, 1)
    second = next(process for process in standbys if process.pid == lock.holder(lock.default_path(core.path)))
    second.kill()
    core.reminder("after-the-second-kill", fire_at=stamp(time.time() + 0.5))
    wait_for_entries(redis_url, 2)
    for process in standbys:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    codes = sorted(process.wait(timeout=30) for process in standbys)
    first.wait()

    late = lateness_ms(redis_url)
    assert sorted(late) == ["after-the-first-kill", "after-the-second-kill"], late
    assert all(0 <= ms < 500 for ms in late.values()), late
    assert len(stream_entries(redis_url)) == 2
    assert codes == [-signal.SIGKILL, 143]
    assert os.path.exists(lock.default_path(core.path))
