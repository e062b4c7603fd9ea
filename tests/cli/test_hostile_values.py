"""Every option and setting that takes a duration, a number or a timestamp,
given values a hostile or careless hand could type: a one-line refusal
(exit 2, naming it) or a working run, never a traceback, and never a setting
that breaks the runs after it."""

import pytest
from conftest import NOW

HOSTILE = [
    "0",
    "-1",
    "nan",
    "inf",
    "1e20",
    "9" * 30,
    "9" * 5000,  # past Python's limit on converting digits to a number
    "500000w",
    "99999999999d",
    "0.0000001s",
    "１０s",  # full-width digits
    "",
]

# (the command, the option or variable, how the value is given)
SETTINGS = [
    ("run-all", "--wait", "flag"),
    ("run-all", "--max-items", "flag"),
    ("run-all", "--max-seconds", "flag"),
    ("run-all", "--keep", "flag"),
    ("run-all", "--for", "flag"),
    ("history", "--limit", "flag"),
    ("stats", "--since", "flag"),
    ("schedule", "--every", "flag"),
    ("run-all", "--now", "flag"),
    *(
        ("run-all", name, "env")
        for name in (
            "MAINTCTL_NOW",
            "MAINTCTL_TAG_EXPIRY",
            "MAINTCTL_REPROMPT_AFTER",
            "MAINTCTL_BATCH_SIZE",
            "MAINTCTL_HOLD",
            "MAINTCTL_REDIS_TIMEOUT",
            "MAINTCTL_BUSY_TIMEOUT",
            "MAINTCTL_DEDUP_TTL",
            "MAINTCTL_HISTORY_KEEP",
            "MAINTCTL_OUTBOX_KEEP",
            "MAINTCTL_PING_TIMEOUT",
            "MAINTCTL_STUCK_AFTER",
            "MAINTCTL_BACKUP_KEEP",
            "MAINTCTL_CHECKPOINT",
        )
    ),
]


def give(maintctl, database, command: str, name: str, how: str, value: str):
    arguments = [command] + (["prune"] if command == "schedule" else []) + ["--db", database]
    if name not in ("--now", "MAINTCTL_NOW") and command != "history":
        arguments += ["--now", NOW]
    if name == "--for":
        arguments += ["--every", "1s"]
    if how == "flag":
        return maintctl(*arguments, f"{name}={value}", timeout=60)
    return maintctl(*arguments, env={name: value}, timeout=60)


@pytest.mark.parametrize("command, name, how", SETTINGS, ids=lambda part: part if isinstance(part, str) else None)
def test_a_hostile_value_is_refused_in_one_line_or_works_and_breaks_nothing_after(maintctl, core, command, name, how):
    import hashlib
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    core.reminder("r1", recurrence=60)
    core.connection.close()

    def attempt(index: int, value: str):
        """Give the value to a copy of the database of its own; return what that did, whether it left the
        file as it was, and (where it was taken) the runs after it."""
        database = core.path.with_name(f"copy{index}.db")
        shutil.copy(core.path, database)
        before = hashlib.sha256(database.read_bytes()).digest()
        given = give(maintctl, database, command, name, how, value)
        untouched = hashlib.sha256(database.read_bytes()).digest() == before
        if given.code != 0:
            return value, given, untouched, None, None
        after = maintctl("run-all", "--db", database, "--now", NOW, "--json", timeout=60)
        status = maintctl("status", "--db", database, "--now", NOW, timeout=60)
        return value, given, untouched, after, status

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(attempt, range(len(HOSTILE)), HOSTILE))

    for value, given, untouched, after, status in outcomes:
        assert "Traceback" not in given.err, (value, given.err[-2000:])
        assert given.code in (0, 2), (value, given)
        if given.code == 2:
            (line,) = given.err.splitlines()
            assert line.startswith("maintctl: error: ") and name in line, (value, line)
            assert len(line) < 300, (value, line)  # a 5,000-digit value is not echoed whole
            assert untouched, value  # a refusal changes nothing
        else:
            assert after.code == 0, (value, after)
            assert "Traceback" not in status.err and status.code in (0, 1), (value, status)


@pytest.mark.parametrize(
    "name, value, named",
    [
        ("MAINTCTL_TAG_EXPIRY", "99999999999d", "is longer than 100 years"),
        ("MAINTCTL_BATCH_SIZE", "99999999999999999999", "is not a whole number from 1 to 1,000,000"),
        ("MAINTCTL_HOLD", "nan", "is not a duration"),
        ("MAINTCTL_NOW", "0000-06-01", "is in year 0"),
    ],
)
def test_refusals_say_what_is_wrong(maintctl, core, name, value, named):
    result = maintctl("run-all", "--db", core.path, env={name: value})

    assert result.code == 2
    assert result.err == f"maintctl: error: {name}: {value!r} {named}" + result.err.split(named, 1)[1]
    assert len(result.err.splitlines()) == 1


def test_history_limit_beyond_64_bits_is_refused(maintctl, core):
    result = maintctl("history", "--db", core.path, "--limit", str(2**64))

    assert result.code == 2
    assert result.err.startswith("maintctl: error: Invalid value for '--limit'")
    assert len(result.err.splitlines()) == 1


@pytest.mark.parametrize("now", ["9999-12-31T23:59:59.999Z", "0001-01-01T00:00:00.000Z"])
def test_the_ends_of_the_calendar_are_working_runs(maintctl, core, now):
    core.reminder("r1", recurrence=60)
    core.memory("p1", status="pending", expires="0001-01-01")
    core.tag("m1", "old", suggested_at="0000-01-01")
    core.event("e1", pending_since="0000-01-01")

    result = maintctl("run-all", "--db", core.path, "--now", now, "--json")

    assert result.code == 0, result
    assert not [action for action in result.json()["actions"] if action["status"] == "failed"], result.json()


def test_a_run_dated_in_year_9999_does_not_hold_back_the_daily_actions_after_it(maintctl, core):
    future = maintctl("run-all", "--db", core.path, "--now", "9999-12-31T23:00:00.000Z", "--json")

    today = maintctl("run-all", "--db", core.path, "--now", NOW, "--json")

    assert future.action("backup")["status"] == "ok"
    assert today.code == 0, today
    assert today.action("backup")["status"] == "ok"
    assert today.action("prune")["status"] == "ok"


class TestSchedulesThatCannotBeKept:
    def test_an_absurd_interval_is_refused_and_the_runs_after_it_work(self, maintctl, core):
        refused = maintctl("schedule", "prune", "--every", "500000w", "--db", core.path)

        after = maintctl("run-all", "--db", core.path, "--now", NOW, "--json")

        assert refused.code == 2
        assert refused.err == "maintctl: error: --every: '500000w' is longer than 100 years (36525d)\n"
        assert after.code == 0, after
        assert core.sql("SELECT count(*) FROM maintctl_schedules") == [(0,)]

    @pytest.mark.parametrize(
        "column, value",
        [
            ("every_seconds", 1e300),
            ("every_seconds", -5),
            ("cron", "0 3 * * * *"),
            ("tz", "Mars/Olympus"),
            ("set_at", "when?"),
        ],
    )
    def test_a_schedule_spoiled_in_the_database_holds_back_its_action_alone(self, maintctl, core, column, value):
        maintctl("schedule", "backup", "--cron", "0 3 * * *", "--db", core.path, "--now", NOW)
        core.sql(f"UPDATE maintctl_schedules SET {column} = ? WHERE action = 'backup'", value)
        core.reminder("r1")

        result = maintctl("run-all", "--db", core.path, "--now", NOW, "--json")
        status = maintctl("status", "--db", core.path, "--now", NOW, "--json")

        assert result.code == 0, result
        assert result.action("fire-reminders")["counts"]["fired"] == 1
        assert result.action("backup")["status"] == "skipped"
        assert "cannot" in result.action("backup")["reason"]
        assert status.code == 1
        assert any(line.startswith("backup: ") for line in status.json()["attention"])
