"""ticketflow's whole stack for a benchmark: `ticketflow up` on free loopback ports, its stores."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from ticketflow.testkit import PostgresServer, free_port

__all__ = ["BENCH_TOKEN", "start_stack", "stop_process", "stop_stack", "store_env", "wait_ready"]

BENCH_TOKEN = "bench-approver-token-0123456789"


def start_stack(
    data_dir: Path, latency_ms: int, rate: float, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """``ticketflow up`` on free loopback ports; its output goes to ``data_dir/up.log``."""
    http_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_")},
        "TICKETFLOW_DATA_DIR": str(data_dir),
        "TICKETFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "TICKETFLOW_HTTP_PORT": str(http_port),
        "TICKETFLOW_GRPC_PORT": str(free_port()),
        "TICKETFLOW_PROJECTION_ADDRESS": f"127.0.0.1:{free_port()}",
        "TICKETFLOW_MOCK_LATENCY_MS": str(latency_ms),
        "TICKETFLOW_AGENT_RATE_PER_S": str(rate),
        "TICKETFLOW_AGENT_MAX_CONCURRENT": "64",
        "TICKETFLOW_APPROVER_TOKENS": f"bench:{BENCH_TOKEN}",
        **(extra_env or {}),
    }
    log = open(data_dir / "up.log", "wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "ticketflow"), "up", "--headless"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, f"http://127.0.0.1:{http_port}"


async def wait_ready(
    client: httpx.AsyncClient, proc: subprocess.Popen, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"ticketflow up exited with {proc.returncode}; see its log")
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("the stack was not ready in time")


def stop_stack(proc: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM to the process group started with ``start_new_session``; SIGKILL after ``timeout``."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def stop_process(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Wait for a process already asked to stop; SIGKILL it if it is still there after ``timeout``."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def store_env(store: str, stack: contextlib.ExitStack) -> dict[str, str]:
    """The environment that puts every ticketflow store on ``store``."""
    if store == "sqlite":
        return {}
    server = stack.enter_context(PostgresServer())
    print(f"PostgreSQL on 127.0.0.1:{server.port} for the ledger and the read model", flush=True)
    return {
        "TICKETFLOW_LEDGER_URL": server.create_database("ledger"),
        "TICKETFLOW_READMODEL_URL": server.create_database("readmodel"),
        "TICKETFLOW_MIGRATE_ON_START": "true",
    }
