"""retention: the rules of maintctl.toml, on real files: rows older than a
rule's age go by the instant their timestamp names, a batch at a time, with
one audit row per rule and pass; a file that cannot be used is named."""

import json
import subprocess
import sys
import time

import pytest
from conftest import CLEAN_ENV, NOW, RULES, app_writes_while


def rules(core, text: str = RULES):
    (core.path.parent / "maintctl.toml").write_text(text)


def audit_row(core, created_at, action="expired", entity="m1"):
    core.sql(
        "INSERT INTO audit_log (entity_type, entity_id, action, actor, details, created_at)"
        " VALUES ('memory', ?, ?, 'app', NULL, ?)",
        entity,
        action,
        created_at,
    )


def retention(maintctl, core, *extra, env=None):
    return maintctl("retention", "--db", core.path, "--now", NOW, "--json", *extra, env=env)


def kept(core):
    return sorted(entity for (entity,) in core.sql("SELECT entity_id FROM audit_log WHERE entity_type = 'memory'"))


def test_rows_older_than_the_rule_go_by_the_instant_they_name_and_the_rest_stay(maintctl, core):
    rules(core)
    for entity, created_at in [
        ("old-canonical", "2026-01-01T00:00:00.000Z"),
        ("old-spaced", "2026-05-26 09:29:59"),  # 180 days and a second before now
        ("old-offset", "2026-05-26T14:29:00+05:00"),  # 09:29 UTC
        ("young-offset", "2026-05-26T04:31:00-05:00"),  # 09:31 UTC: sorts before now's cutoff as text, is after it
        ("young", "2026-11-01T00:00:00.000Z"),
        ("unreadable", "someday"),
        ("empty", ""),
    ]:
        audit_row(core, created_at, entity=entity)
    audit_row(core, "2020-01-01T00:00:00.000Z", action="fired", entity="old-but-fired")  # the rule's where keeps it

    result = retention(maintctl, core)
    again = retention(maintctl, core)

    assert result.code == 0, result
    assert result.action("retention")["counts"] == {"deleted": 3, "deleted:old-audit": 3}
    assert kept(core) == ["empty", "old-but-fired", "unreadable", "young", "young-offset"]
    assert again.action("retention")["counts"] == {"deleted": 0, "deleted:old-audit": 0}
    (row,) = core.sql("SELECT details, created_at, actor FROM audit_log WHERE entity_type = 'retention'")
    assert (json.loads(row[0]), row[1], row[2]) == ({"rows": 3}, NOW, "system:scheduler")


def test_a_backlog_in_many_batches_and_transactions_has_one_audit_row_per_rule_and_pass(maintctl, core):
    rules(core, RULES + RULES.replace("old-audit", "old-tags").replace("audit_log", "memory_tags").replace(
        "created_at", "suggested_at").replace("where = \"action != 'fired'\"", ""))  # fmt: skip
    core.insert_many(
        "INSERT INTO audit_log (entity_type, entity_id, action, actor, created_at) VALUES ('memory', ?, 'x', 'app', ?)",
        ((f"m{index}", "2025-01-01T00:00:00.000Z") for index in range(2_500)),
    )
    core.memory("m1")
    core.insert_many(
        "INSERT INTO memory_tags (memory_id, tag, status, suggested_at) VALUES ('m1', ?, 'confirmed', ?)",
        ((f"t{index}", "2025-01-01") for index in range(700)),
    )

    result = retention(maintctl, core, env={"MAINTCTL_BATCH_SIZE": "100", "MAINTCTL_HOLD": "0"})

    assert result.code == 0, result
    assert result.action("retention")["counts"] == {
        "deleted": 3_200,
        "deleted:old-audit": 2_500,
        "deleted:old-tags": 700,
    }
    rows = core.sql("SELECT entity_id, details FROM audit_log WHERE entity_type = 'retention' ORDER BY entity_id")
    assert [(name, json.loads(details)) for name, details in rows] == [
        ("old-audit", {"rows": 2_500}),
        ("old-tags", {"rows": 700}),
    ]
    history = maintctl("history", "--db", core.path, "--action", "retention", "--json").json()["runs"]
    assert history[0]["counts"] == {"deleted": 3_200, "deleted:old-audit": 2_500, "deleted:old-tags": 700}


def test_a_dry_run_names_each_rule_with_the_rows_it_would_delete_and_changes_nothing(maintctl, core):
    rules(core)
    audit_row(core, "2025-01-01T00:00:00.000Z")
    audit_row(core, "2026-11-01T00:00:00.000Z")
    before = core.digest()

    result = retention(maintctl, core, "--dry-run")

    assert result.code == 0, result
    assert result.action("retention")["planned"] == [
        {"id": "old-audit", "table": "audit_log", "rows": 1, "older_than": "180d"}
    ]
    assert core.digest() == before


def test_run_all_runs_it_where_the_file_is_and_names_why_not_elsewhere(maintctl, core):
    audit_row(core, "2025-01-01T00:00:00.000Z")

    without = maintctl("run-all", "--db", core.path, "--now", NOW, "--json")
    rules(core)
    with_rules = maintctl("run-all", "--db", core.path, "--now", NOW, "--json")

    assert without.action("retention")["status"] == "skipped"
    assert without.action("retention")["reason"] == f"no rules file ({core.path.parent / 'maintctl.toml'})"
    assert with_rules.action("retention")["counts"]["deleted"] == 1
    assert [name for name, _ in core.sql("SELECT action, id FROM maintctl_runs WHERE action = 'retention'")] == [
        "retention"
    ]  # the skip for want of a file is not history


def test_the_file_can_be_named(maintctl, core, tmp_path):
    elsewhere = tmp_path / "rules" / "retention.toml"
    elsewhere.parent.mkdir()
    elsewhere.write_text(RULES)
    audit_row(core, "2025-01-01T00:00:00.000Z")

    result = retention(maintctl, core, env={"MAINTCTL_CONFIG": str(elsewhere)})

    assert result.action("retention")["counts"]["deleted"] == 1


@pytest.mark.parametrize(
    "text, named",
    [
        ("[[retention]\nname = 'x'", "not valid TOML"),
        (RULES.replace("older_than", "older"), "unknown key 'older'"),
        (RULES.replace('table = "audit_log"\n', ""), "the key 'table' is missing"),
        (RULES.replace('"180d"', '"half a year"'), "older_than: 'half a year' is not a duration"),
        (RULES.replace('"180d"', '"500000w"'), "older_than: '500000w' is longer than 100 years"),
        (RULES.replace('"180d"', "180"), "older_than must be a text that is not empty"),
        (RULES + RULES, "two rules are named 'old-audit'"),
        ("[retention]\nname = 'x'", "retention must be a list of tables"),
        ("[other]\nx = 1", "unknown key 'other'"),
    ],
)
def test_a_file_that_cannot_be_used_is_exit_2_naming_it_and_the_other_actions_run(maintctl, core, text, named):
    rules(core, text)
    core.reminder("r1")
    audit_row(core, "2025-01-01T00:00:00.000Z")

    everything = maintctl("run-all", "--db", core.path, "--now", NOW, "--json")
    alone = retention(maintctl, core)

    assert alone.code == 2
    assert alone.action("retention")["error"].startswith(str(core.path.parent / "maintctl.toml"))
    assert named in alone.action("retention")["error"]
    assert everything.code == 2
    assert everything.action("fire-reminders")["counts"]["fired"] == 1
    assert kept(core) == ["m1"]


@pytest.mark.parametrize(
    "change, named",
    [
        (("audit_log", "app_events"), "rule old-audit: table app_events is missing"),
        (("created_at", "made_at"), "rule old-audit: table audit_log has no column made_at"),
    ],
)
def test_a_rule_on_a_missing_table_or_column_fails_retention_alone(maintctl, core, change, named):
    rules(core, RULES.replace(*change))
    core.reminder("r1")

    result = maintctl("run-all", "--db", core.path, "--now", NOW, "--json")

    assert result.code == 1
    assert result.action("retention")["error"] == named
    assert result.action("fire-reminders")["counts"]["fired"] == 1


def test_a_long_retention_pass_lets_the_app_write(core, tmp_path):
    """Deleting a backlog of old rows, the app's writes wait at most about 0.2 s."""
    rules(core)
    core.insert_many(
        "INSERT INTO audit_log (entity_type, entity_id, action, actor, created_at) VALUES ('memory', ?, 'x', 'app', ?)",
        ((f"m{index}", "2025-01-01T00:00:00.000Z") for index in range(300_000)),
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "maintctl", "retention", "--db", str(core.path), "--now", NOW],
        env={**CLEAN_ENV, "MAINTCTL_BATCH_SIZE": "1"}, cwd=tmp_path, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    while not core.sql("SELECT 1 FROM audit_log WHERE entity_type = 'retention'"):
        time.sleep(0.01)  # until its first transaction has committed: the pass is under way
    waits = app_writes_while(run, core.path)
    run.communicate()

    assert run.returncode == 0
    assert len(waits) >= 3, waits  # the app wrote during the pass
    assert max(waits) < 0.6, sorted(waits)[
        -3:
    ]  # the pass holds the lock 0.2 s at a time; a slow machine is allowed more
    assert core.sql("SELECT count(*) FROM audit_log WHERE entity_type = 'memory'") == [(0,)]
