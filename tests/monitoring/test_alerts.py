"""examples/prometheus/alerts.yml: checked and unit-tested by promtool, on its own test file and on the series that
real maintctl runs wrote in each of that file's situations (so a metric renamed in maintctl fails here)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import redis
import yaml
from scraped import STREAM_METRICS, Scrapes, at_minute, everything_written

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "prometheus"


def promtool(*arguments: str) -> subprocess.CompletedProcess:
    assert shutil.which("promtool"), "promtool is not installed (Debian: apt-get install prometheus)"
    return subprocess.run(["promtool", *arguments], check=False, capture_output=True, text=True, timeout=60)


def test_the_rules_are_valid_and_pass_their_own_tests():
    checked = promtool("check", "rules", str(EXAMPLES / "alerts.yml"))
    tested = promtool("test", "rules", str(EXAMPLES / "alerts_test.yml"))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert tested.returncode == 0, tested.stdout + tested.stderr


def rule_metrics() -> set[str]:
    """Return the maintctl metric names the rules' expressions name."""
    groups = yaml.safe_load((EXAMPLES / "alerts.yml").read_text())["groups"]
    return {name for group in groups for rule in group["rules"] for name in re.findall(r"maintctl_\w+", rule["expr"])}


# Each situation of alerts_test.yml, brought about by real runs: (the minutes to scrape until, the scrapes' step).
def healthy(scrapes: Scrapes, core) -> tuple[float, float]:
    for minute in range(15):
        scrapes.run(minute, "run-all", "--quiet")
    return 14, 1


def fire_reminders_failing(scrapes: Scrapes, core) -> tuple[float, float]:
    scrapes.run(0, "fire-reminders")
    core.reminder("r1", fire_at=at_minute(0))
    core.sql("CREATE TRIGGER frozen BEFORE UPDATE ON reminders BEGIN SELECT RAISE(ABORT, 'frozen'); END")
    for minute in range(1, 23):
        scrapes.run(minute, "fire-reminders", expect=1)
    return 22, 1


def cron_stopped(scrapes: Scrapes, core) -> tuple[float, float]:
    for minute in range(3):
        scrapes.run(minute, "run-all", "--quiet")
    return 24, 1


def notifications_not_delivered(scrapes: Scrapes, core) -> tuple[float, float]:
    core.reminder("r1", fire_at=at_minute(0))
    for minute in range(0, 26, 5):
        scrapes.run(minute, "fire-reminders")  # no Redis URL: the notification stays queued, safely
    return 26, 1


def backups_stale(scrapes: Scrapes, core) -> tuple[float, float]:
    scrapes.run(-47 * 60, "run-all", "--quiet")  # the daily backup 47 hours before minute 0, then none
    scrapes.run(0, "fire-reminders")
    scrapes.run(120, "fire-reminders")
    return 120, 5


def backup_never_written(scrapes: Scrapes, core) -> tuple[float, float]:
    (scrapes.directory / "backups").write_text("a file where the backup directory would be")
    scrapes.run(0, "run-all", "--quiet", expect=1)
    scrapes.run(15, "fire-reminders")
    return 31, 1


def copy_fails_its_check(scrapes: Scrapes, core) -> tuple[float, float]:
    scrapes.run(0, "run-all", "--quiet")
    (copy,) = (scrapes.directory / "backups").glob("*.sqlite3")
    with open(copy, "r+b") as changed:
        changed.seek(200)
        changed.write(b"changed")
    scrapes.run(1, "verify-backups", expect=1)
    return 1, 1


def job_keeps_failing(scrapes: Scrapes, core, redis_url) -> tuple[float, float]:
    core.job("nightly", every="1m", added_at=at_minute(0))
    client = redis.Redis.from_url(redis_url)
    for minute in range(4):
        scrapes.run(minute, "enqueue-jobs", "--redis-url", redis_url)
        *_, (_, fields) = client.xrange("tasks")
        run_id = json.loads(fields[b"data"])["job_run_id"]
        result = {"job_run_id": run_id, "status": "failed", "error": "model timed out"}
        client.xadd("tasks:results", {"data": json.dumps(result)})  # as the app's worker reports
    return 3, 1


def no_metrics_file(scrapes: Scrapes, core) -> tuple[float, float]:
    scrapes.metrics_file = scrapes.directory / "missing" / "maintctl.prom"
    scrapes.env["MAINTCTL_METRICS_FILE"] = str(scrapes.metrics_file)
    result = scrapes.run(0, "run-all", "--quiet")
    assert "metrics file" in result.err and "not written" in result.err
    return 16, 1


def reader_stopped(scrapes: Scrapes, core, redis_url) -> tuple[float, float]:
    """The app's sender reads one notification and never acknowledges it, then stops reading. That entry is
    added at minute 1 of the Unix epoch, where the runs' --now is (Redis names the entries maintctl adds by the
    machine's clock, later than any of it: their ages at --now are 0, as a reader that read them would have)."""
    client = redis.Redis.from_url(redis_url)
    client.xgroup_create("notify:telegram", "telegram-sender", id="0", mkstream=True)
    client.xadd("notify:telegram", {"data": "{}"}, id="60000-0")
    client.xreadgroup("telegram-sender", "sender-1", {"notify:telegram": ">"}, count=1)
    for minute in range(25):
        if minute >= 2:  # from minute 2 on, one reminder a minute piles up unread
            core.reminder(f"r{minute}", fire_at=at_minute(minute))
        scrapes.run(minute, "fire-reminders", "--redis-url", redis_url)
    return 24, 1


SITUATIONS = {
    "a healthy run every minute": healthy,
    "fire-reminders failing": fire_reminders_failing,
    "cron stopped": cron_stopped,
    "notifications not delivered": notifications_not_delivered,
    "backups stale": backups_stale,
    "a backup never written": backup_never_written,
    "a copy that fails its check": copy_fails_its_check,
    "a recurring job that keeps failing": job_keeps_failing,
    "no metrics reach Prometheus": no_metrics_file,
}
READER_SITUATIONS = {"a reader that stopped": reader_stopped}


def promtool_on_real_series(name: str, situation, maintctl, core, tmp_path, request) -> tuple[Scrapes, str]:
    """Bring the situation about with real runs, give its test group in alerts_test.yml their series, run promtool;
    return the scrapes and promtool's output, having asserted that it passed."""
    extra = {"redis_url": request.getfixturevalue("redis_url")} if "redis_url" in situation.__code__.co_varnames else {}
    scrapes = Scrapes(maintctl, tmp_path)
    until, step = situation(scrapes, core, **extra)
    tests = yaml.safe_load((EXAMPLES / "alerts_test.yml").read_text())
    (group,) = [group for group in tests["tests"] if group["name"] == name]
    group["interval"] = f"{step}m"
    group["input_series"] = scrapes.input_series(until, step)
    tests["tests"] = [group]
    tests["rule_files"] = [str(EXAMPLES / "alerts.yml")]
    test_file = tmp_path / "alerts_test.yml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False))

    tested = promtool("test", "rules", str(test_file))

    assert tested.returncode == 0, tested.stdout + tested.stderr
    return scrapes, tested.stdout


def test_every_situation_of_the_rules_tests_is_brought_about_by_real_runs():
    tests = yaml.safe_load((EXAMPLES / "alerts_test.yml").read_text())

    assert [group["name"] for group in tests["tests"]] == [*SITUATIONS, *READER_SITUATIONS]


@pytest.mark.parametrize("name", SITUATIONS)
def test_the_alerts_fire_as_their_tests_say_on_the_series_real_runs_wrote(name, maintctl, core, tmp_path, request):
    promtool_on_real_series(name, SITUATIONS[name], maintctl, core, tmp_path, request)


@pytest.mark.parametrize("name", READER_SITUATIONS)
def test_the_reader_alerts_fire_as_their_tests_say_on_the_series_real_runs_wrote(
    name, maintctl, core, tmp_path, request
):
    scrapes, _ = promtool_on_real_series(name, READER_SITUATIONS[name], maintctl, core, tmp_path, request)

    assert STREAM_METRICS <= scrapes.names()


def test_every_metric_the_rules_name_is_one_a_real_run_writes(maintctl, core, tmp_path, redis_url):
    written = everything_written(maintctl, core, tmp_path, redis_url)

    missing = rule_metrics() - written

    assert not missing, f"alerts.yml names metrics maintctl does not write: {sorted(missing)}"


def test_a_renamed_metric_fails_the_real_series_test(maintctl, core, tmp_path, request):
    """The real-series test can fail: the same situation, its file's metric renamed as a change to maintctl would."""
    scrapes = Scrapes(maintctl, tmp_path)
    fire_reminders_failing(scrapes, core)
    renamed = lambda name: name.replace("maintctl_last_run_failed", "maintctl_last_run_errored")
    scrapes.files = [
        (minute, {(renamed(name), labels): value for (name, labels), value in samples.items()})
        for minute, samples in scrapes.files
    ]
    tests = yaml.safe_load((EXAMPLES / "alerts_test.yml").read_text())
    (group,) = [group for group in tests["tests"] if group["name"] == "fire-reminders failing"]
    group["input_series"] = scrapes.input_series(22)
    test_file = tmp_path / "renamed_test.yml"
    test_file.write_text(yaml.safe_dump({**tests, "rule_files": [str(EXAMPLES / "alerts.yml")], "tests": [group]}))

    tested = promtool("test", "rules", str(test_file))

    assert tested.returncode == 1 and "MaintctlActionFailing" in tested.stdout + tested.stderr
