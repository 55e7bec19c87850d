"""The metric names deploy/'s dashboard and alert rules query (tests check them against what the
services serve, so a renamed metric cannot leave a panel empty or an alert silent)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "ticketflow-dashboard.json"

_NAME = re.compile(r"\b((?:ticketflow|temporal)_[a-z_]+)\b")
_SERIES = re.compile(r"_(bucket|count|sum|total)$")


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]


def queried_names() -> set[str]:
    """Every family name the queries use (``x_bucket`` and ``x_total`` are family ``x``)."""
    exprs = [r["expr"] for r in alert_rules()] + dashboard_exprs()
    return {_SERIES.sub("", name) for e in exprs for name in _NAME.findall(e)}
