"""Reading what a service says about itself: its JSON log lines and its Prometheus metrics."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["json_log_lines", "metric_value", "scrape"]


def json_log_lines(text: str) -> list[dict[str, Any]]:
    """Every JSON log line of ``text`` as a dict; other lines (a launcher's prefix-less prints,
    ``prog: SIGTERM ...``) are skipped."""
    records = []
    for line in text.splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(address: str, timeout: float = 5.0) -> Samples:
    """Every sample served at ``http://<address>/metrics``: (name, labels) -> value."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=timeout) as answer:
        text = answer.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def metric_value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
    wanted = set(labels.items())
    return sum(
        value for (sample, have), value in samples.items() if sample == name and wanted <= have
    )
