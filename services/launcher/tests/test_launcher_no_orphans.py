"""`ticketflow up` leaves nothing running when it is SIGKILLed, and the next start on the same data
dir stops what a killed one left (its state file) before checking the ports."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from ticketflow.launcher import statefile
from ticketflow.launcher.data_dir import STATE_FILE

pytestmark = pytest.mark.integration


@pytest.mark.timeout(120)  # two starts of the stack, each with a dev server
def test_a_sigkilled_launcher_leaves_nothing_running(
    tmp_path: Path, stub_bin: Path, stack_env: dict[str, str], launches
) -> None:
    """Its children get SIGTERM from the kernel (parent-death signal); the next `up` starts."""
    data_dir = tmp_path / "data"
    args = ["--data-dir", str(data_dir), "--bin-dir", str(stub_bin), "--headless"]
    first = launches(args, stack_env)
    first.wait_for_line("ticketflow is up")
    pids = first.started_pids()
    state = statefile.read_state(data_dir / STATE_FILE)
    assert state is not None and state.owner.pid == first.process.pid
    assert {c.name: c.pid for c in state.children} == pids

    first.process.send_signal(signal.SIGKILL)
    assert first.wait_exit() == -signal.SIGKILL
    first.wait_gone(pids.values(), "children of the SIGKILLed launcher")

    # Same data dir and ports: the port check passes, the stale state file is reported and removed.
    second = launches(args, stack_env)
    second.wait_for_line("ticketflow is up")
    assert f"`ticketflow up` (pid {first.process.pid}) did not exit cleanly" in second.output
    assert "none of its processes still runs" in second.output
    pids = second.started_pids()
    second.process.send_signal(signal.SIGHUP)  # the terminal closed
    assert second.wait_exit() == 0, second.output
    assert "SIGHUP received: stopping everything" in second.output
    second.wait_gone(pids.values(), "the stack")
    assert not (data_dir / STATE_FILE).exists()


def test_up_stops_a_stale_process_that_holds_its_port(
    tmp_path: Path, stub_bin: Path, stack_env: dict[str, str], launches
) -> None:
    """A process a dead launcher left running (listed in the state file) is stopped first."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    http_port = int(stack_env["TICKETFLOW_HTTP_PORT"])
    listener = (
        "import socket, sys\n"
        "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(('127.0.0.1', {http_port})); s.listen()\n"
        "print('listening', flush=True)\n"
        "sys.stdin.read()\n"
    )
    stale = subprocess.Popen(
        [sys.executable, "-c", listener],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert stale.stdout is not None and stale.stdout.readline() == "listening\n"
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        statefile.write_state(
            data_dir / STATE_FILE,
            [statefile.process_record("api", stale.pid)],
            owner=statefile.ProcessRecord("`ticketflow up`", dead.pid, 1),
            boot=statefile.boot_id(),
        )
        launch = launches(
            ["--data-dir", str(data_dir), "--bin-dir", str(stub_bin), "--headless"], stack_env
        )
        launch.wait_for_line("ticketflow is up")
        out = launch.output
        assert f"stopping stale api (pid {stale.pid})" in out
        assert "stopped 1 stale process" in out
        assert stale.wait(timeout=50) == -signal.SIGTERM
        launch.process.send_signal(signal.SIGTERM)
        assert launch.wait_exit() == 0, launch.output
    finally:
        stale.kill()
        stale.communicate()
