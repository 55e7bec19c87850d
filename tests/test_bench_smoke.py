"""The benchmark command still runs end to end and reports what happened (a tiny batch: the
figures themselves mean nothing here; speed is measured by running bench/run.py, not by tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]  # two stacks start and stop


def test_the_benchmark_runs_both_shapes_and_accounts_for_every_ticket(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            *("--tickets", "8", "--light", "3", "--json", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["machine"]["cpus"] >= 1
    runs = {r["shape"]: r for r in report["runs"]}
    assert set(runs) == {"ticketflow", "floor"}
    for run in runs.values():
        assert run["tickets"] == 8
        assert sum(run["statuses"].values()) == 8
        assert run["tickets_per_s"] > 0 and run["cpu_s_per_ticket"] > 0
        assert run["cpu_s_per_ticket_by_process"].get("temporal server", 0) > 0
        assert run["light_submit_p50_ms"] > 0  # the light-load probe after the batch ran
    assert runs["ticketflow"]["statuses"] == {"RESOLVED": 8}
    assert runs["ticketflow"]["human_fraction"] == 0
    assert {"ticketflow-api", "ticketflow-core-worker"} <= set(
        runs["ticketflow"]["cpu_s_per_ticket_by_process"]
    )
    assert runs["ticketflow"]["vs_floor"] > 0
    assert "| ticketflow | overhead | 8 |" in proc.stdout
