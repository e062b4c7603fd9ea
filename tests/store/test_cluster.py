"""Redis Cluster: a --redis-url naming any node of a real three-master
cluster delivers notifications and jobs' runs effectively once, as a single
server does."""

import json

import pytest
from conftest import NOW
from redis.cluster import RedisCluster, key_slot
from test_delivery import database_id
from test_jobs import at, enqueue, run_ids

from maintctl.store.outbox import SEND_ONCE_LUA, dedup_prefix


def entries(cluster, stream: str = "notify:telegram") -> list[dict]:
    client = RedisCluster.from_url(cluster.url_of(0))
    try:
        return [
            {"msg_id": fields[b"msg_id"].decode(), "data": json.loads(fields[b"data"])}
            for _, fields in client.xrange(stream)
        ]
    finally:
        client.close()


@pytest.mark.parametrize("node", [0, 1, 2])
def test_any_node_of_the_cluster_takes_the_notifications_once(maintctl, core, cluster, node):
    core.due_reminders(1200, recurring=False)  # more than one script call's worth

    first = maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--redis-url", cluster.url_of(node), "--json")
    again = maintctl("run-all", "--db", core.path, "--now", NOW, "--redis-url", cluster.url_of(node), "--json")

    assert first.code == 0, first
    assert first.json()["notifications"]["delivered"] == 1200
    assert again.code == 0, again
    sent = entries(cluster)
    assert len(sent) == 1200 and len({entry["msg_id"] for entry in sent}) == 1200
    client = RedisCluster.from_url(cluster.url_of(0))
    keys = list(client.scan_iter(match="maintctl:sent:*", count=1000, target_nodes=RedisCluster.ALL_NODES))
    assert len(keys) == 1200
    assert {key_slot(key) for key in keys} == {key_slot(b"notify:telegram")}  # every dedup key in the stream's slot


def test_a_retry_after_a_kill_between_the_entry_and_the_commit_adds_no_second(maintctl, core, cluster):
    core.memory("m1")
    core.reminder("r1")
    queued = maintctl("fire-reminders", "--db", core.path, "--now", NOW)  # no Redis: queued
    (msg_id, message), *_ = core.sql("SELECT msg_id, message FROM maintctl_outbox")
    client = RedisCluster.from_url(cluster.url_of(1))
    client.register_script(SEND_ONCE_LUA)(  # what the killed run had sent
        keys=["notify:telegram"],
        args=[dedup_prefix("notify:telegram", database_id(core)), 3600, json.dumps([[msg_id, message]])],
    )

    result = maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--redis-url", cluster.url_of(2), "--json")

    assert queued.code == 0 and result.code == 0, result
    assert [entry["msg_id"] for entry in entries(cluster)] == [msg_id]
    assert result.json()["notifications"]["already_in_stream"] == 1


def test_jobs_are_enqueued_and_their_results_read_through_the_cluster(maintctl, core, cluster):
    core.job("nightly")
    url = cluster.url_of(0)
    enqueue(maintctl, core, url)
    (run_id,) = run_ids(core)
    client = RedisCluster.from_url(cluster.url_of(2))
    client.xadd("tasks:results", {"data": json.dumps({"job_run_id": run_id, "status": "success", "result": {}})})

    result = enqueue(maintctl, core, url, at(1))

    assert result.code == 0, result
    assert [entry["data"]["job_run_id"] for entry in entries(cluster, "tasks")] == [run_id]
    assert core.sql("SELECT status FROM maintctl_job_runs") == [("success",)]


def test_status_says_the_cluster_answers(maintctl, core, cluster):
    result = maintctl("status", "--db", core.path, "--redis-url", cluster.url_of(1), "--json")

    assert result.code == 0, result
    redis_state = result.json()["redis"]
    assert redis_state["answers"] is True and redis_state["version"].endswith("(a cluster)")


def test_a_master_killed_mid_delivery_loses_nothing_and_doubles_nothing_after_the_failover(
    maintctl, core, replicated_cluster
):
    import subprocess
    import sys
    import time

    import redis
    from conftest import CLEAN_ENV

    ids = core.due_reminders(20_000, recurring=False)
    master = replicated_cluster.master_of("notify:telegram")
    url = next(server.url for server in replicated_cluster.servers if server is not master)
    delivering = subprocess.Popen(
        [sys.executable, "-m", "maintctl", "fire-reminders", "--db", str(core.path), "--now", NOW, "--redis-url", url],
        env={**CLEAN_ENV, "MAINTCTL_BATCH_SIZE": "500", "MAINTCTL_REDIS_TIMEOUT": "2s"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watching = redis.Redis(port=master.port)
    while delivering.poll() is None and watching.xlen("notify:telegram") < 2_000:
        time.sleep(0.002)
    master.process.kill()  # mid-delivery: what it acknowledged last may not have reached its replica
    master.process.wait()
    _, err = delivering.communicate(timeout=120)
    replica = next(
        server
        for server in replicated_cluster.servers
        if server is not master
        and server.process
        and redis.Redis(port=server.port).info("replication").get("master_port") == master.port
    )
    redis.Redis(port=replica.port).execute_command("CLUSTER", "FAILOVER", "TAKEOVER")
    live = [server for server in replicated_cluster.servers if server.process and server is not master]
    slot = redis.Redis(port=replica.port).cluster("keyslot", "notify:telegram")

    def settled() -> bool:
        """Every live node is ok and names the replica as the stream's master (a loaded machine takes a while)."""
        for server in live:
            node = redis.Redis(port=server.port)
            if node.cluster("info")["cluster_state"] != "ok":
                return False
            owner = [master for begin, end, master, *_ in node.cluster("slots") if begin <= slot <= end]
            if [entry[1] for entry in owner] != [replica.port]:
                return False
        return True

    for _ in range(400):
        if settled():
            break
        time.sleep(0.05)

    finished = maintctl("fire-reminders", "--db", core.path, "--now", NOW, "--redis-url", url, "--json")

    assert delivering.returncode == 1, err  # the run saw the master go
    assert finished.code == 0, finished
    sent = [fields[b"msg_id"].decode() for _, fields in redis.Redis(port=replica.port).xrange("notify:telegram")]
    assert len(sent) == len(set(sent)) == 20_000  # none doubled
    assert {msg_id.split(":")[1] for msg_id in sent} == set(ids)  # none lost
    assert core.sql("SELECT count(*) FROM maintctl_outbox WHERE delivered_at IS NULL") == [(0,)]
