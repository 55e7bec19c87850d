"""A service's console script as a real process, for tests of how it starts, runs and stops.

The process runs in its own session (so a kill reaches anything it started), with the caller's
environment minus every ``TICKETFLOW_*`` variable (a developer's shell must not leak into a test)
plus the test's own, and its output in a log file that failures quote.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .polling import eventually
from .ports import free_port

__all__ = ["ServiceProcess", "console_script"]


def console_script(name: str) -> str:
    """The path of an installed console script of this environment (``ticketflow-api``, ...)."""
    return str(Path(sys.executable).parent / name)


class ServiceProcess:
    """``ServiceProcess([console_script("ticketflow-core-worker")], {...}, log)``; see the module."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.log = log
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_")}
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                list(argv),
                env={**clean, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def assert_running(self) -> None:
        assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.output()}"

    def wait_for_output(self, text: str, *, timeout: float = 30.0) -> None:
        """Until ``text`` appears in the output; fails at once if the process exits first."""

        def printed() -> bool:
            self.assert_running()
            return text in self.output()

        eventually(printed, timeout=timeout, what=f"{text!r} in the output")

    def signal(self, sig: signal.Signals = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        """The exit code; a liveness bound, not a speed threshold."""
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the process group, if still running."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def assert_healthcheck_fails(module: str, port_variable: str) -> None:
    """`python -m <module> healthcheck` (an image's HEALTHCHECK) with nothing on the port that
    ``port_variable`` names: exit 1 and one line on stderr saying what it saw and where. The
    service's other ``TICKETFLOW_*`` settings are cleared, so only that port is probed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_")}
    port = free_port()
    env[port_variable] = f"127.0.0.1:{port}" if port_variable.endswith("_ADDRESS") else str(port)
    done = subprocess.run(
        [sys.executable, "-m", module, "healthcheck"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1, done
    assert "healthcheck: NOT healthy: " in done.stderr
    assert str(port) in done.stderr
