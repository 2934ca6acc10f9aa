"""Prometheus rules and scrape configs checked by promtool; the dashboard against the metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from ingest.metrics import CollectorMetrics
from processors.webhooks.metrics import WebhookMetrics
from processors.worker.metrics import WorkerMetrics

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "usage-stream.json"
SCRAPE_CONFIGS = ["prometheus.yml", "prometheus-kubernetes.yml"]
JOBS = {"usage-stream-collector", "usage-stream-worker"}
METRIC = re.compile(r"\b((?:usage_stream|process)_[a-z0-9_]+)\b")


def promtool(*args: str, cwd: Path = PROMETHEUS) -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: deploy/setup.sh installs it (Debian package prometheus)")
    done = subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def exported() -> set[str]:
    """Every series name the collector, the worker and the webhook sender can expose."""
    names = set()
    for build in (CollectorMetrics, WorkerMetrics, WebhookMetrics):
        registry = CollectorRegistry()
        build(registry)
        for family in registry.collect():
            if family.type == "counter":
                names.add(f"{family.name}_total")
            elif family.type == "histogram":
                names |= {f"{family.name}_{s}" for s in ("bucket", "sum", "count")}
            else:
                names.add(family.name)
    return names


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def test_rules_are_valid() -> None:
    assert "SUCCESS" in promtool("check", "rules", "alerts.yml")


def test_every_alert_fires_in_the_rule_unit_tests() -> None:
    promtool("test", "rules", "alerts_test.yml")
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    firing = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in alert_rules()} == firing


def test_the_alerts_the_issue_asks_for_exist() -> None:
    exprs = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    assert "consumer_lag_messages" in exprs["UsageStreamConsumerLagGrowing"]
    assert "freshness_seconds_bucket" in exprs["UsageStreamFreshnessP95OverTarget"]
    assert "0.95" in exprs["UsageStreamFreshnessP95OverTarget"]
    assert 'code=~"5.."' in exprs["UsageStreamCollectorErrorRatio"]
    assert "dead_letters_total" in exprs["UsageStreamDeadLetters"]
    assert "events_received_total" in exprs["UsageStreamNoEventsReceived"]
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert {"summary", "description"} <= rule["annotations"].keys(), rule["alert"]


@pytest.mark.parametrize("config", SCRAPE_CONFIGS)
def test_scrape_configs_are_valid_and_scrape_both_jobs(config: str) -> None:
    assert "SUCCESS" in promtool("check", "config", config)
    document = yaml.safe_load((PROMETHEUS / config).read_text())
    assert {job["job_name"] for job in document["scrape_configs"]} == JOBS
    assert document["rule_files"] == ["alerts.yml"]


def test_alerts_name_only_jobs_that_are_scraped() -> None:
    for rule in alert_rules():
        for job in re.findall(r'job=~?"([^"]+)"', rule["expr"]):
            assert any(re.fullmatch(job, name) for name in JOBS), (rule["alert"], job)


def test_alerts_and_dashboard_read_only_metrics_the_code_exports() -> None:
    names = exported()
    queries = [rule["expr"] for rule in alert_rules()] + dashboard_exprs()
    used = {m for q in queries for m in METRIC.findall(q)}
    assert used, "no metric found in the queries"
    assert used - names == set()


def test_every_metric_of_ours_is_on_the_dashboard() -> None:
    shown = {m for q in dashboard_exprs() for m in METRIC.findall(q)}
    ours = {n for n in exported() if n.startswith("usage_stream_")}
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in ours}
    missing = {f for f in families if not any(s.startswith(f) for s in shown)}
    assert missing == set()


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule (Grafana's interval variable filled in)."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": e.replace("$__rate_interval", "5m")}
        for i, e in enumerate(dashboard_exprs())
    ]
    (tmp_path / "dashboard.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "d", "rules": rules}]})
    )
    assert f"SUCCESS: {len(rules)} rules found" in promtool(
        "check", "rules", "dashboard.yml", cwd=tmp_path
    )


def test_dashboard_is_well_formed() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "usage-stream" and board["title"]
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs), panel["title"]


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus() -> None:
    grafana = DEPLOY / "grafana"
    sources = yaml.safe_load((grafana / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    boards = yaml.safe_load((grafana / "provisioning/dashboards/usage-stream.yml").read_text())
    assert boards["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_the_operations_doc_lists_the_metrics_the_code_exports() -> None:
    doc = (DEPLOY.parent / "docs" / "operations.md").read_text()
    ours = {re.sub(r"_(bucket|sum|count)$", "", n) for n in exported() if "usage_stream_" in n}

    def listed(name: str) -> bool:
        """By full name, or abbreviated as `…_tail` after a sibling's full name."""
        tails = [name[i:] for i, c in enumerate(name) if c == "_"]
        return name in doc or any(f"`…{tail}`" in doc for tail in tails)

    assert {n for n in ours if not listed(n)} == set()
    mentioned = set(re.findall(r"`(usage_stream_[a-z_]+)`", doc))
    assert mentioned - ours == set()
