"""supervisor.py with tiny Python children (``supervised/``): stop on SIGTERM/SIGINT/SIGHUP/SIGQUIT,
a dying child, a readiness timeout, children started from the main thread only.

Each test runs a driver process (a Supervisor in its own main thread, as `ticketflow up` does), so
signals go to a real process. Children write their pids to files; after the driver exits, every
pid (children and a grandchild) must be gone.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import pytest
from ticketflow.launcher import statefile
from ticketflow.launcher.supervisor import PDEATHSIG_WRAPPER, ChildSpec, Supervisor, describe_exit


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT])
def test_signal_stops_every_child_and_grandchild(driver_factory, gone, sig: signal.Signals) -> None:
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
    driver.wait_gone(pids.values(), "children")
    assert "stubborn did not stop in 1s: SIGKILL" in driver.output
    assert f"{sig.name} received" in driver.output
    assert "asked again" not in driver.output
    assert not (driver.dir / "state.json").exists()  # everything stopped: nothing stale


def test_a_dying_child_stops_the_rest(driver_factory) -> None:
    driver = driver_factory(["sleeper", "dier"])
    assert driver.wait_exit() == 1, driver.output
    assert "dier exited with code 3 unexpectedly" in driver.output
    driver.wait_gone(driver.published_pids("sleeper", "sleeper-grandchild", "dier"), "children")


def test_a_child_that_never_gets_ready_stops_everything(driver_factory) -> None:
    driver = driver_factory(["sleeper"], "never-ready", ready_timeout=1)
    assert driver.wait_exit() == 1, driver.output
    assert "not ready after 1s: sleeper (sleeper.pid written)" in driver.output
    driver.wait_gone(driver.published_pids("sleeper", "sleeper-grandchild"), "children")


def test_describe_exit() -> None:
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(-9) == "was killed by SIGKILL"


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
