"""Fixtures of the launcher's tests: processes under test whose output is collected.

- ``launches``: `python -m ticketflow.launcher up ...` with stand-in services (``stub_bin``,
  ``stack_env``: free ports);
- ``driver_factory``: a Supervisor driving tiny Python children (``supervised/``).

Every process a test starts here is SIGKILLed (with its process group) after the test, whatever
happened; a test asserts the orderly stop itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from ticketflow.testkit import eventually, free_port, free_port_block

DEADLINE_S = 50.0  # any one wait (a stack's start, a stop); below the per-test timeout
HERE = Path(__file__).parent
STUB = HERE / "stub_service.py"
SUPERVISED = HERE / "supervised"
SERVICES = ("api", "core-worker", "agent-worker", "projection")


def gone(pid: int) -> bool:
    """No such process, or a zombie nobody reaped yet (it runs nothing any more)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in {"Z", "X"}


class Watched:
    """A process in its own session whose stdout and stderr lines are collected as they come."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str) -> None:
        def printed() -> bool:
            if any(text in line for line in self.lines):
                return True
            if self.process.poll() is not None:
                self._reader.join(timeout=DEADLINE_S)  # the last lines it wrote
                if any(text in line for line in self.lines):
                    return True
                # Not an AssertionError: waiting longer cannot help.
                pytest.fail(f"exited ({self.process.returncode}) before {text!r}:\n{self.output}")
            raise AssertionError(f"no {text!r} yet:\n{self.output}")

        eventually(printed, timeout=DEADLINE_S, what=repr(text))

    def wait_exit(self) -> int:
        try:
            code = self.process.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running after {DEADLINE_S}s:\n{self.output}")
        self._reader.join(timeout=DEADLINE_S)
        return code

    def wait_gone(self, pids: Iterable[int], what: str = "processes") -> None:
        """Until every pid has exited; the failure names those left and shows the output."""
        pids = list(pids)

        def all_gone() -> bool:
            left = [pid for pid in pids if not gone(pid)]
            assert not left, f"{what} left running: pids {left}\n{self.output}"
            return True

        eventually(all_gone, timeout=DEADLINE_S, what=f"{what} to exit")

    def kill(self, also: Iterable[int] = ()) -> None:
        """SIGKILL this process's group, then every group in ``also`` (cleanup, never asserted)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for pid in also:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


class Launch(Watched):
    """`python -m ticketflow.launcher up ...`."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        super().__init__([sys.executable, "-m", "ticketflow.launcher", "up", *args], env)

    def started_pids(self) -> dict[str, int]:
        """The children it said it started: name -> pid."""
        pids = {}
        for line in self.lines:
            if "| started " in line and "(pid " in line:
                name = line.split("| started ", 1)[1].split(" ", 1)[0]
                pids[name] = int(line.split("(pid ", 1)[1].split(")", 1)[0])
        return pids


class Driver(Watched):
    """``supervised/driver.py``: a Supervisor of the named children, pid files in ``out``."""

    def __init__(
        self, out: Path, children: list[str], *extra: str, ready_timeout: float = 60
    ) -> None:
        driver = SUPERVISED / "driver.py"
        super().__init__(
            [sys.executable, str(driver), str(out), ",".join(children), str(ready_timeout), *extra]
        )
        self.dir = out

    def pid(self, name: str) -> int:
        return int((self.dir / f"{name}.pid").read_text())

    def published_pids(self, *names: str) -> list[int]:
        """The pids of those of ``names`` that wrote their pid file (a child may die first)."""
        return [self.pid(name) for name in names if (self.dir / f"{name}.pid").exists()]


@pytest.fixture(name="gone")
def gone_fixture() -> Callable[[int], bool]:
    """``gone(pid)``: no such process, or a zombie (it runs nothing any more)."""
    return gone


@pytest.fixture
def stub_bin(tmp_path: Path) -> Path:
    """A bin dir whose ticketflow-<service> scripts run stub_service.py as that service."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for service in SERVICES:
        script = bin_dir / f"ticketflow-{service}"
        script.write_text(
            f"#!{sys.executable}\nimport os, runpy\nos.environ['STUB_SERVICE'] = {service!r}\n"
            f"runpy.run_path({str(STUB)!r}, run_name='__main__')\n"
        )
        script.chmod(0o755)
    return bin_dir


@pytest.fixture
def stack_env() -> dict[str, str]:
    """This environment without TICKETFLOW_*, plus free ports for one stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_")}
    env.update(
        TICKETFLOW_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
        TICKETFLOW_HTTP_PORT=str(free_port()),
        TICKETFLOW_GRPC_PORT=str(free_port()),
        TICKETFLOW_PROJECTION_ADDRESS=f"127.0.0.1:{free_port()}",
        TICKETFLOW_METRICS_PORT=str(free_port_block(5)),
        NO_COLOR="1",
    )
    return env


@pytest.fixture
def launches() -> Iterator[Callable[[list[str], dict[str, str]], Launch]]:
    started: list[Launch] = []

    def launch(args: list[str], env: dict[str, str]) -> Launch:
        started.append(Launch(args, env))
        return started[-1]

    yield launch
    for item in started:
        item.kill(also=item.started_pids().values())


@pytest.fixture
def driver_factory(tmp_path: Path) -> Iterator[Callable[..., Driver]]:
    drivers: list[Driver] = []

    def make(children: list[str], *extra: str, ready_timeout: float = 60) -> Driver:
        drivers.append(Driver(tmp_path, children, *extra, ready_timeout=ready_timeout))
        return drivers[-1]

    yield make
    for driver in drivers:
        pids = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
        driver.kill()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
