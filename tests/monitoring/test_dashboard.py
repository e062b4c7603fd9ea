"""examples/grafana/maintctl.json: valid JSON of a Grafana dashboard whose every query parses as PromQL and names
only metrics that a real maintctl run writes (and maintctl_stream_*, by the contract's names, until they land)."""

import json
import re
from pathlib import Path

import yaml
from scraped import STREAM_METRICS, everything_written
from test_alerts import promtool

DASHBOARD = Path(__file__).resolve().parents[2] / "examples" / "grafana" / "maintctl.json"
NODE_EXPORTER = {"node_textfile_mtime_seconds", "node_textfile_scrape_error"}


def queries(dashboard: dict) -> list[str]:
    """Return every PromQL expression of the dashboard: its panels' and its variables'."""
    panels = [panel for panel in dashboard["panels"] for panel in [panel, *panel.get("panels", [])]]
    found = [target["expr"] for panel in panels for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            found.append(re.fullmatch(r"label_values\((\w+), \w+\)", query["query"])[1])
    return found


def metric_names(expression: str) -> set[str]:
    """Return the metric names an expression selects: each name before a `{` or standing alone as a selector."""
    without_labels = re.sub(r"\{[^}]*\}", "{}", expression)
    words = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", without_labels))
    return {word for word in words if "_" in word and word not in ("by", "without", "on", "ignoring")}


def test_the_dashboard_is_a_grafana_dashboard_with_a_prometheus_datasource_variable():
    dashboard = json.loads(DASHBOARD.read_text())

    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], panel["title"]
    titles = " ".join(panel["title"] for panel in dashboard["panels"] if panel["type"] == "row")
    assert titles == "Runs Backlog Lateness Readers Backups"


def test_every_query_parses_as_promql(tmp_path):
    expressions = [expression.replace("$instance", ".*") for expression in queries(json.loads(DASHBOARD.read_text()))]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{index}", "expr": expression}
                    for index, expression in enumerate(expressions)
                ],
            }
        ]
    }
    rule_file = tmp_path / "queries.yml"
    rule_file.write_text(yaml.safe_dump(rules))

    checked = promtool("check", "rules", str(rule_file))

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_metric_the_dashboard_names_is_one_maintctl_writes(maintctl, core, tmp_path, redis_url):
    written = everything_written(maintctl, core, tmp_path, redis_url)

    named = set().union(*map(metric_names, queries(json.loads(DASHBOARD.read_text()))))

    unknown = named - written - NODE_EXPORTER
    assert not unknown, f"the dashboard names metrics maintctl does not write: {sorted(unknown)}"
    assert {"maintctl_last_run_failed", "maintctl_backup_newest_timestamp_seconds", *STREAM_METRICS} <= named
