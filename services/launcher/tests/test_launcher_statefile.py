"""A SIGKILLed supervisor: its children get their parent-death signal, and the next start stops
what ignored it (the state file) but never signals a process the file does not truly list."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from ticketflow.launcher import statefile


def test_children_of_a_sigkilled_supervisor_get_sigterm(driver_factory) -> None:
    """The parent-death signal: a SIGKILLed supervisor cannot stop its children, the kernel does."""
    driver = driver_factory(["graceful"])
    driver.wait_for_line("ALL READY")
    pid = driver.pid("graceful")
    os.kill(driver.process.pid, signal.SIGKILL)
    assert driver.wait_exit() == -signal.SIGKILL
    driver.wait_gone([pid], "graceful, after its supervisor was SIGKILLed,")
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


def test_next_start_stops_what_a_sigkilled_supervisor_left(driver_factory, gone) -> None:
    """stubborn ignores SIGTERM, so its parent-death signal does not stop it: the next start does."""
    first = driver_factory(["stubborn", "graceful"])
    first.wait_for_line("ALL READY")
    stubborn, graceful = first.pid("stubborn"), first.pid("graceful")
    os.kill(first.process.pid, signal.SIGKILL)
    assert first.wait_exit() == -signal.SIGKILL
    first.wait_gone([graceful], "graceful, after its supervisor was SIGKILLed,")
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
