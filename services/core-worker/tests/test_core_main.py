"""The real `ticketflow-core-worker` process: it stops on SIGTERM even while Temporal is down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ticketflow.launcher.devserver import free_port


def test_sigterm_while_waiting_for_temporal_exits_cleanly(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_")},
        "TICKETFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # nothing listens there
        "TICKETFLOW_DATA_DIR": str(tmp_path),
    }
    log = tmp_path / "core.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "ticketflow-core-worker")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while b"waiting for Temporal" not in log.read_bytes():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "never reported waiting for Temporal"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        # Before the fix it retried forever; a liveness bound, not a speed threshold.
        assert proc.wait(timeout=60) == 0, log.read_text()
        assert "stopped before Temporal answered" in log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
