"""One run per database: a second run exits 75 at once and does nothing."""

import fcntl
import os
import signal
import subprocess
import sys
import time

from conftest import CLEAN_ENV, NOW, flock_pids, start_firing, stream_entries, until


def hold_lock(path):
    """Take the lock as another maintctl run would; return the open file."""
    handle = open(path, "a+")  # noqa: SIM115 - held until the test closes it
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    handle.truncate(0)
    handle.write("4242\n")
    handle.flush()
    return handle


HOLD = "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(float(sys.argv[2]))"


def process_holding_lock(path, seconds):
    """Start another process that takes the lock and keeps it for `seconds`."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    return holder


def lock_of(core):
    return core.path.with_name("core.db.maintctl.lock")


def test_a_second_run_exits_75_at_once_and_changes_nothing(maintctl, core):
    core.reminder("r1")
    holder = hold_lock(lock_of(core))
    before = core.digest()

    started = time.monotonic()
    result = maintctl("run-all", "--db", core.path, "--now", NOW)

    assert result.code == 75
    assert time.monotonic() - started < 5
    assert (
        result.err == f"maintctl: another maintctl run (pid 4242) holds the lock on {core.path}; this run did nothing\n"
    )
    assert core.digest() == before
    holder.close()


def test_quiet_keeps_the_lock_refusal_silent(maintctl, core):
    holder = hold_lock(lock_of(core))

    result = maintctl("run-all", "--db", core.path, "--quiet")

    assert (result.code, result.out, result.err) == (75, "", "")
    holder.close()


def test_wait_waits_for_the_lock(maintctl, core, tmp_path):
    core.reminder("r1")
    from concurrent.futures import ThreadPoolExecutor

    releaser = process_holding_lock(lock_of(core), seconds=60)

    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(maintctl, "fire-reminders", "--db", core.path, "--now", NOW, "--wait", "30")
        until(lambda: len(flock_pids(lock_of(core), waiting=True)) == 1, "the run's wait for the lock")
        releaser.kill()  # the holder dies: its lock is let go
        result = waiting.result()

    assert result.code == 0, result
    assert core.sql("SELECT fired FROM reminders") == [(1,)]
    releaser.wait()


def test_wait_gives_up_after_its_seconds(maintctl, core):
    holder = hold_lock(lock_of(core))

    started = time.monotonic()
    result = maintctl("run-all", "--db", core.path, "--wait", "0.5")

    assert result.code == 75
    assert 0.5 <= time.monotonic() - started < 10
    holder.close()


def test_a_run_killed_with_sigkill_leaves_no_lock_behind(maintctl, core):
    core.reminder("r1")
    killed = process_holding_lock(lock_of(core), seconds=60)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()

    result = maintctl("fire-reminders", "--db", core.path, "--now", NOW)

    assert result.code == 0, result
    assert lock_of(core).exists()


def test_a_dry_run_needs_no_lock(maintctl, core):
    core.reminder("r1")
    holder = hold_lock(lock_of(core))

    result = maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--dry-run")

    assert result.code == 0, result
    holder.close()


def test_the_lock_file_can_be_named(maintctl, core, tmp_path):
    elsewhere = tmp_path / "run" / "maintctl.lock"
    elsewhere.parent.mkdir()
    holder = hold_lock(elsewhere)

    result = maintctl("run-all", "--db", core.path, env={"MAINTCTL_LOCK_FILE": str(elsewhere)})

    assert result.code == 75
    holder.close()


def test_six_concurrent_runs_on_ten_thousand_due_reminders(core, redis_url, tmp_path):
    reminder_ids = core.due_reminders(10_000)

    runs = [
        start_firing(core, tmp_path, "--redis-url", redis_url, env={"MAINTCTL_BATCH_SIZE": "500"}) for _ in range(6)
    ]
    codes = [run.wait(timeout=120) for run in runs]

    assert set(codes) <= {0, 75} and 0 in codes, codes
    assert core.sql("SELECT count(*) FROM reminders WHERE fired = 1") == [(10_000,)]
    assert core.sql("SELECT count(*) FROM reminders WHERE fired = 0") == [(1_000,)]
    assert core.sql("SELECT count(*), count(DISTINCT entity_id) FROM audit_log WHERE action = 'fired'") == [
        (10_000, 10_000)
    ]
    entries = stream_entries(redis_url)
    assert len(entries) == 10_000
    assert {entry["data"]["content"]["reminder_id"] for entry in entries} == set(reminder_ids)


def test_sigterm_while_waiting_for_the_lock_exits_at_once(core, tmp_path):
    holder = hold_lock(lock_of(core))
    run = subprocess.Popen(
        [sys.executable, "-m", "maintctl", "run-all", "--db", str(core.path), "--wait", "60"],
        env=CLEAN_ENV,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    until(lambda: flock_pids(lock_of(core), waiting=True) == [run.pid], "the run's wait for the lock")

    run.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    code = run.wait(timeout=30)

    assert code == 143
    assert time.monotonic() - sent < 2
    holder.close()


class TestALockFileThatIsNotOne:
    """The lock file is opened, never followed, and written only where it is
    one: a database, a file of other text, a device or a link named as the
    lock file are refused (exit 2) and left as they were."""

    def refused(self, maintctl, core, lock_file, env=None):
        result = maintctl("run-all", "--db", core.path, "--now", NOW, env=env)
        assert result.code == 2, result
        (line,) = result.err.splitlines()
        assert line.startswith(f"maintctl: error: {lock_file}: "), line
        return line

    def test_the_database_itself(self, maintctl, core):
        before = core.digest()

        line = self.refused(maintctl, core, core.path, {"MAINTCTL_LOCK_FILE": str(core.path)})

        assert "is the database" in line
        assert core.digest() == before

    def test_a_file_of_other_text(self, maintctl, core, tmp_path):
        victim = tmp_path / "passwd"
        victim.write_text("root:x:0:0:root:/root:/bin/bash\n")

        line = self.refused(maintctl, core, victim, {"MAINTCTL_LOCK_FILE": str(victim)})

        assert "holds something other than a pid" in line
        assert victim.read_text() == "root:x:0:0:root:/root:/bin/bash\n"

    def test_a_device(self, maintctl, core, tmp_path):
        device = tmp_path / "null"
        os.mknod(device, 0o666 | __import__("stat").S_IFCHR, os.makedev(1, 3))

        self.refused(maintctl, core, device, {"MAINTCTL_LOCK_FILE": str(device)})

        assert __import__("stat").S_ISCHR(device.stat().st_mode)

    def test_a_link_where_the_lock_file_goes(self, maintctl, core, tmp_path):
        victim = tmp_path / "victim.txt"
        victim.write_text("precious\n")
        lock_of(core).symlink_to(victim)

        line = self.refused(maintctl, core, lock_of(core))

        assert "is a symbolic link" in line
        assert victim.read_text() == "precious\n"

    def test_a_lock_file_left_by_an_earlier_run_is_taken(self, maintctl, core):
        lock_of(core).write_text("4242\n")

        assert maintctl("run-all", "--db", core.path, "--now", NOW).code == 0


def context_switches(pid: int) -> int:
    """The voluntary context switches of every thread of the process: how often it woke up."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/status") as status:
            total += sum(int(line.split()[1]) for line in status if line.startswith("voluntary_ctxt_switches"))
    return total


class TestAsleepForTheLock:
    """A run waiting for the lock (--wait) sleeps in the kernel until the
    holder lets go or dies: no CPU spent meanwhile, and it is taken at once."""

    def start_waiting(self, core, tmp_path, *arguments):
        return subprocess.Popen(
            [sys.executable, "-m", "maintctl", "run-all", "--db", str(core.path), "--now", NOW, *arguments],
            env=CLEAN_ENV,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def test_it_does_not_wake_while_the_lock_is_held_and_takes_it_the_moment_the_holder_dies(self, core, tmp_path):
        core.reminder("r1")
        holder = process_holding_lock(lock_of(core), seconds=60)
        run = self.start_waiting(core, tmp_path, "--wait", "60")
        until(lambda: flock_pids(lock_of(core), waiting=True) == [run.pid], "the run's wait for the lock")

        before = context_switches(run.pid)
        time.sleep(1.0)
        woke = context_switches(run.pid) - before
        holder.kill()
        killed = time.monotonic()
        _, err = run.communicate(timeout=30)

        assert woke <= 5, f"woke {woke} times in a second while the lock was held"
        assert run.returncode == 0, err
        assert time.monotonic() - killed < 1.0
        assert core.sql("SELECT fired FROM reminders") == [(1,)]

    def test_sigint_while_asleep_exits_130_at_once_and_changes_nothing(self, core, tmp_path):
        core.reminder("r1")
        holder = hold_lock(lock_of(core))
        run = self.start_waiting(core, tmp_path, "--wait", "60")
        until(lambda: flock_pids(lock_of(core), waiting=True) == [run.pid], "the run's wait for the lock")

        run.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, err = run.communicate(timeout=30)

        assert run.returncode == 130, err
        assert time.monotonic() - sent < 1.0
        assert core.sql("SELECT fired FROM reminders") == [(0,)]
        holder.close()
