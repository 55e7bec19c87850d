"""One supervised child: what to run (``ChildSpec``), the running process (``Child``), its start.

Each child runs in its own session, so its pid is its process-group id: a terminal's Ctrl-C
reaches only the supervisor, and signalling the group also reaches the child's own subprocesses.
On Linux it is started through ``_pdeathsig.py``, which gives it a parent-death signal and execs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PDEATHSIG_WRAPPER", "Child", "ChildSpec", "Probe", "describe_exit", "spawn"]

Probe = Callable[[], bool]

# Linux: children are started through this wrapper, which sets their parent-death signal and execs.
PDEATHSIG_WRAPPER: Path | None = (
    Path(__file__).with_name("_pdeathsig.py") if sys.platform.startswith("linux") else None
)


@dataclass(frozen=True)
class ChildSpec:
    """What to run. ``env`` None inherits the supervisor's environment."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    ready: Probe | None = None
    ready_what: str = ""  # shown in progress lines, e.g. "http://127.0.0.1:8000/readyz"
    stop_wave: int = 0  # lower waves stop first
    quiet_when_stopping: bool = False  # drop its output once asked to stop (shutdown chatter)
    umask: int | None = None  # e.g. 0o077: what the child creates is 0600; None inherits
    nice: int = 0  # added to the launcher's niceness before the command runs (0: unchanged)


@dataclass
class Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes]
    started_at: float
    pump: threading.Thread | None = None
    ready: bool = False
    exit_expected: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal_group(self, sig: signal.Signals) -> None:
        # The child is its process group's leader, so its pid is the group id. The group outlives
        # a leader that exits first, which is how stragglers it left behind are still reached.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def waiting_for(self) -> str:
        """The child's name and what its readiness probe waits for, for progress lines."""
        return f"{self.name} ({self.spec.ready_what})" if self.spec.ready_what else self.name


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def spawn(spec: ChildSpec) -> subprocess.Popen[bytes]:
    """Start ``spec`` in a session of its own, stdout and stderr on one pipe, stdin closed."""
    env = dict(os.environ if spec.env is None else spec.env)
    env.setdefault("PYTHONUNBUFFERED", "1")  # stream Python children's logs as they happen
    argv = list(spec.argv)
    if PDEATHSIG_WRAPPER is not None:
        # PR_SET_PDEATHSIG fires when the parent *thread* ends: start children from the thread
        # that lives as long as the process.
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("Supervisor.start() must be called from the main thread")
        lc_ctype = f"={env['LC_CTYPE']}" if "LC_CTYPE" in env else "-"
        wrapper = [sys.executable, "-I", "-S", str(PDEATHSIG_WRAPPER), str(os.getpid())]
        # The wrapper sets the niceness before it execs, while the child has one thread: Linux
        # niceness is per thread, and threads inherit it from the one that starts them.
        argv = [*wrapper, lc_ctype, str(spec.nice), *argv]
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=spec.cwd,
        start_new_session=True,
        umask=-1 if spec.umask is None else spec.umask,
    )
    if PDEATHSIG_WRAPPER is None and spec.nice:
        with contextlib.suppress(OSError):  # best effort where there is no wrapper
            os.setpriority(
                os.PRIO_PROCESS, process.pid, os.getpriority(os.PRIO_PROCESS, 0) + spec.nice
            )
    return process
