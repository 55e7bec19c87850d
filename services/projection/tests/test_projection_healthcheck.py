"""`python -m ticketflow.projection healthcheck` (the image's HEALTHCHECK) with nothing to probe: exit 1
and one line saying what it saw, quickly (a container runtime gives it a few seconds)."""

from __future__ import annotations

import os
import subprocess
import sys

from ticketflow.testkit import free_port


def test_healthcheck_fails_when_nothing_answers() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_")}
    port = free_port()
    env["TICKETFLOW_PROJECTION_PORT"] = str(port)
    done = subprocess.run(
        [sys.executable, "-m", "ticketflow.projection", "healthcheck"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1, done
    assert "healthcheck: NOT healthy: " in done.stderr
    assert str(port) in done.stderr
