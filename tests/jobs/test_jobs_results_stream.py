"""The results stream as Redis may really hold it: an entry at the last id a
stream can have, a stream made anew by a Redis whose clock is behind the one
that wrote what was read. A real redis-server, maintctl run as a process."""

import redis
from test_jobs import at, enqueue, report, run_ids
from test_jobs_results import run_row

LAST_POSSIBLE_ID = "18446744073709551615-18446744073709551615"


def test_an_entry_at_the_last_possible_id_stops_no_later_pass(maintctl, core, redis_url):
    core.job("nightly", every="1h")
    enqueue(maintctl, core, redis_url)
    (first,) = run_ids(core)
    redis.Redis.from_url(redis_url).xadd(
        "tasks:results", {"data": f'{{"job_run_id": "{first}", "status": "success"}}'}, id=LAST_POSSIBLE_ID
    )
    read = enqueue(maintctl, core, redis_url, at(1))
    enqueue(maintctl, core, redis_url, at(61))  # the next run, which waits for its result

    later = enqueue(maintctl, core, redis_url, at(62))

    assert read.code == 0, read
    assert run_row(core, first)[0] == "success"
    assert later.code == 0, later
    assert run_row(core, run_ids(core)[-1])[0] == "running"


def test_a_results_stream_made_anew_with_earlier_ids_is_read_from_its_start(maintctl, core, redis_url):
    client = redis.Redis.from_url(redis_url)
    core.job("nightly", every="1h")
    enqueue(maintctl, core, redis_url)
    (first,) = run_ids(core)
    client.xadd("tasks:results", {"data": f'{{"job_run_id": "{first}", "status": "success"}}'}, id="4102444800000-0")
    enqueue(maintctl, core, redis_url, at(60))  # reads it (a Redis whose clock said 2100), enqueues the next run
    second = run_ids(core)[-1]
    client.delete("tasks:results")  # Redis replaced (or its clock put right): the stream starts again
    report(redis_url, second)

    read = enqueue(maintctl, core, redis_url, at(61))

    assert read.code == 0, read
    assert run_row(core, second)[0] == "success"
    assert read.action("enqueue-jobs")["counts"]["results"] == 1
    assert any("read from its start" in warning for warning in read.action("enqueue-jobs")["warnings"])
