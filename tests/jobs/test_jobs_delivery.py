"""Exactly one message per occurrence of a job, whatever happens: passes at
once, kills at any instant; and the example worker, end to end."""

import random
import signal
import subprocess
import sys
import time

from conftest import CLEAN_ENV, EXAMPLES, NOW, start_action, stream_entries
from test_jobs import at, enqueue, report, run_ids

JOBS = ("alpha", "beta", "gamma", "delta", "epsilon")


def test_six_passes_at_once_each_with_its_own_lock_make_one_run_and_one_message_per_job(
    maintctl, core, redis_url, tmp_path
):
    for name in JOBS:
        core.job(name)

    passes = [
        start_action(
            "enqueue-jobs",
            core,
            tmp_path,
            "--redis-url",
            redis_url,
            env={
                "MAINTCTL_LOCK_FILE": str(tmp_path / f"lock-{index}")
            },  # no lock between them: the rows' keys must hold
        )  # fmt: skip
        for index in range(6)
    ]
    codes = [process.wait(timeout=60) for process in passes]

    assert codes == [0] * 6, [process.stderr.read() for process in passes]
    assert sorted(entry["data"]["job"] for entry in stream_entries(redis_url, "tasks")) == sorted(JOBS)
    assert core.sql("SELECT count(*), count(DISTINCT job) FROM maintctl_job_runs") == [(5, 5)]


def test_passes_killed_at_any_instant_lose_no_run_and_double_none(maintctl, core, redis_url, tmp_path):
    for name in JOBS:
        core.job(name, every="1m")
    chance = random.Random(12)
    for minute in range(12):
        process = start_action(
            "enqueue-jobs", core, tmp_path, "--redis-url", redis_url, "--now", at(minute),
            env={"MAINTCTL_LOCK_FILE": str(tmp_path / "lock")},
        )  # fmt: skip
        time.sleep(chance.uniform(0.0, 0.35))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        if minute % 3 == 2:  # a worker answers now and then
            for run_id in run_ids(core, "running"):
                report(redis_url, run_id)

    finished = enqueue(maintctl, core, redis_url, at(12))

    assert finished.code == 0, finished
    entries = stream_entries(redis_url, "tasks")
    enqueued = core.sql("SELECT id FROM maintctl_job_runs WHERE status != 'skipped'")
    assert sorted(entry["data"]["job_run_id"] for entry in entries) == sorted(row[0] for row in enqueued)
    assert len({entry["msg_id"] for entry in entries}) == len(entries)
    occurrences = core.sql(
        "SELECT job, scheduled_for, count(*) FROM maintctl_job_runs GROUP BY 1, 2 HAVING count(*) > 1"
    )
    assert occurrences == []
    assert core.sql("SELECT count(*) FROM maintctl_job_runs WHERE status = 'pending'") == [(0,)]


def test_the_example_worker_takes_a_run_and_its_result_comes_back_into_the_history(maintctl, core, redis_url):
    added = maintctl(
        "job", "add", "profile-maintenance", "--type", "profile_maintenance", "--every", "60m",
        "--config", '{"entity_id": "nick", "entity_type": "user"}', "--db", core.path, "--now", NOW,
    )  # fmt: skip
    first = maintctl("run-all", "--db", core.path, "--now", NOW, "--redis-url", redis_url)

    worker = subprocess.run(
        [sys.executable, str(EXAMPLES / "worker.py"), "--once"],
        env={**CLEAN_ENV, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    second = maintctl("run-all", "--db", core.path, "--now", at(1), "--redis-url", redis_url)
    history = maintctl("history", "--job", "profile-maintenance", "--db", core.path, "--json")
    shown = maintctl("history", "--job", "profile-maintenance", "--db", core.path)

    assert added.code == first.code == worker.returncode == second.code == 0, (first, worker.stderr, second)
    (run,) = history.json()["runs"]
    assert run["status"] == "success" and run["error"] is None
    assert run["result"]["config"] == {"entity_id": "nick", "entity_type": "user"}
    assert 50 <= run["duration_ms"] < 30_000  # the worker's work takes 50 ms
    assert "success" in shown.out and NOW in shown.out
