"""Run child processes as one unit: start, stream output, wait for readiness, stop all of them.

- Each child runs in its own process group (its own session), so a terminal's Ctrl-C reaches only
  the supervisor, which then stops the children in order, and a child's own subprocesses are
  stopped with it. Children are signalled by their process-group id (= their pid), never by name.
- SIGINT, SIGTERM, SIGHUP (the terminal closed) and SIGQUIT all stop every child in order.
- If the supervisor dies without stopping them (SIGKILL, a crash): on Linux each child has a
  parent-death signal (SIGTERM, set by ``_pdeathsig.py`` before it execs), and with a
  ``state_file`` the supervisor lists its children there (pid + start time) so that the next start
  stops those still running (``stop_stale_children()``; see ``statefile.py``).
- Output: every line of a child's stdout and stderr is printed prefixed with its name.
- Readiness: a child may have a probe (a callable polled until it returns True, e.g. a port that
  opens or an HTTP 200 on /readyz); waits poll with a deadline and print progress.
- Stop: SIGTERM to every child of a stop wave (lower waves first: services before the Temporal
  server they need for a clean shutdown), SIGKILL to whatever is left after the grace period, then
  SIGKILL to the process group to leave nothing behind. Another stop signal a second or more
  after the first skips the grace period.
- A child that exits while it should run is named, the rest are stopped, and the exit is non-zero.

Exceptions:
    SupervisorError
    ├── ChildExitedError    a child exited while it was expected to run
    ├── NotReadyError       a child did not become ready before its deadline
    └── StopRequestedError  a stop signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT) arrived while waiting
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TextIO

from . import statefile
from ._child import PDEATHSIG_WRAPPER, Child, ChildSpec, Probe, describe_exit, spawn
from ._output import Output
from ._stop_signals import STOP_SIGNALS, StopSignals

__all__ = [
    "PDEATHSIG_WRAPPER",
    "STOP_SIGNALS",
    "Child",
    "ChildExitedError",
    "ChildSpec",
    "NotReadyError",
    "Probe",
    "Stage",
    "StopRequestedError",
    "Supervisor",
    "SupervisorError",
    "describe_exit",
]

Stage = Sequence[ChildSpec] | Callable[[], None]


class SupervisorError(Exception):
    pass


class ChildExitedError(SupervisorError):
    def __init__(self, name: str, returncode: int) -> None:
        super().__init__(f"{name} {describe_exit(returncode)}")
        self.name = name
        self.returncode = returncode


class NotReadyError(SupervisorError):
    pass


class StopRequestedError(SupervisorError):
    def __init__(self, signum: int) -> None:
        super().__init__(f"stop requested ({signal.Signals(signum).name})")
        self.signum = signum


class Supervisor:
    """Starts and stops a set of children. Use from the main thread: signal handlers live there,
    and a child's parent-death signal fires when the thread that started it ends.

    ``state_file``: where to list the running children (see ``statefile.py``), under the name
    ``state_owner``; removed once every child is stopped.
    """

    def __init__(
        self,
        *,
        grace_period: float = 10.0,
        out: TextIO | None = None,
        name_width: int = 12,
        color: bool | None = None,
        progress_every: float = 5.0,
        poll_interval: float = 0.1,
        state_file: Path | None = None,
        state_owner: str = "supervisor",
    ) -> None:
        self.grace_period = grace_period
        self.state_file = state_file
        self.state_owner = state_owner
        self.output = Output(
            out if out is not None else sys.stdout,
            name_width=name_width,
            color=color,
            own_name="ticketflow",
        )
        self.progress_every = progress_every
        self.poll_interval = poll_interval
        self.children: list[Child] = []
        self.exit_codes: dict[str, int] = {}  # filled by stop()
        self._wake = threading.Event()
        self._signals = StopSignals(self._wake)
        self._records: list[statefile.ProcessRecord] = []
        self._owner_record = statefile.process_record(state_owner, os.getpid())
        self._boot_id = statefile.boot_id()

    # -- output and signals ---------------------------------------------------------------------

    def emit(self, prefix: str, line: str) -> None:
        self.output.emit(prefix, line)

    def log(self, message: str) -> None:
        """A line from the supervisor itself."""
        self.output.log(message)

    @property
    def stop_signal(self) -> int | None:
        return self._signals.received

    # -- lifecycle ------------------------------------------------------------------------------

    def stop_stale_children(self) -> None:
        """Stop the children a dead earlier run left in ``state_file`` (see ``statefile.py``)."""
        if self.state_file is None:
            return
        try:
            statefile.stop_stale_children(
                self.state_file, grace_period=self.grace_period, log=self.log
            )
        except OSError as err:  # e.g. an unwritable data dir: the port check still follows
            self.log(f"could not handle {self.state_file}: {err}")

    def start(self, spec: ChildSpec) -> Child:
        if self.stop_signal is not None:
            raise StopRequestedError(self.stop_signal)
        process = spawn(spec)
        child = Child(spec=spec, process=process, started_at=time.monotonic())
        index = len(self.children)
        self.children.append(child)
        self._record(child)
        child.pump = threading.Thread(
            target=self.output.pump,
            args=(child, index, self._wake.set),
            name=f"pump-{spec.name}",
            daemon=True,
        )
        child.pump.start()
        self.log(f"started {spec.name} (pid {process.pid}): {' '.join(spec.argv)}")
        return child

    def _record(self, child: Child) -> None:
        """List the child in the state file, so that the next start can stop it if we cannot."""
        if self.state_file is None:
            return
        self._records.append(statefile.process_record(child.name, child.pid))
        try:
            statefile.write_state(
                self.state_file, self._records, owner=self._owner_record, boot=self._boot_id
            )
        except OSError as err:
            self.log(f"could not write {self.state_file}: {err}")

    def _check_running(self) -> None:
        if self.stop_signal is not None:
            raise StopRequestedError(self.stop_signal)
        for child in self.children:
            code = child.process.poll()
            if code is not None and not child.exit_expected:
                raise ChildExitedError(child.name, code)

    def wait_ready(self, children: Iterable[Child], timeout: float) -> None:
        """Poll the children's probes until all are ready; print progress while waiting.

        Raises ``ChildExitedError`` if any supervised child exits, ``StopRequestedError`` on a
        signal, ``NotReadyError`` after ``timeout`` seconds.
        """
        pending = [c for c in children if not c.ready]
        start = time.monotonic()
        deadline = start + timeout
        next_progress = start + self.progress_every
        while True:
            self._check_running()
            for child in list(pending):
                if child.spec.ready is None or _probe(child.spec.ready):
                    child.ready = True
                    pending.remove(child)
                    if child.spec.ready is not None:
                        took = time.monotonic() - child.started_at
                        self.log(f"{child.name} is ready ({took:.1f}s)")
            if not pending:
                return
            now = time.monotonic()
            if now >= deadline:
                waiting = ", ".join(c.waiting_for() for c in pending)
                raise NotReadyError(
                    f"not ready after {timeout:.0f}s: {waiting} (see the output above)"
                )
            if now >= next_progress:
                waiting = ", ".join(c.name for c in pending)
                self.log(f"still waiting for {waiting} ({now - start:.0f}s)")
                next_progress = now + self.progress_every
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def wait(self) -> None:
        """Block until a signal arrives (returns) or a child exits (raises ``ChildExitedError``)."""
        while True:
            try:
                self._check_running()
            except StopRequestedError:
                return
            self._wake.wait(0.5)
            self._wake.clear()

    def stop(self) -> None:
        """Stop every child: SIGTERM per wave, SIGKILL after the grace period; reap everything."""
        self._signals.stopping = True
        for wave in sorted({c.spec.stop_wave for c in self.children}):
            self._stop_wave([c for c in self.children if c.spec.stop_wave == wave])
        self.exit_codes = {c.name: c.process.returncode for c in self.children}
        if self.state_file is not None:
            with contextlib.suppress(OSError):  # every child is reaped: nothing left to stop
                statefile.remove_state(self.state_file)

    def _stop_wave(self, group: list[Child]) -> None:
        for child in group:
            child.exit_expected = True
            if child.alive():
                self.log(f"stopping {child.name} (pid {child.pid})")
                child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_period
        while any(c.alive() for c in group):
            if time.monotonic() >= deadline:
                break
            if self._signals.hurry.is_set():
                self.log("asked again: not waiting for the grace period")
                break
            self._wake.wait(0.05)
            self._wake.clear()
        for child in group:
            if child.alive():
                self.log(f"{child.name} did not stop in {self.grace_period:.0f}s: SIGKILL")
                child.signal_group(signal.SIGKILL)
            child.process.wait()
            child.signal_group(signal.SIGKILL)  # anything it left behind in its group
            if child.pump is not None:
                child.pump.join(timeout=2.0)

    def run(self, stages: Sequence[Stage], *, ready_timeout: float = 60.0) -> int:
        """Run the stages in order, then supervise until a signal arrives or a child dies.

        A stage is either children to start together and wait for (up to ``ready_timeout``
        seconds), or a callable (a check or a message between stages; it raises
        ``SupervisorError`` to abort). Returns the exit code: 0 after a requested stop, 1 when a
        child died, did not become ready, or a stage failed. Every child is stopped before it
        returns.
        """
        self._signals.install()
        try:
            for stage in stages:
                if callable(stage):
                    stage()
                    self._check_running()
                else:
                    started = [self.start(spec) for spec in stage]
                    self.wait_ready(started, ready_timeout)
            self.wait()
            return 0
        except StopRequestedError:
            return 0
        except ChildExitedError as err:
            self.log(f"{err} unexpectedly (see its output above); stopping the others")
            return 1
        except SupervisorError as err:
            self.log(f"{err}; stopping everything")
            return 1
        finally:
            if self.stop_signal is not None:
                self.log(f"{signal.Signals(self.stop_signal).name} received: stopping everything")
            self.stop()
            self.log(f"all {len(self.children)} processes stopped")
            self._signals.restore()


def _probe(probe: Probe) -> bool:
    try:
        return bool(probe())
    except Exception:
        return False
