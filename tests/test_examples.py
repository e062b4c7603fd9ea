"""The command lines of crontab.example and the systemd units are ones
maintctl takes: each is run, on a database of its own (windows shortened to
a second, so that the test does not take a minute)."""

import re
import shlex
from pathlib import Path

import pytest
from conftest import EXAMPLES

ROOT = EXAMPLES.parent


def command_lines() -> list[tuple[str, list[str]]]:
    """Return (where, maintctl's arguments) for each maintctl line of the examples, active or commented out."""
    found = []
    for line in (ROOT / "crontab.example").read_text().splitlines():
        if match := re.match(r"#? ?(?:\S+ ){5}\S*/maintctl (.*)$", line):
            arguments = shlex.split(match[1])
            found.append(("crontab.example", arguments[: arguments.index(">")] if ">" in arguments else arguments))
    for unit in sorted((EXAMPLES / "systemd").glob("*.service")):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                found.append((unit.name, shlex.split(line.split("/maintctl ", 1)[1])))
    return found


def shortened(arguments: list[str]) -> list[str]:
    return ["1s" if previous == "--for" else argument for previous, argument in zip(["", *arguments], arguments)]


@pytest.mark.parametrize(("where", "arguments"), command_lines(), ids=lambda value: str(value))
def test_each_example_line_runs(maintctl, core, where, arguments):
    result = maintctl(*shortened(arguments), env={"MAINTCTL_DB": str(core.path)})

    assert result.code == 0, (where, result)
    if "--quiet" in arguments:
        assert result.out == ""  # all went well


def test_the_examples_have_the_recommended_window():
    lines = [" ".join(arguments) for _, arguments in command_lines()]

    assert "run-all --quiet --for 60s --wait 30" in lines
    assert sum(1 for line in lines if "--for 60s" in line) == 2  # cron's, and the systemd units'
    assert Path(EXAMPLES / "systemd" / "maintctl-even.timer").read_text().count("Unit=maintctl@even.service") == 1


def kubernetes(name: str) -> dict:
    import yaml

    return yaml.safe_load((EXAMPLES / "kubernetes" / name).read_text())


def container_args(document: dict) -> list[str]:
    (container,) = document["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return container["args"]


def test_the_kubernetes_cronjob_runs_one_window_at_a_time(maintctl, core):
    cronjob = kubernetes("cronjob.yaml")

    result = maintctl(*shortened(container_args(cronjob)), env={"MAINTCTL_DB": str(core.path)})

    assert (cronjob["kind"], cronjob["spec"]["concurrencyPolicy"]) == ("CronJob", "Forbid")
    assert cronjob["spec"]["startingDeadlineSeconds"] > 0
    assert result.code == 0 and result.out == "", result


def test_the_indexed_job_covers_every_tenant_once_over_its_shards(maintctl, tmp_path):
    from conftest import new_core

    job = kubernetes("indexed-job.yaml")
    spec = job["spec"]["jobTemplate"]["spec"]
    tenants = tmp_path / "tenants"
    tenants.mkdir()
    for number in range(12):
        new_core(tenants / f"tenant{number}.db").connection.close()
    arguments = [str(tenants / "*.db") if value == "/data/tenants/*.db" else value for value in container_args(job)]
    arguments = [value for value in arguments if value != "--quiet"] + ["--json"]

    seen = []
    for index in range(spec["completions"]):
        result = maintctl(*arguments, env={"JOB_COMPLETION_INDEX": str(index)})
        assert result.code == 0, result
        seen += [entry["database"] for entry in result.json()["databases"]]

    assert spec["completionMode"] == "Indexed" and job["spec"]["concurrencyPolicy"] == "Forbid"
    assert sorted(seen) == sorted(str(path) for path in tenants.glob("*.db"))
