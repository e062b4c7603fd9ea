"""A worker for the Core app's recurring jobs, as few lines as it takes.

maintctl enqueues each run of a job on the stream `tasks`; this reads them
in a consumer group (several workers share the work, a run is handed to
one), does the work, reports on `tasks:results` and acknowledges the run.
maintctl reads the reports back into the job's history.

    REDIS_URL=redis://localhost:6379/0 python examples/worker.py [--once]

--once: handle what is waiting, then exit (for a test, or a cron line).
"""

import json
import os
import socket
import sys
import time

import redis

client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
TASKS, RESULTS, GROUP = os.environ.get("TASKS", "tasks"), os.environ.get("RESULTS", "tasks:results"), "workers"
try:
    client.xgroup_create(TASKS, GROUP, id="0", mkstream=True)
except redis.ResponseError:
    pass  # the group is there already


def work(run: dict) -> dict:
    """The app's own work for the run (an LLM call to merge profile attributes, say); returns its result."""
    time.sleep(0.05)
    return {"job_type": run["job_type"], "config": run["config"], "done_by": socket.gethostname()}


while True:
    # ">" asks for runs no worker of the group has been given; block up to a second for one.
    batches = client.xreadgroup(GROUP, f"{socket.gethostname()}-{os.getpid()}", {TASKS: ">"}, count=10, block=1000)
    for _, entries in batches or []:
        for entry_id, fields in entries:
            run = json.loads(fields[b"data"])
            try:
                report = {"job_run_id": run["job_run_id"], "status": "success", "result": work(run)}
            except Exception as error:  # noqa: BLE001 - a failed run is reported, and the worker goes on
                report = {"job_run_id": run["job_run_id"], "status": "failed", "error": str(error)}
            client.xadd(RESULTS, {"data": json.dumps(report)}, maxlen=100_000, approximate=True)
            client.xack(TASKS, GROUP, entry_id)
    if not batches and "--once" in sys.argv:
        break
