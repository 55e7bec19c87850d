"""A real PostgreSQL server for tests: a child process on 127.0.0.1, stopped by the test.

The binaries come from PyPI's ``pgserver`` wheel (PostgreSQL 16, in the lock), so nothing is
installed or downloaded at run time. Its own ``get_server`` is not used: it listens on a Unix
socket, may kill other servers of the same data directory, and cannot be killed and restarted
as a crash test needs. ``PostgresServer`` runs ``initdb`` and ``postgres`` itself instead:

- TCP on 127.0.0.1 only (no Unix socket), a free port, trust authentication (loopback, tests);
- PostgreSQL refuses to run as root: under root the server runs as the unprivileged ``nobody``,
  its data directory (a fresh one under the system temp dir) owned by that user;
- ``kill()`` SIGKILLs the server's process group (the postmaster and its backends, all started
  here) to play a crash; ``start()`` again on the same directory and port recovers it;
- the server dies with the process that started it (a parent-death signal), so a test run that
  is killed, or times out, leaves no server behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

import psycopg

from .polling import eventually
from .ports import free_port

__all__ = ["PostgresServer", "postgres_bin_dir"]

_UNPRIVILEGED_USER = "nobody"
# Tests only: a crash of this process must be survivable, a crash of the machine need not be.
_SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "log_min_messages": "warning",
}


def postgres_bin_dir() -> Path:
    """Where the pgserver wheel keeps ``initdb`` and ``postgres``."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the pgserver package is missing: run `uv sync` (it is in the lock)"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise FileNotFoundError(f"no postgres binary in {bin_dir}: reinstall pgserver (`uv sync`)")
    return bin_dir


def _other_can_use(path: Path) -> bool:
    """Whether a user who is neither owner nor group (``nobody``) can reach and run ``path``."""
    if not path.stat().st_mode & stat.S_IXOTH:
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.parents)


def _bin_dir_for(user: pwd.struct_passwd | None) -> Path:
    """The binaries, where ``user`` can run them: a checkout under a private directory (such as
    /root) is out of reach for ``nobody``, so the install is copied once to the temp dir, with
    the wheel's shared libraries where the binaries' RPATH looks (``../../../pgserver.libs``)."""
    bin_dir = postgres_bin_dir()
    if user is None or _other_can_use(bin_dir / "postgres"):
        return bin_dir
    package = bin_dir.parent.parent  # site-packages/pgserver
    copy = Path(tempfile.gettempdir()) / f"ticketflow-pgserver-{os.stat(package).st_ino}"
    if not (copy / "pgserver" / "pginstall" / "bin" / "postgres").exists():
        staging = Path(tempfile.mkdtemp(prefix="ticketflow-pgserver-"))
        shutil.copytree(package / "pginstall", staging / "pgserver" / "pginstall", symlinks=True)
        libs = package.parent / "pgserver.libs"
        if libs.exists():
            shutil.copytree(libs, staging / "pgserver.libs", symlinks=True)
        for path in (staging, staging / "pgserver"):
            os.chmod(path, 0o755)
        try:
            staging.rename(copy)
        except OSError:  # another process won the race: use its copy
            shutil.rmtree(staging, ignore_errors=True)
    return copy / "pgserver" / "pginstall" / "bin"


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _child_setup(user: pwd.struct_passwd | None) -> Callable[[], None]:
    """Run in the child between fork and exec: drop to ``user`` (under root), then ask the kernel
    to send SIGINT (PostgreSQL's fast shutdown) when the process that started it dies, so that a
    killed test run leaves no server behind. The signal is tied to the starting *thread*: start
    the server from one that outlives it (a test's own thread does). A change of user clears the
    setting, hence the order."""
    parent = os.getpid()

    def setup() -> None:
        if user is not None:
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGINT), 0, 0, 0)
            if os.getppid() != parent:  # the parent died before the setting took
                os._exit(1)

    return setup


class PostgresServer:
    """``with PostgresServer() as pg: pg.url()`` — a server for the duration of the block."""

    def __init__(self, *, data_dir: Path | None = None, port: int | None = None) -> None:
        self._user = pwd.getpwnam(_UNPRIVILEGED_USER) if os.geteuid() == 0 else None
        self._bin = _bin_dir_for(self._user)
        self._owns_dir = data_dir is None
        self.root = Path(data_dir or tempfile.mkdtemp(prefix="ticketflow-pg-"))
        self.data_dir = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self, *, timeout_s: float = 60) -> Self:
        """Initialise the data directory if new, start the server, return once it accepts."""
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        args = [str(self._bin / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        for key, value in _SERVER_SETTINGS.items():
            args += ["-c", f"{key}={value}"]
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_child_setup(self._user),
                start_new_session=True,  # its backends share the group: kill() ends them all
            )
        self._wait_ready(timeout_s)
        return self

    def _initdb(self) -> None:
        args = [
            str(self._bin / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
        done = subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            preexec_fn=_child_setup(self._user),
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr.strip()}")

    def _wait_ready(self, timeout_s: float) -> None:
        def accepts() -> bool:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"postgres exited with {self._proc.returncode} on start: {self.log_tail()}"
                )
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return True
            except psycopg.OperationalError as err:
                raise AssertionError(f"{err}; {self.log_tail(5)}") from err

        eventually(accepts, timeout=timeout_s, what=f"postgres on 127.0.0.1:{self.port}")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def stop(self, *, timeout_s: float = 30) -> None:
        """Fast shutdown (SIGINT: abort transactions, checkpoint, exit); SIGKILL if it hangs."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._kill_group(proc)

    def kill(self) -> None:
        """Crash it: SIGKILL the postmaster and every backend (its process group)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            self._kill_group(proc)

    @staticmethod
    def _kill_group(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        """Stop the server and remove its directory (if this object made it)."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- use --------------------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A fresh, empty database; returns its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
