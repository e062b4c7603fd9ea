"""Work run in worker processes forked once, handed out a task at a time,
with signals passed on: a SIGTERM or SIGINT to this process reaches the
tasks in hand (which stop at their next safe point) and no further task
begins; a worker with no task in hand hears it and stays, for the pool to
end it. The workers die with this process, however it ends: the kernel
kills each the moment this process is gone (Linux's PR_SET_PDEATHSIG)."""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Callable

from maintctl.store.db import Stop

_STOPS = (signal.SIGTERM, signal.SIGINT)


def run(work: Callable, tasks: list, count: int) -> tuple[list, str]:
    """Run work(task, stop) for each task, `count` at once (in this process
    where count is 1); return the results in order (None for a task a signal
    kept from beginning) and the signal that stopped them (SIGTERM where none
    did). `stop` is set, its `by` naming the signal, when SIGTERM or SIGINT
    comes, whenever it comes: a task hands it to what it runs, whose own
    handler sets that same stop, so that no signal falls between the two."""
    asked = Stop()

    def asked_to_stop(number: int, _) -> None:
        import multiprocessing

        asked.by = signal.Signals(number).name
        asked.set()
        for child in multiprocessing.active_children():
            os.kill(child.pid, number)

    previous = {number: signal.signal(number, asked_to_stop) for number in _STOPS}
    results: list = [None] * len(tasks)
    try:
        if count <= 1:
            for index, task in enumerate(tasks):
                if asked.is_set():
                    break
                results[index] = work(task, asked)
        else:
            _in_workers(work, tasks, count, results, asked)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return results, asked.by


def _in_workers(work: Callable, tasks: list, count: int, results: list, asked: Stop) -> None:
    """Run the tasks in a pool of forked workers, handing out the next only while no signal has come.

    The workers are forked by this thread (the main one: run() sets signal handlers) in the pool's first
    submit, before the pool's own thread starts (Python 3.11, the fork context: cpython#90622). That
    matters: PR_SET_PDEATHSIG fires when the thread that forked a worker ends, not its process."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    waiting = iter(enumerate(tasks))
    context = multiprocessing.get_context("fork")
    parent = (os.getpid(),)
    with ProcessPoolExecutor(count, mp_context=context, initializer=_worker_begins, initargs=parent) as pool:
        # Forked with SIGTERM and SIGINT held back, so that one passed on to a worker before it has its own
        # handler waits for it (a worker's first moments run this process's handler, on a copy of `asked`).
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
        try:
            running = {pool.submit(_task, work, task): index for index, task in itertools.islice(waiting, count)}
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                results[running.pop(future)] = future.result()
                handed = next(waiting, None) if not asked.is_set() else None
                if handed is not None:
                    running[pool.submit(_task, work, handed[1])] = handed[0]


_asked_in_worker = Stop()  # in a worker: set by SIGTERM or SIGINT, whenever it comes


def _worker_begins(parent: int) -> None:
    """In a new worker forked by `parent`: SIGTERM and SIGINT set the worker's stop, which each task is
    handed (a task's own handler sets it too), so that a signal passed on to every worker reaches a run
    however far it has got, and leaves an idle worker for the pool to end rather than breaking the pool.
    The kernel kills the worker when `parent` dies (PR_SET_PDEATHSIG, SIGKILL: a signal no handler can
    take for a request to finish and then wait for the next task; the batch in hand is rolled back, as
    by any kill)."""
    import ctypes

    for number in _STOPS:
        signal.signal(number, _hear)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)  # one that came since the fork is heard now
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: this process's own SIGTERM still reaches them
    if os.getppid() != parent:  # it died before the line above (a subreaper may have taken this worker in)
        os._exit(1)


def _hear(number: int, _) -> None:
    _asked_in_worker.by = signal.Signals(number).name
    _asked_in_worker.set()


def _task(work: Callable, task):
    """In a worker: return work(task, stop), or None (not begun) where a signal came before it could begin."""
    if _asked_in_worker.is_set():
        return None
    return work(task, _asked_in_worker)
