"""supervisor.py with tiny Python children: stop on SIGTERM/SIGINT/SIGHUP/SIGQUIT, a dying child,
readiness timeout, a SIGKILLed supervisor (parent-death signal, state file), stale state files.

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
from ticketflow.launcher import statefile
from ticketflow.launcher.supervisor import (
    PDEATHSIG_WRAPPER,
    ChildSpec,
    Supervisor,
    describe_exit,
)

DEADLINE_S = 60.0

# A child that writes its pid and a grandchild's (same process group), then waits for a signal.
SLEEPER = """
import os, signal, subprocess, sys
from pathlib import Path
out = Path(sys.argv[1])
grandchild = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
publish(out / "sleeper-grandchild.pid", grandchild.pid)
publish(out / "sleeper.pid", os.getpid())
print("sleeper up", flush=True)
signal.pause()
"""

# A child that ignores SIGTERM: only SIGKILL after the grace period stops it.
STUBBORN = """
import os, signal, sys
from pathlib import Path
signal.signal(signal.SIGTERM, signal.SIG_IGN)
publish(Path(sys.argv[1]) / "stubborn.pid", os.getpid())
print("stubborn up", flush=True)
while True:
    signal.pause()
"""

# A child that shuts down on SIGTERM like a service, leaving a file that says so.
GRACEFUL = """
import os, signal, sys
from pathlib import Path
out = Path(sys.argv[1])
def on_term(signum, frame):
    (out / "graceful.sigterm").write_text(signal.Signals(signum).name)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
publish(out / "graceful.pid", os.getpid())
print("graceful up", flush=True)
while True:
    signal.pause()
"""

# A child that exits with code 3 right after writing its pid.
DIER = """
import os, sys
from pathlib import Path
publish(Path(sys.argv[1]) / "dier.pid", os.getpid())
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

sup = Supervisor(grace_period=1.0, name_width=10, state_file=out / "state.json")
sup.stop_stale_children()  # as `ticketflow up` does before it starts anything
code = sup.run(
    [[spec(n) for n in children], lambda: sup.log("ALL READY")], ready_timeout=ready_timeout
)
sup.log(f"exit codes {sup.exit_codes}")
sys.exit(code)
"""


# Prepended to each child: a pid file appears complete or not at all (it is the readiness probe,
# and a child may be stopped at any point after it starts).
PUBLISH = """
import os as _os
def publish(path, pid):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(str(pid))
    _os.replace(tmp, path)
"""


class Driver:
    def __init__(self, tmp_path: Path, children: list[str], *extra: str, ready_timeout: float = 60):
        scripts = {"sleeper": SLEEPER, "stubborn": STUBBORN, "graceful": GRACEFUL, "dier": DIER}
        for name, source in scripts.items():
            (tmp_path / f"{name}.py").write_text(PUBLISH + textwrap.dedent(source))
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


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT])
def test_signal_stops_every_child_and_grandchild(driver_factory, sig: signal.Signals) -> None:  # type: ignore[no-untyped-def]
    # SIGHUP: the terminal was closed; SIGQUIT: Ctrl-\. Both stop everything like SIGTERM.
    driver = driver_factory(["sleeper", "stubborn"])
    driver.wait_for_line("ALL READY")
    pids = {name: driver.pid(name) for name in ("sleeper", "sleeper-grandchild", "stubborn")}
    assert not any(gone(pid) for pid in pids.values())
    assert "sleeper up" in driver.output and "stubborn up" in driver.output  # output streamed
    state = statefile.read_state(driver.dir / "state.json")
    assert state is not None
    assert {(c.name, c.pid) for c in state.children} == {
        ("sleeper", pids["sleeper"]),
        ("stubborn", pids["stubborn"]),
    }

    # Twice at once, as `uv run` off a TTY forwards the Ctrl-C its child already got: still one
    # orderly stop with its grace period.
    os.kill(driver.process.pid, sig)
    os.kill(driver.process.pid, sig)
    assert driver.wait_exit() == 0, driver.output
    eventually(lambda: all(gone(pid) for pid in pids.values()), "left behind: {out}", driver)
    assert "stubborn did not stop in 1s: SIGKILL" in driver.output
    assert f"{sig.name} received" in driver.output
    assert "asked again" not in driver.output
    assert not (driver.dir / "state.json").exists()  # everything stopped: nothing stale


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


def test_children_of_a_sigkilled_supervisor_get_sigterm(driver_factory) -> None:  # type: ignore[no-untyped-def]
    """The parent-death signal: a SIGKILLed supervisor cannot stop its children, the kernel does."""
    driver = driver_factory(["graceful"])
    driver.wait_for_line("ALL READY")
    pid = driver.pid("graceful")
    os.kill(driver.process.pid, signal.SIGKILL)
    assert driver.wait_exit() == -signal.SIGKILL
    eventually(lambda: gone(pid), "graceful left running after its supervisor was SIGKILLed")
    assert (driver.dir / "graceful.sigterm").read_text() == "SIGTERM"
    # The state file stays (nobody removed it); the next start finds nothing left to stop.
    assert (driver.dir / "state.json").exists()
    second = driver_factory(["sleeper"])
    second.wait_for_line("ALL READY")
    assert "did not exit cleanly; none of its processes still runs" in second.output
    assert "stopping stale" not in second.output
    os.kill(second.process.pid, signal.SIGTERM)
    assert second.wait_exit() == 0, second.output
    assert not (driver.dir / "state.json").exists()


def test_next_start_stops_what_a_sigkilled_supervisor_left(driver_factory) -> None:  # type: ignore[no-untyped-def]
    """stubborn ignores SIGTERM, so its parent-death signal does not stop it: the next start does."""
    first = driver_factory(["stubborn", "graceful"])
    first.wait_for_line("ALL READY")
    stubborn, graceful = first.pid("stubborn"), first.pid("graceful")
    os.kill(first.process.pid, signal.SIGKILL)
    assert first.wait_exit() == -signal.SIGKILL
    eventually(lambda: gone(graceful), "graceful left running after its supervisor was SIGKILLed")
    assert not gone(stubborn)  # it ignores SIGTERM, and nothing else signalled it

    second = driver_factory(["sleeper"])
    second.wait_for_line("ALL READY")
    out = second.output
    assert f"earlier supervisor (pid {first.process.pid}) did not exit cleanly" in out
    assert f"stopping stale stubborn (pid {stubborn})" in out
    assert f"stale stubborn (pid {stubborn}) did not stop in 1s: SIGKILL" in out
    assert "stopped 1 stale process" in out
    assert f"(pid {graceful})" not in out  # exited: neither signalled nor mentioned
    assert gone(stubborn)  # stopped before the new children were started
    assert out.index("stopped 1 stale process") < out.index("started sleeper")
    os.kill(second.process.pid, signal.SIGTERM)
    assert second.wait_exit() == 0, second.output
    assert not (second.dir / "state.json").exists()


# Blocks the stop signals, so any that reaches it stays pending, visible in /proc/<pid>/status.
BLOCKER = """
import signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT})
print("ready", flush=True)
sys.stdin.read()
"""


def _pending_signals(pid: int) -> int:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["SigPnd"], 16) | int(fields["ShdPnd"], 16)


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("case", ["reused-pid", "other-boot", "owner-alive"])
def test_a_stale_state_file_never_signals_another_process(tmp_path: Path, case: str) -> None:
    """Only a process whose pid and start time (in this boot) match the file is ever signalled."""
    other = subprocess.Popen(
        [sys.executable, "-c", BLOCKER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a group leader, like a supervised child
    )
    try:
        assert other.stdout is not None and other.stdout.readline() == "ready\n"
        real = statefile.process_record("api", other.pid)
        assert real.start_time is not None
        child, boot = real, statefile.boot_id()
        owner = statefile.ProcessRecord("supervisor", _dead_pid(), 1)
        if case == "reused-pid":  # the file's api had this pid once; this process got it later
            child = statefile.ProcessRecord("api", other.pid, real.start_time - 1)
        elif case == "other-boot":
            boot = "not-this-boot"
        else:  # the supervisor that wrote the file still runs (this test)
            owner = statefile.process_record("supervisor", os.getpid())
        path = tmp_path / "state.json"
        statefile.write_state(path, [child], owner=owner, boot=boot)
        lines: list[str] = []

        stopped = statefile.stop_stale_children(path, grace_period=0.1, log=lines.append)

        assert stopped == []
        assert other.poll() is None
        assert _pending_signals(other.pid) == 0, lines
        expected = {
            "reused-pid": f"pid {other.pid} (was api) is another process now: left alone",
            "other-boot": "ran before a reboot",
            "owner-alive": "may still be running",
        }[case]
        assert any(expected in line for line in lines), lines
        assert path.exists() == (case == "owner-alive")
        # The probe sees a signal that does reach it (so the check above is not vacuous).
        os.kill(other.pid, signal.SIGTERM)
        assert _pending_signals(other.pid) != 0
    finally:
        other.kill()
        other.communicate()


PR_GET_PDEATHSIG = """
import ctypes, os
value = ctypes.c_int()
ctypes.CDLL(None, use_errno=True).prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
print(os.getpid(), value.value, {k: v for k, v in os.environ.items() if k.startswith("LC_")})
"""


def _wrapped(*argv: str, parent: int | None = None, lc_ctype: str = "-", **kwargs):  # type: ignore[no-untyped-def]
    assert PDEATHSIG_WRAPPER is not None
    wrapper = [sys.executable, "-I", "-S", str(PDEATHSIG_WRAPPER)]
    return subprocess.Popen(
        [*wrapper, str(os.getpid() if parent is None else parent), lc_ctype, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.mark.skipif(PDEATHSIG_WRAPPER is None, reason="parent-death signals are Linux-only")
def test_the_pdeathsig_wrapper_execs_in_place_with_sigterm_and_the_same_environment() -> None:
    # No LC_* at all: the wrapper's interpreter coerces the C locale by setting LC_CTYPE (PEP 538),
    # yet the command must get exactly the environment it was given. (PYTHONCOERCECLOCALE=0 stops
    # the command's own interpreter from doing the same; the wrapper runs isolated and ignores it.)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONCOERCECLOCALE": "0"}
    process = _wrapped(sys.executable, "-c", PR_GET_PDEATHSIG, env=env)
    out, err = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 0, err
    assert out.split(maxsplit=2) == [str(process.pid), str(int(signal.SIGTERM)), "{}\n"]
    # An LC_CTYPE that was given is kept.
    process = _wrapped(
        sys.executable, "-c", PR_GET_PDEATHSIG, lc_ctype="=C", env={**env, "LC_CTYPE": "C"}
    )
    out, err = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 0, err
    assert out.split(maxsplit=2)[2] == "{'LC_CTYPE': 'C'}\n"


@pytest.mark.skipif(PDEATHSIG_WRAPPER is None, reason="parent-death signals are Linux-only")
def test_the_pdeathsig_wrapper_reports_what_it_cannot_run_and_a_parent_already_gone() -> None:
    process = _wrapped("/nonexistent/ticketflow-nothing")
    out, err = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 127
    assert "cannot run /nonexistent/ticketflow-nothing" in err
    # The expected parent is not its parent (it died before prctl): the command never starts.
    process = _wrapped(sys.executable, "-c", "print('ran')", parent=_dead_pid())
    out, err = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 128 + signal.SIGTERM
    assert out == ""


def test_children_are_started_from_the_main_thread_only() -> None:
    if PDEATHSIG_WRAPPER is None:
        pytest.skip("the main-thread rule is for parent-death signals (Linux)")
    errors: list[BaseException] = []

    def start() -> None:
        try:
            Supervisor().start(ChildSpec("x", [sys.executable, "-c", "pass"]))
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError), errors
    assert "main thread" in str(errors[0])
