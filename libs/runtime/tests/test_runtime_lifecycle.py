"""run_service in a real process: graceful stop on the first signal, 130 on the second, and exit 1
with the message alone for a ServiceError (a traceback for anything else). It ends the process
itself (`exit_process`), with the buffered output and log lines still delivered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from ticketflow.runtime import EXIT_FAILED, EXIT_INTERRUPTED

PROG = "lifecycle-probe"

Start = Callable[[str], subprocess.Popen[str]]

# The body is chosen by argv[1]; each one says on stdout what it has reached, so the test knows
# when a signal can be sent (handlers are installed before the body runs).
SERVICE = f"""
import asyncio, logging, sys
from ticketflow.runtime import ServiceError, run_service, setup_logging

def say(line):
    print(line, flush=True)

async def graceful(stop):
    say("ready")
    await stop.wait()
    say("draining")
    print("drained")  # not flushed: exit_process must still deliver it
    logging.getLogger("probe").warning("last log line")

async def stubborn(stop):
    say("ready")
    await stop.wait()
    say("ignoring stop")
    await asyncio.Event().wait()

async def broken(stop):
    raise ServiceError("namespace tf-missing does not exist: create it, then start again")

async def crashing(stop):
    raise ZeroDivisionError("a bug")

setup_logging("INFO", "text")
run_service({PROG!r}, {{"graceful": graceful, "stubborn": stubborn, "broken": broken,
                       "crashing": crashing}}[sys.argv[1]])
say("returned")
"""


@pytest.fixture
def start() -> Iterator[Start]:
    """Start the probe service with a body; every process started is killed if still running."""
    started: list[subprocess.Popen[str]] = []

    def run(body: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVICE, body],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        started.append(proc)
        return proc

    yield run
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        finish(proc)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def wait_for_line(proc: subprocess.Popen[str], expected: str) -> None:
    """Read the process's stdout up to ``expected``; fail (with its stderr) if it exits first.

    A blocking read, bounded by the per-test timeout: the line either comes or the process ends.
    """
    assert proc.stdout is not None
    while (line := proc.stdout.readline()) != "":
        if line.rstrip("\n") == expected:
            return
    proc.wait()
    err = proc.stderr.read() if proc.stderr else ""
    raise AssertionError(f"exited with {proc.returncode} before {expected!r}: {err}")


def finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """The rest of stdout and all of stderr once the process has ended (bounded like above).

    Through the same file objects as ``wait_for_line``: ``communicate`` would skip what they
    have buffered already.
    """
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.wait()
    return out, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_first_signal_sets_stop_and_the_body_returns_cleanly(
    start: Start, sig: signal.Signals
) -> None:
    proc = start("graceful")
    wait_for_line(proc, "ready")
    proc.send_signal(sig)
    out, err = finish(proc)
    assert proc.returncode == 0, err
    # run_service never returns: it ends the process, after flushing what was still buffered.
    assert out.splitlines() == ["draining", "drained"]
    assert f"{PROG}: {sig.name}, shutting down gracefully" in err
    assert "[WARNING] last log line [probe]" in err


def test_second_signal_while_the_body_ignores_stop_exits_130(start: Start) -> None:
    proc = start("stubborn")
    wait_for_line(proc, "ready")
    proc.send_signal(signal.SIGTERM)
    wait_for_line(proc, "ignoring stop")
    proc.send_signal(signal.SIGTERM)
    out, err = finish(proc)
    assert proc.returncode == EXIT_INTERRUPTED == 130, err
    assert "returned" not in out
    assert f"{PROG}: SIGTERM, shutting down gracefully" in err
    assert f"{PROG}: SIGTERM again, not waiting any longer" in err


def test_service_error_exits_1_with_its_message_alone(start: Start) -> None:
    proc = start("broken")
    out, err = finish(proc)
    assert proc.returncode == EXIT_FAILED == 1
    assert out == ""
    assert err == (f"{PROG}: namespace tf-missing does not exist: create it, then start again\n")


def test_unexpected_error_exits_1_with_its_traceback(start: Start) -> None:
    proc = start("crashing")
    out, err = finish(proc)
    assert proc.returncode == EXIT_FAILED
    assert out == ""
    assert f"{PROG}: fatal error" in err
    assert "Traceback" in err and "ZeroDivisionError: a bug" in err
