"""Real processes over loopback for cross-service tests: a Temporal dev server and the services.

Every process is started here in its own session, on 127.0.0.1, and ended by its pid (SIGTERM, then
SIGKILL) when the stack closes. Logs go to files under the test's tmp dir and are printed when a
test fails, so a failure says what each process did.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TypeVar

import httpx
from temporalio.service import RPCError
from ticketflow.contracts import names
from ticketflow.launcher._probes import TemporalPollers
from ticketflow.runtime import pollers
from ticketflow.runtime.devserver import dev_server_command, wait_for_frontend
from ticketflow.runtime.net import wait_for_port
from ticketflow.runtime.search_attributes import ensure_search_attributes
from ticketflow.testkit import eventually as _eventually
from ticketflow.testkit import free_port

__all__ = [
    "DECISION_KEYS",
    "TERMINAL",
    "TOKENS",
    "Stack",
    "bearer",
    "eventually",
    "submit",
    "ticket",
    "wait_status",
]

T = TypeVar("T")
BIN = Path(sys.executable).parent
TOKENS = {"alice": "tok-alice-0123456789", "bob": "tok-bob-0123456789"}
# The decision key the api signs with and the core worker verifies with (a test value).
DECISION_KEYS = "e2e:" + base64.b64encode(b"ticketflow-e2e-decision-key-0123").decode()

_CORE = [(names.CORE_QUEUE, pollers.WORKFLOW), (names.CORE_QUEUE, pollers.ACTIVITY)]
_AGENT = {
    "primary": [(names.AGENT_QUEUE, pollers.ACTIVITY)],
    "fallback": [(names.AGENT_FALLBACK_QUEUE, pollers.ACTIVITY)],
    "both": [(names.AGENT_QUEUE, pollers.ACTIVITY), (names.AGENT_FALLBACK_QUEUE, pollers.ACTIVITY)],
}


def _polled_queues(script: str, args: tuple[str, ...]) -> list[tuple[str, pollers.QueueKind]]:
    """The task queues a worker process polls once it is ready."""
    if script == "ticketflow-core-worker":
        return _CORE
    if script == "ticketflow-agent-worker":
        choice = args[args.index("--queue") + 1] if "--queue" in args else "both"
        return _AGENT[choice]
    if script == "ticketflow-projection" and "rebuild" not in args:
        return [(names.PROJECTION_QUEUE, pollers.ACTIVITY)]
    return []


# Real processes on a busy 2-core machine: a minute before a condition counts as never met.
eventually = functools.partial(_eventually, timeout=60.0)


class Stack:
    """One isolated ticketflow: its own dev server, data dir and ports."""

    def __init__(self, root: Path, **env: str) -> None:
        self.root = root
        self.data_dir = root / "var"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs = root / "logs"
        self.logs.mkdir(exist_ok=True)
        self.temporal_port = free_port()
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.projection_port = free_port()
        base = {k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_")}
        self.env: dict[str, str] = {
            **base,
            "PYTHONUNBUFFERED": "1",
            "TICKETFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
            "TICKETFLOW_DATA_DIR": str(self.data_dir),
            "TICKETFLOW_HTTP_PORT": str(self.http_port),
            "TICKETFLOW_GRPC_PORT": str(self.grpc_port),
            "TICKETFLOW_PROJECTION_ADDRESS": f"127.0.0.1:{self.projection_port}",
            "TICKETFLOW_APPROVER_TOKENS": ",".join(f"{n}:{t}" for n, t in TOKENS.items()),
            "TICKETFLOW_DECISION_KEYS": DECISION_KEYS,
            "TICKETFLOW_MOCK_LATENCY_MS": "0",
            **env,
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        # Each process's Prometheus address (host:port), by name: every process serves metrics.
        self.metrics: dict[str, str] = {}
        self._pollers = TemporalPollers(f"127.0.0.1:{self.temporal_port}", "default")
        self._log_files: dict[str, Any] = {}
        self._restarts: dict[str, int] = {}

    # ---- processes -----------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        if name in self.procs and self.procs[name].poll() is None:
            raise RuntimeError(f"{name} is already running")
        n = self._restarts[name] = self._restarts.get(name, -1) + 1
        log = open(self.logs / f"{name}.{n}.log", "wb")
        self._log_files[f"{name}.{n}"] = log
        proc = subprocess.Popen(
            argv,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.root,
        )
        self.procs[name] = proc
        return proc

    def start_temporal(self) -> None:
        argv = dev_server_command(
            db_filename=self.data_dir / "temporal.db",
            port=self.temporal_port,
            headless=True,
            # Delete closed workflows at once (the dev server otherwise waits ~35 s), so tests
            # can show the read model answering for a deleted history.
            dynamic_config={"history.transferProcessorEnsureCloseBeforeDelete": False},
            metrics_port=(metrics_port := free_port()),
        )
        self.metrics["temporal"] = f"127.0.0.1:{metrics_port}"
        proc = self._spawn("temporal", argv, self.env)
        wait_for_port("127.0.0.1", self.temporal_port, time.monotonic() + 60, process=proc)
        wait_for_frontend("127.0.0.1", self.temporal_port, time.monotonic() + 60, process=proc)
        asyncio.run(
            ensure_search_attributes(
                f"127.0.0.1:{self.temporal_port}", "default", time.monotonic() + 60
            )
        )

    def start(
        self, name: str, *args: str, script: str | None = None, ready: bool = True, **env: str
    ) -> subprocess.Popen[bytes]:
        """Start a service by console script; ``name`` labels it (e.g. two api processes).

        A worker counts as started only once Temporal lists a poller of each of its queues seen
        since this call (``ready=False`` skips the wait, e.g. while Temporal is down): a test that
        relied on it earlier would race its first poll.
        """
        script = script or name
        since = time.time()
        if "TICKETFLOW_METRICS_PORT" not in env and "rebuild" not in args:
            env = {**env, "TICKETFLOW_METRICS_PORT": str(free_port())}
        if "TICKETFLOW_METRICS_PORT" in env:
            self.metrics[name] = f"127.0.0.1:{env['TICKETFLOW_METRICS_PORT']}"
        proc = self._spawn(name, [str(BIN / script), *args], {**self.env, **env})
        queues = _polled_queues(script, args)
        if ready and queues:

            def polling() -> bool:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log(name)}")
                try:
                    return self._pollers.polled_since(queues, since)
                except (RuntimeError, TimeoutError, RPCError):  # Temporal not answering yet
                    return False

            eventually(polling, timeout=60, what=f"{name} polling {sorted({q for q, _ in queues})}")
        return proc

    def start_all(self, **core_env: str) -> None:
        """The dev server and every worker (not the api), each ready before the next starts."""
        self.start_temporal()
        self.start("ticketflow-core-worker", **core_env)
        self.start("ticketflow-agent-worker", "--queue", "both")
        self.start("ticketflow-projection")

    def start_api(self, name: str = "ticketflow-api", **env: str) -> httpx.Client:
        port = int(env.get("TICKETFLOW_HTTP_PORT", self.env["TICKETFLOW_HTTP_PORT"]))
        proc = self.start(name, script="ticketflow-api", **env)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log(name)}")
            try:
                return client.get("/readyz").status_code == 200
            except httpx.TransportError:
                return False

        eventually(ready, timeout=60, what=f"{name} /readyz")
        return client

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)  # the process and any children it made, by its group id
            proc.wait(timeout=30)

    def stop(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)

    def close(self) -> None:
        # Services first, the server last.
        for name in [n for n in self.procs if n != "temporal"] + ["temporal"]:
            if name in self.procs:
                try:
                    self.stop(name)
                except ProcessLookupError:
                    pass
        for f in self._log_files.values():
            f.close()
        self._pollers.close()

    def log(self, name: str) -> str:
        out = []
        for path in sorted(self.logs.glob(f"{name}.*.log")):
            out.append(f"----- {path.name} -----\n{path.read_text(errors='replace')[-6000:]}")
        return "\n".join(out)

    def all_logs(self) -> str:
        return "\n".join(
            f"----- {p.name} -----\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted(self.logs.glob("*.log"))
        )

    # ---- data ----------------------------------------------------------------------------

    def sql(self, db: str, query: str, *args: Any) -> list[tuple]:
        path = self.data_dir / db
        if not path.exists():
            return []
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(query, args).fetchall()
        finally:
            conn.close()


def submit(api: httpx.Client, **fields: Any) -> dict:
    body = {"customer_id": "cust-1", "subject": "help", "body": "hello", **fields}
    r = api.post("/tickets", json=body)
    assert r.status_code == 202, r.text
    return r.json()


def ticket(api: httpx.Client, ticket_id: str) -> dict:
    r = api.get(f"/tickets/{ticket_id}")
    assert r.status_code == 200, r.text
    return r.json()


TERMINAL = {"RESOLVED", "REJECTED", "ESCALATED"}


def wait_status(api: httpx.Client, ticket_id: str, *statuses: str, timeout: float = 90) -> dict:
    """Poll GET /tickets/{id} until its status is one of ``statuses``.

    For terminal statuses also wait until every final side effect is done (the status closes the
    door to decisions before the holding reply and the projection run).
    """

    def check() -> dict | None:
        r = api.get(f"/tickets/{ticket_id}")
        if r.status_code != 200:
            return None
        body = r.json()
        if body["status"] in statuses and (
            body["status"] not in TERMINAL or body["side_effects_done"]
        ):
            return body
        return None

    return eventually(check, timeout=timeout, what=f"ticket {ticket_id} in {statuses}")


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}
