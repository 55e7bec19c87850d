"""supervisor.py with tiny Python children: stop on SIGTERM/SIGINT, a dying child, readiness timeout.

Each test runs a driver process (a Supervisor in its own main thread, as `ticketflow up` does), so
signals go to a real process. Children write their pids to files; after the driver exits, every
pid (children and a grandchild) must be gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from ticketflow.launcher.supervisor import describe_exit

DEADLINE_S = 60.0

# A child that writes its pid and a grandchild's (same process group), then waits for a signal.
SLEEPER = """
import os, signal, subprocess, sys
from pathlib import Path
out = Path(sys.argv[1])
grandchild = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
(out / "sleeper-grandchild.pid").write_text(str(grandchild.pid))
(out / "sleeper.pid").write_text(str(os.getpid()))
print("sleeper up", flush=True)
signal.pause()
"""

# A child that ignores SIGTERM: only SIGKILL after the grace period stops it.
STUBBORN = """
import os, signal, sys
from pathlib import Path
signal.signal(signal.SIGTERM, signal.SIG_IGN)
(Path(sys.argv[1]) / "stubborn.pid").write_text(str(os.getpid()))
print("stubborn up", flush=True)
while True:
    signal.pause()
"""

# A child that exits with code 3 right after writing its pid.
DIER = """
import os, sys
from pathlib import Path
(Path(sys.argv[1]) / "dier.pid").write_text(str(os.getpid()))
print("dier: exiting with 3", flush=True)
sys.exit(3)
"""

DRIVER = """
import sys
from pathlib import Path
from ticketflow.launcher.supervisor import ChildSpec, Supervisor

out = Path(sys.argv[1])
children = sys.argv[2].split(",")
ready_timeout = float(sys.argv[3])
never_ready = sys.argv[4:] == ["never-ready"]

def spec(name):
    pid_file = out / f"{name}.pid"
    ready = (lambda: False) if never_ready else pid_file.exists
    return ChildSpec(
        name, [sys.executable, str(out / f"{name}.py"), str(out)], ready=ready,
        ready_what=f"{pid_file.name} written",
    )

sup = Supervisor(grace_period=1.0, name_width=10)
code = sup.run(
    [[spec(n) for n in children], lambda: sup.log("ALL READY")], ready_timeout=ready_timeout
)
sup.log(f"exit codes {sup.exit_codes}")
sys.exit(code)
"""


class Driver:
    def __init__(self, tmp_path: Path, children: list[str], *extra: str, ready_timeout: float = 60):
        for name, source in {"sleeper": SLEEPER, "stubborn": STUBBORN, "dier": DIER}.items():
            (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        (tmp_path / "driver.py").write_text(DRIVER)
        self.dir = tmp_path
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(tmp_path / "driver.py"),
                str(tmp_path),
                ",".join(children),
                str(ready_timeout),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
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
        eventually(lambda: any(text in line for line in self.lines), f"{text!r} in:\n{{out}}", self)

    def wait_exit(self) -> int:
        try:
            code = self.process.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"driver still running after {DEADLINE_S}s:\n{self.output}")
        self._reader.join(timeout=DEADLINE_S)
        return code

    def pid(self, name: str) -> int:
        return int((self.dir / f"{name}.pid").read_text())

    def cleanup(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for pid_file in self.dir.glob("*.pid"):
            _kill_quietly(int(pid_file.read_text()))


def eventually(check: Callable[[], bool], message: str, driver: Driver | None = None) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(message.format(out=driver.output if driver else ""))
        time.sleep(0.05)


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


def _kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@pytest.fixture
def driver_factory(tmp_path: Path):  # type: ignore[no-untyped-def]
    drivers: list[Driver] = []

    def make(children: list[str], *extra: str, ready_timeout: float = 60) -> Driver:
        driver = Driver(tmp_path, children, *extra, ready_timeout=ready_timeout)
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        driver.cleanup()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_every_child_and_grandchild(driver_factory, sig: signal.Signals) -> None:  # type: ignore[no-untyped-def]
    driver = driver_factory(["sleeper", "stubborn"])
    driver.wait_for_line("ALL READY")
    pids = {name: driver.pid(name) for name in ("sleeper", "sleeper-grandchild", "stubborn")}
    assert not any(gone(pid) for pid in pids.values())
    assert "sleeper up" in driver.output and "stubborn up" in driver.output  # output streamed

    # Twice at once, as `uv run` off a TTY forwards the Ctrl-C its child already got: still one
    # orderly stop with its grace period.
    os.kill(driver.process.pid, sig)
    os.kill(driver.process.pid, sig)
    assert driver.wait_exit() == 0, driver.output
    eventually(lambda: all(gone(pid) for pid in pids.values()), "left behind: {out}", driver)
    assert "stubborn did not stop in 1s: SIGKILL" in driver.output
    assert f"{sig.name} received" in driver.output
    assert "asked again" not in driver.output


def test_a_dying_child_stops_the_rest(driver_factory) -> None:  # type: ignore[no-untyped-def]
    driver = driver_factory(["sleeper", "dier"])
    code = driver.wait_exit()
    assert code == 1, driver.output
    assert "dier exited with code 3 unexpectedly" in driver.output
    for name in ("sleeper", "sleeper-grandchild", "dier"):
        if (driver.dir / f"{name}.pid").exists():
            pid = driver.pid(name)
            eventually(lambda pid=pid: gone(pid), f"{name} left behind: {{out}}", driver)


def test_a_child_that_never_gets_ready_stops_everything(driver_factory) -> None:  # type: ignore[no-untyped-def]
    driver = driver_factory(["sleeper"], "never-ready", ready_timeout=1)
    assert driver.wait_exit() == 1, driver.output
    assert "not ready after 1s: sleeper (sleeper.pid written)" in driver.output
    for name in ("sleeper", "sleeper-grandchild"):
        if (driver.dir / f"{name}.pid").exists():
            pid = driver.pid(name)
            eventually(lambda pid=pid: gone(pid), f"{name} left behind: {{out}}", driver)


def test_describe_exit() -> None:
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(-9) == "was killed by SIGKILL"
