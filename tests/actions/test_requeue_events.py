from conftest import NOW, stream_entries

DAY_AGO = "2026-11-21T09:30:00.000Z"


def requeue(maintctl, core, *extra, **kwargs):
    return maintctl("requeue-events", "--db", core.path, "--now", NOW, "--json", *extra, **kwargs)


def pending_since(core):
    return dict(core.sql("SELECT id, pending_since FROM events"))


def test_selection_boundaries_at_twenty_four_hours(maintctl, core):
    core.event("older", pending_since="2026-11-21T09:29:59.999Z")
    core.event("exactly", pending_since=DAY_AGO)
    core.event("younger", pending_since="2026-11-21T09:30:00.001Z")
    core.event("answered", pending_since="2026-11-01T00:00:00.000Z", status="confirmed")

    result = requeue(maintctl, core)

    assert result.code == 0, result
    assert pending_since(core) == {
        "older": NOW,
        "exactly": NOW,
        "younger": "2026-11-21T09:30:00.001Z",
        "answered": "2026-11-01T00:00:00.000Z",
    }
    assert result.action("requeue-events")["counts"] == {"requeued": 2}
    assert [row[:3] for row in core.audit()] == [("event", "older", "requeued"), ("event", "exactly", "requeued")]


def test_an_event_whose_owner_is_not_a_user_is_left_alone(maintctl, core):
    core.event("stranger", owner=9999, pending_since="2026-11-01T00:00:00.000Z", user=False)

    result = requeue(maintctl, core)

    assert result.action("requeue-events")["counts"] == {"requeued": 0}
    assert pending_since(core) == {"stranger": "2026-11-01T00:00:00.000Z"}


def test_the_reprompt_reaches_the_stream_with_the_contract_message(maintctl, core, redis_url):
    core.event(
        "e1",
        owner=1002,
        pending_since="2026-11-20T09:30:00.000Z",
        description='Dentist "Dr. O\'Neil"',
        event_date="2026-12-01",
    )

    result = requeue(maintctl, core, "--redis-url", redis_url)

    assert result.code == 0, result
    ((entry),) = stream_entries(redis_url)
    assert entry["data"] == {
        "user_id": 1002,
        "message_type": "event_reprompt",
        "content": {"event_id": "e1", "description": 'Dentist "Dr. O\'Neil"', "event_date": "2026-12-01"},
    }
    assert entry["msg_id"] == f"event_reprompt:e1:{NOW}"


def test_requeued_again_only_after_another_interval(maintctl, core, redis_url):
    core.event("e1", pending_since="2026-11-20T09:30:00.000Z")
    requeue(maintctl, core, "--redis-url", redis_url)

    same_day = maintctl(
        "requeue-events", "--db", core.path, "--now", "2026-11-23T09:29:59.999Z", "--redis-url", redis_url, "--json"
    )
    next_day = maintctl(
        "requeue-events", "--db", core.path, "--now", "2026-11-23T09:30:00.000Z", "--redis-url", redis_url, "--json"
    )

    assert same_day.action("requeue-events")["counts"] == {"requeued": 0}
    assert next_day.action("requeue-events")["counts"] == {"requeued": 1}
    assert [entry["msg_id"] for entry in stream_entries(redis_url)] == [
        f"event_reprompt:e1:{NOW}",
        "event_reprompt:e1:2026-11-23T09:30:00.000Z",
    ]


def test_the_interval_can_be_configured(maintctl, core):
    core.event("e1", pending_since="2026-11-22T08:30:00.000Z")

    result = requeue(maintctl, core, env={"MAINTCTL_REPROMPT_AFTER": "60m"})

    assert result.action("requeue-events")["counts"] == {"requeued": 1}


def test_unreadable_pending_since_is_reported(maintctl, core):
    core.event("e1", pending_since="yesterday-ish")

    result = requeue(maintctl, core)

    assert result.code == 0
    assert result.action("requeue-events")["warnings"] == [
        "event e1: pending_since 'yesterday-ish' names no instant; not re-prompted"
    ]


def test_dry_run_lists_the_events_and_changes_nothing(maintctl, core, redis_url):
    core.event("e1", pending_since="2026-11-20T09:30:00.000Z")
    before = core.digest()

    result = requeue(maintctl, core, "--dry-run", "--redis-url", redis_url)

    assert core.digest() == before
    assert stream_entries(redis_url) == []
    assert result.action("requeue-events")["planned"] == [
        {"id": "e1", "user_id": 1001, "pending_since": "2026-11-20T09:30:00.000Z"}
    ]
    assert result.json()["notifications"]["would_queue"] == 1
