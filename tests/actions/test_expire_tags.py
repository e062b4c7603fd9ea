import json

from conftest import NOW

SEVEN_DAYS_AGO = "2026-11-15T09:30:00.000Z"


def expire_tags(maintctl, core, *extra, **kwargs):
    return maintctl("expire-tags", "--db", core.path, "--now", NOW, "--json", *extra, **kwargs)


def tags(core):
    return set(core.sql("SELECT memory_id, tag FROM memory_tags"))


def test_selection_boundaries_at_seven_days(maintctl, core):
    core.tag("m1", "older", suggested_at="2026-11-15T09:29:59.999Z")
    core.tag("m1", "exactly", suggested_at=SEVEN_DAYS_AGO)
    core.tag("m1", "younger", suggested_at="2026-11-15T09:30:00.001Z")
    core.tag("m2", "confirmed", suggested_at="2026-10-01T00:00:00.000Z", status="confirmed")

    result = expire_tags(maintctl, core)

    assert result.code == 0, result
    assert tags(core) == {("m1", "younger"), ("m2", "confirmed")}
    assert result.action("expire-tags")["counts"] == {"expired": 2}


def test_each_expiry_is_audited_against_the_memory_with_the_tag(maintctl, core):
    core.tag("m1", "café ☕", suggested_at="2026-11-01T00:00:00.000Z")

    expire_tags(maintctl, core)

    ((entity_type, entity_id, action, actor, details, created_at),) = core.audit()
    assert (entity_type, entity_id, action, actor, created_at) == ("memory", "m1", "expired", "system:scheduler", NOW)
    assert json.loads(details) == {"tag": "café ☕", "reason": "suggested_tag_expiry"}


def test_the_memory_itself_is_kept(maintctl, core):
    core.tag("m1", "old", suggested_at="2026-11-01T00:00:00.000Z")

    expire_tags(maintctl, core)

    assert core.sql("SELECT id FROM memories") == [("m1",)]


def test_the_expiry_can_be_configured(maintctl, core):
    core.tag("m1", "two-days", suggested_at="2026-11-20T09:30:00.000Z")
    core.tag("m1", "one-day", suggested_at="2026-11-21T09:30:00.001Z")

    expire_tags(maintctl, core, env={"MAINTCTL_TAG_EXPIRY": "2d"})

    assert tags(core) == {("m1", "one-day")}


def test_other_timestamp_forms_and_unreadable_ones(maintctl, core):
    core.tag("m1", "space", suggested_at="2026-11-15 09:30:00")
    core.tag("m1", "offset", suggested_at="2026-11-15T04:30:01-05:00")  # 1 s short of seven days
    core.tag("m1", "garbage", suggested_at="last week")

    result = expire_tags(maintctl, core)

    assert tags(core) == {("m1", "offset"), ("m1", "garbage")}
    assert result.action("expire-tags")["warnings"] == [
        "tag 'garbage' on memory m1: suggested_at 'last week' names no instant; not expired"
    ]


def test_dry_run_lists_memory_and_tag_and_changes_nothing(maintctl, core):
    core.tag("m1", "old", suggested_at="2026-11-01T00:00:00.000Z")
    before = core.digest()

    result = expire_tags(maintctl, core, "--dry-run")

    assert core.digest() == before
    assert result.action("expire-tags")["planned"] == [
        {"id": "m1", "tag": "old", "suggested_at": "2026-11-01T00:00:00.000Z"}
    ]


def test_a_second_run_changes_nothing(maintctl, core):
    core.tag("m1", "old", suggested_at="2026-11-01T00:00:00.000Z")
    expire_tags(maintctl, core)
    before = core.data_digest()

    result = expire_tags(maintctl, core)

    assert result.action("expire-tags")["counts"] == {"expired": 0}
    assert core.data_digest() == before


def test_concurrent_runs_past_the_lock_expire_each_suggestion_once(core, tmp_path):
    """Each run has a lock file of its own: as on a filesystem where locking does not work. The app holds
    the write lock while they start, so that each plans the same first batch before any can claim it."""
    from conftest import asleep_in_a_timed_wait, start_action, until

    for index in range(60):
        core.memory(f"m{index}")
    core.insert_many(
        "INSERT INTO memory_tags (memory_id, tag, status, suggested_at) VALUES (?, ?, 'suggested', ?)",
        [
            (f"m{index % 60}", f"t{index:05}", f"2026-11-{1 + index % 14:02d}T08:00:00.000Z" if index < 6000 else NOW)
            for index in range(6300)
        ],
    )

    core.sql("BEGIN IMMEDIATE")
    runs = [
        start_action(
            "expire-tags",
            core,
            tmp_path,
            "--json",
            env={"MAINTCTL_BATCH_SIZE": "100", "MAINTCTL_HOLD": "0.02s", "MAINTCTL_LOCK_FILE": str(tmp_path / f"l{n}")},
        )
        for n in range(3)
    ]
    until(lambda: all(asleep_in_a_timed_wait(run.pid) for run in runs), "each run's wait for the app")  # planned
    core.sql("COMMIT")
    outputs = [run.communicate(timeout=120) for run in runs]

    assert [run.returncode for run in runs] == [0, 0, 0], [err for _, err in outputs]
    counts = [json.loads(out)["actions"][0]["counts"]["expired"] for out, _ in outputs]
    # All three planned the same first batch: the first to claim it went on; the others' claims found it gone.
    assert sorted(counts) == [0, 0, 6000]
    assert core.sql("SELECT count(*), min(tag) FROM memory_tags") == [(300, "t06000")]
    assert core.sql("SELECT count(*), count(DISTINCT entity_id || details) FROM audit_log") == [(6000, 6000)]
