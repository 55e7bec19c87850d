"""_pdeathsig.py: the wrapper that gives a child its parent-death signal, then execs it in place."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

import pytest
from ticketflow.launcher.supervisor import PDEATHSIG_WRAPPER

pytestmark = pytest.mark.skipif(
    PDEATHSIG_WRAPPER is None, reason="parent-death signals are Linux-only"
)

PR_GET_PDEATHSIG = """
import ctypes, os
value = ctypes.c_int()
ctypes.CDLL(None, use_errno=True).prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
print(os.getpid(), value.value, {k: v for k, v in os.environ.items() if k.startswith("LC_")})
"""


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _wrapped(
    *argv: str, parent: int | None = None, lc_ctype: str = "-", nice: int = 0, **kwargs: Any
) -> subprocess.Popen[str]:
    assert PDEATHSIG_WRAPPER is not None
    wrapper = [sys.executable, "-I", "-S", str(PDEATHSIG_WRAPPER)]
    return subprocess.Popen(
        [*wrapper, str(os.getpid() if parent is None else parent), lc_ctype, str(nice), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_the_wrapper_execs_in_place_with_sigterm_and_the_same_environment() -> None:
    # No LC_* at all: the wrapper's interpreter coerces the C locale by setting LC_CTYPE (PEP 538),
    # yet the command must get exactly the environment it was given. (PYTHONCOERCECLOCALE=0 stops
    # the command's own interpreter from doing the same; the wrapper runs isolated and ignores it.)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONCOERCECLOCALE": "0"}
    process = _wrapped(sys.executable, "-c", PR_GET_PDEATHSIG, env=env)
    out, err = process.communicate(timeout=50)
    assert process.returncode == 0, err
    assert out.split(maxsplit=2) == [str(process.pid), str(int(signal.SIGTERM)), "{}\n"]
    # An LC_CTYPE that was given is kept.
    process = _wrapped(
        sys.executable, "-c", PR_GET_PDEATHSIG, lc_ctype="=C", env={**env, "LC_CTYPE": "C"}
    )
    out, err = process.communicate(timeout=50)
    assert process.returncode == 0, err
    assert out.split(maxsplit=2)[2] == "{'LC_CTYPE': 'C'}\n"


def test_the_wrapper_reports_what_it_cannot_run_and_a_parent_already_gone() -> None:
    process = _wrapped("/nonexistent/ticketflow-nothing")
    out, err = process.communicate(timeout=50)
    assert process.returncode == 127
    assert "cannot run /nonexistent/ticketflow-nothing" in err
    # The expected parent is not its parent (it died before prctl): the command never starts.
    process = _wrapped(sys.executable, "-c", "print('ran')", parent=_dead_pid())
    out, err = process.communicate(timeout=50)
    assert process.returncode == 128 + signal.SIGTERM
    assert out == ""


def test_the_wrapper_lowers_the_priority_of_the_command_and_its_threads() -> None:
    # The command's own niceness and that of a thread it starts: Linux niceness is per thread.
    report = (
        "import os, threading\n"
        "seen = []\n"
        "t = threading.Thread(target=lambda: seen.append(os.nice(0)))\n"
        "t.start(); t.join()\n"
        "print(os.nice(0), seen[0])\n"
    )
    process = _wrapped(sys.executable, "-c", report, nice=7)
    out, err = process.communicate(timeout=50)
    assert process.returncode == 0, err
    mine = os.nice(0)
    assert out.split() == [str(min(mine + 7, 19)), str(min(mine + 7, 19))]
