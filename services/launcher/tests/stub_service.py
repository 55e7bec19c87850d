"""Stand-in for a ticketflow service console script, for launcher tests.

Installed into a temp bin dir as ticketflow-api, ticketflow-core-worker, ... (see
test_launcher_up.py), whose shims set STUB_SERVICE to the service it plays. It does just enough to
pass the launcher's readiness probes (a real Temporal worker polling the service's task queues,
the api's /readyz and gRPC port, the projection's gRPC port), records its pid and environment in
``$TICKETFLOW_DATA_DIR/stub-<service>.json``, and stops cleanly on SIGTERM.
``STUB_EXIT_<SERVICE>=<code>`` (e.g. STUB_EXIT_CORE_WORKER=3) makes it exit at once instead.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from ticketflow.contracts import names


@workflow.defn(name="LauncherStubWorkflow")
class StubWorkflow:
    @workflow.run
    async def run(self) -> None:
        return None


@activity.defn(name="launcher_stub_activity")
async def stub_activity() -> None:
    return None


class _Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/readyz" else 404)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


def _listen(port: int, host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen()
    return sock


async def _run_workers(queues: list[tuple[str, bool]], stop: asyncio.Event) -> None:
    client = await Client.connect(
        os.environ["TICKETFLOW_TEMPORAL_ADDRESS"], namespace=os.environ["TICKETFLOW_NAMESPACE"]
    )
    workers = [
        Worker(
            client,
            task_queue=queue,
            workflows=[StubWorkflow] if with_workflows else [],
            activities=[stub_activity],
            workflow_runner=UnsandboxedWorkflowRunner(),
        )
        for queue, with_workflows in queues
    ]
    async with asyncio.TaskGroup() as group:
        for worker in workers:
            group.create_task(worker.run())
        await stop.wait()
        for worker in workers:
            group.create_task(worker.shutdown())


async def main() -> int:
    service = os.environ.pop("STUB_SERVICE")
    data_dir = Path(os.environ["TICKETFLOW_DATA_DIR"])
    record = {
        "pid": os.getpid(),
        "argv": sys.argv,
        "env": {k: v for k, v in os.environ.items() if k.startswith("TICKETFLOW_")},
    }
    (data_dir / f"stub-{service}.json").write_text(json.dumps(record))
    exit_code = os.environ.get(f"STUB_EXIT_{service.upper().replace('-', '_')}")
    if exit_code is not None:
        print(f"stub {service}: exiting with {exit_code} as told", flush=True)
        return int(exit_code)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    keep: list[object] = []
    queues: list[tuple[str, bool]] = []
    if service == "core-worker":
        queues = [(names.CORE_QUEUE, True)]
    elif service == "agent-worker":
        assert sys.argv[1:] == ["--queue", "both"], sys.argv
        queues = [(names.AGENT_QUEUE, False), (names.AGENT_FALLBACK_QUEUE, False)]
    elif service == "projection":
        host, _, port = os.environ["TICKETFLOW_PROJECTION_ADDRESS"].rpartition(":")
        keep.append(_listen(int(port), host))
        queues = [(names.PROJECTION_QUEUE, False)]
    elif service == "api":
        keep.append(_listen(int(os.environ["TICKETFLOW_GRPC_PORT"])))
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", int(os.environ["TICKETFLOW_HTTP_PORT"])), _Ready
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        keep.append(server)
    print(f"stub {service}: running (pid {os.getpid()})", flush=True)
    if queues:
        await _run_workers(queues, stop)
    else:
        await stop.wait()
    print(f"stub {service}: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
