"""What every action in the registry owes its users, tested for each from
its entry alone: an action added to the registry is held to all of this with
no test code of its own."""

import json

import pytest
from conftest import NOW
from test_cli import some_work

from maintctl.actions import registry

ENTRIES = pytest.mark.parametrize("entry", registry.ACTIONS, ids=lambda entry: entry.name)


@ENTRIES
def test_its_dry_run_changes_not_a_byte_and_lists_its_plan_with_its_counts(maintctl, core, entry):
    some_work(core)
    before = core.digest()

    result = maintctl(entry.name, "--db", core.path, "--now", NOW, "--dry-run", "--json")

    assert result.code == 0, result
    assert core.digest() == before
    (action,) = result.json()["actions"]
    assert action["action"] == entry.name
    assert tuple(action["counts"])[: len(entry.counts)] == entry.counts  # and any of its own beside them
    assert isinstance(action["planned"], list) and all("id" in item for item in action["planned"])


@ENTRIES
def test_its_run_reports_its_counts_records_its_history_and_is_quiet_when_all_went_well(maintctl, core, entry):
    some_work(core)

    result = maintctl(entry.name, "--db", core.path, "--now", NOW, "--json")
    again = maintctl(entry.name, "--db", core.path, "--now", NOW, "--quiet")
    history = maintctl("history", "--db", core.path, "--action", entry.name, "--json")

    assert result.code == 0, result
    (action,) = result.json()["actions"]
    assert (action["status"], tuple(action["counts"])[: len(entry.counts)]) == ("ok", entry.counts)
    assert (again.code, again.out, again.err) == (0, "", "")
    assert [run["action"] for run in history.json()["runs"]] == [entry.name, entry.name]


@ENTRIES
def test_its_command_its_schedule_status_and_metrics_name_it(maintctl, core, tmp_path, entry):
    metrics = tmp_path / "maintctl.prom"

    helped = maintctl(entry.name, "--help", env={"COLUMNS": "300"})
    scheduled = maintctl("schedule", entry.name, "--db", core.path, "--now", NOW, "--json")
    ran = maintctl("run-all", "--db", core.path, "--now", NOW, "--json", env={"MAINTCTL_METRICS_FILE": str(metrics)})
    status = maintctl("status", "--db", core.path, "--now", NOW, "--json")

    assert helped.code == 0 and " ".join(entry.summary.split()[:4]) in " ".join(helped.out.split())
    expected = "every run" if entry.every is None else f"every {entry.every.days}d"
    assert json.loads(scheduled.out)["schedule"] == expected
    assert entry.name in [action["action"] for action in ran.json()["actions"]]
    assert entry.name in [action["action"] for action in status.json()["actions"]]
    assert f'maintctl_paused{{action="{entry.name}"}} 0.0' in metrics.read_text()


def test_run_all_runs_them_in_the_registrys_order(maintctl, core):
    result = maintctl("run-all", "--db", core.path, "--now", NOW, "--json")

    assert [action["action"] for action in result.json()["actions"]] == list(registry.ORDER)
