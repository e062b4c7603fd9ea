"""Work run in worker processes forked once, handed out a task at a time,
with signals passed on: a SIGTERM or SIGINT to this process reaches the
tasks in hand (which stop at their next safe point) and no further task
begins; the workers die with this process, however it ends."""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Callable


def run(work: Callable, tasks: list, count: int, stopped: Callable) -> tuple[list, str]:
    """Run work(task) for each task, `count` at once (in this process where
    count is 1); return the results in order (None for a task a signal kept
    from beginning) and the signal that stopped them (SIGTERM where none did).
    `stopped(result)` names the signal a task's result says it heard."""
    heard: list[str] = []

    def asked_to_stop(number: int, _) -> None:
        import multiprocessing

        heard.append(signal.Signals(number).name)
        for child in multiprocessing.active_children():
            os.kill(child.pid, number)

    previous = {number: signal.signal(number, asked_to_stop) for number in (signal.SIGTERM, signal.SIGINT)}
    results: list = [None] * len(tasks)
    try:
        if count <= 1:
            for index, task in enumerate(tasks):
                if heard:
                    break
                results[index] = work(task)
                if by := stopped(results[index]):  # the task in hand heard the signal (its own handler took it)
                    heard.append(by)
        else:
            _in_workers(work, tasks, count, results, heard)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return results, heard[0] if heard else "SIGTERM"


def _in_workers(work: Callable, tasks: list, count: int, results: list, heard: list[str]) -> None:
    """Run the tasks in a pool of forked workers, handing out the next only while no signal has come."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    waiting = iter(enumerate(tasks))
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(count, mp_context=context, initializer=_worker_begins) as pool:
        running = {pool.submit(work, task): index for index, task in itertools.islice(waiting, count)}
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                results[running.pop(future)] = future.result()
                handed = next(waiting, None) if not heard else None
                if handed is not None:
                    running[pool.submit(work, handed[1])] = handed[0]


def _worker_begins() -> None:
    """In a new worker: SIGTERM ends it between tasks (a task in hand may set its own handler), SIGINT is
    for this process to pass on, and the kernel sends it SIGTERM when this process dies (Linux's
    PR_SET_PDEATHSIG), so that no worker outlives it."""
    import ctypes

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: this process's own SIGTERM still reaches them
    if os.getppid() == 1:  # this process died before the line above
        os._exit(1)
