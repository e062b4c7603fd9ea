"""The command lines of crontab.example and the systemd units are ones
maintctl takes: each is run, on a database of its own (windows shortened to
a second, so that the test does not take a minute)."""

import re
import shlex
import shutil
import subprocess

import pytest
from conftest import EXAMPLES

from maintctl.timestamps import parse_duration

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

    assert "run-all --quiet --for 120s --wait 120" in lines
    assert sum(1 for line in lines if "--for 120s --wait 120" in line) == 2  # cron's, and the systemd units'


def option(arguments: list[str], name: str) -> float:
    return parse_duration(arguments[arguments.index(name) + 1] + ("" if name == "--for" else "s")).total_seconds()


def test_the_systemd_units_start_a_window_every_minute_and_keep_a_standby():
    """Each minute one instance starts; each lives long enough to be the next one's standby (its window
    outlasts the next minute's start by a minute, and it waits for the lock as long), and is not still
    running when its own timer comes round again (systemd would not start it: that minute would be lost)."""
    (arguments,) = [arguments for where, arguments in command_lines() if where == "maintctl@.service"]
    window, wait = option(arguments, "--for"), option(arguments, "--wait")
    timer = (EXAMPLES / "systemd" / "maintctl@.timer").read_text()
    instances = sorted(set(re.findall(r"maintctl@([0-9]+)\.timer", timer)))
    (calendar,) = re.findall(r"^OnCalendar=\*-\*-\* \*:%i/([0-9]+):00$", timer, re.MULTILINE)
    step = int(calendar)

    each_minute = sorted(
        minute for instance in instances for minute in range(24 * 60) if minute % 60 % step == int(instance)
    )

    assert re.search(r"^Unit=maintctl@%i\.service$", timer, re.MULTILINE)
    assert each_minute == list(range(24 * 60)), "a minute with no start, or with two"
    assert 60 % step == 0  # the same instance every step minutes, across the hour too
    assert window >= 120 and wait >= window - 60, "no standby: the next start does not wait long enough"
    assert step * 60 >= window + 30, "an instance still running when its timer comes round again"


def kubernetes(name: str) -> dict:
    import yaml

    return yaml.safe_load((EXAMPLES / "kubernetes" / name).read_text())


def container_args(document: dict) -> list[str]:
    (container,) = document["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return container["args"]


def test_the_kubernetes_cronjob_keeps_a_standby_as_the_cron_line_does(maintctl, core):
    cronjob = kubernetes("cronjob.yaml")
    arguments = container_args(cronjob)
    window, wait = option(arguments, "--for"), option(arguments, "--wait")

    result = maintctl(*shortened(arguments), env={"MAINTCTL_DB": str(core.path)})

    assert (cronjob["kind"], cronjob["spec"]["schedule"]) == ("CronJob", "* * * * *")
    assert cronjob["spec"]["concurrencyPolicy"] == "Allow", "Forbid starts no standby while a Job runs"
    assert window >= 120 and wait >= window - 60, "no standby: the next Job does not wait long enough"
    assert cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] > window
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


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_reads_the_units_each_timer_instance_naming_its_minutes(tmp_path):
    for name in ("maintctl@.service", "maintctl@.timer", "maintctl.service", "maintctl.timer"):
        shutil.copy(EXAMPLES / "systemd" / name, tmp_path / name)
    instances = []
    for number in range(3):
        for kind in ("service", "timer"):
            shutil.copy(tmp_path / f"maintctl@.{kind}", tmp_path / f"maintctl@{number}.{kind}")
        instances.append(str(tmp_path / f"maintctl@{number}.timer"))

    verified = subprocess.run(
        ["systemd-analyze", "verify", *instances, str(tmp_path / "maintctl.timer")], capture_output=True, text=True
    )

    assert (verified.returncode, verified.stderr) == (0, ""), verified
