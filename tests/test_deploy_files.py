"""deploy/'s Prometheus configs, alert rules and Grafana dashboard are well-formed."""

from __future__ import annotations

import json

import yaml

from .deploy_metrics import ALERTS, DASHBOARD, DEPLOY, alert_rules, dashboard_exprs, queried_names

JOBS = {
    "ticketflow-api",
    "ticketflow-core-worker",
    "ticketflow-agent-worker",
    "ticketflow-projection",
    "temporal",
}


def test_scrape_configs_cover_every_service() -> None:
    for name in ("prometheus.yml", "prometheus.dev.yml"):
        doc = yaml.safe_load((DEPLOY / "prometheus" / name).read_text())
        assert {job["job_name"] for job in doc["scrape_configs"]} == JOBS, name
        assert doc["rule_files"] == [ALERTS.name]


def test_alert_rules_are_complete() -> None:
    rules = alert_rules()
    assert len(rules) >= 8
    for rule in rules:
        assert rule["alert"].startswith("Ticketflow"), rule
        assert rule["expr"].strip() and rule["for"], rule
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule
        assert rule["annotations"]["summary"], rule


def test_dashboard_is_grafana_json_with_the_asked_panels() -> None:
    doc = json.loads(DASHBOARD.read_text())
    titles = {p["title"] for p in doc["panels"]}
    for wanted in (
        "Waiting for approval",
        "Oldest waiting",
        "Stuck tickets",
        "Fallback share",
        "Agent error rate by tier",
        "Ticket latency, unattended (p50, p99)",
    ):
        assert wanted in titles
    assert all(expr.strip() for expr in dashboard_exprs())
    assert "ticketflow_approvals_waiting" in queried_names()
