"""scripts/capture_histories.py keeps working: a full run into a temp dir, then a replay of it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from ticketflow.contracts import DATA_CONVERTER, names
from ticketflow.core_worker.workflow import TicketWorkflow

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "capture_histories.py"
COMMITTED = Path(__file__).resolve().parent / "histories" / names.TICKET_WORKFLOW


def newest_version() -> str:
    return max(
        (p.name.split("-", 1)[0] for p in COMMITTED.glob("*.json")), key=lambda v: int(v[1:])
    )


async def test_capture_writes_a_replayable_history_per_path(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        "--out",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    took = time.monotonic() - started
    assert proc.returncode == 0, f"capture failed:\n{out.decode()}\n{err.decode()}"
    assert took < 60, f"a capture run took {took:.0f}s: keep it well under a minute"

    written = sorted(p.name for p in (tmp_path / names.TICKET_WORKFLOW).glob("*.json"))
    current = sorted(p.name for p in COMMITTED.glob("*.json"))
    newest = newest_version()
    assert written == [n for n in current if n.startswith(f"{newest}-")], (
        "the script captures exactly the paths of the newest committed version"
    )
    replayer = Replayer(workflows=[TicketWorkflow], data_converter=DATA_CONVERTER)
    for path in sorted((tmp_path / names.TICKET_WORKFLOW).glob("*.json")):
        await replayer.replay_workflow(WorkflowHistory.from_json(path.stem, path.read_text()))


def test_capture_refuses_to_overwrite_or_rewrite_an_old_version(tmp_path: Path) -> None:
    target = tmp_path / names.TICKET_WORKFLOW
    target.mkdir()
    newest = newest_version()
    (target / f"{newest}-auto-resolve.json").write_text("{}")
    refused = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--case", "auto-resolve"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert refused.returncode != 0 and "refusing to overwrite" in refused.stderr
    old = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--version", "v1"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert old.returncode != 0 and "never re-captured" in old.stderr
