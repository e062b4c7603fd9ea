"""The lock file deleted or replaced while one run holds the lock and another
waits for it (an operator cleaning up, a tmpfiles rule): the waiting run
takes the lock the path names, never one on a file that is gone, so that it
never runs beside a run that took the new file's lock. Real processes, the
real clock."""

import os
import signal
import time

from test_restore import backup, start  # noqa: F401 - backup is a fixture
from test_window import run_all

from maintctl.store import lock
from maintctl.store.openers import file_locks


def until(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def holders() -> set[int]:
    """The processes that hold a lock now (on any file: the lock file one took may have no path left)."""
    return {found.pid for found in file_locks() if found.kind == "FLOCK" and not found.waiting}


def waiting(pid: int) -> bool:
    return any(found.pid == pid and found.waiting for found in file_locks())


def test_a_standby_whose_lock_file_was_deleted_waits_for_the_run_holding_the_new_one(core):
    lock_file = lock.default_path(core.path)
    holder = run_all(core, "--for", "60s")  # ended by SIGTERM once the newcomer holds the new file's lock
    until(lambda: lock.holder(lock_file) == holder.pid)
    standby = run_all(core, "--for", "1s", "--wait", "60")
    until(lambda: waiting(standby.pid))

    os.unlink(lock_file)
    newcomer = run_all(core, "--for", "3s")  # takes the new file's lock: nobody holds it
    until(lambda: lock.holder(lock_file) == newcomer.pid)
    holder.send_signal(signal.SIGTERM)
    holder.wait(timeout=10)
    both = []
    while newcomer.poll() is None:
        both.append({newcomer.pid, standby.pid} <= holders())
        time.sleep(0.02)
    codes = [newcomer.wait(), standby.wait(timeout=10)]

    assert codes == [0, 0]
    assert both and not any(both)  # the standby waited for the newcomer: never two runs at once


def test_a_restore_waiting_whose_lock_file_was_deleted_waits_for_the_window_holding_the_new_one(core, backup, tmp_path):
    lock_file = lock.default_path(core.path)
    holder = run_all(core, "--for", "60s")  # ended by SIGTERM once the newcomer holds the new file's lock
    until(lambda: lock.holder(lock_file) == holder.pid)
    restore = start(tmp_path, "restore", backup, "--db", core.path, "--wait", "60", "--json")
    until(lambda: waiting(restore.pid))

    os.unlink(lock_file)
    newcomer = run_all(core, "--for", "3s")
    until(lambda: lock.holder(lock_file) == newcomer.pid)
    holder.send_signal(signal.SIGTERM)
    holder.wait(timeout=10)
    both = []
    while newcomer.poll() is None:
        both.append({newcomer.pid, restore.pid} <= holders())
        time.sleep(0.02)
    _, err = restore.communicate(timeout=10)

    assert newcomer.returncode == 0 and restore.returncode == 0, err
    assert both and not any(both)  # the restore waited for the newcomer's window to end
