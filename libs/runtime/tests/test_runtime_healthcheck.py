"""The probes behind every image's HEALTHCHECK, against real servers on 127.0.0.1: an HTTP server,
a gRPC health service, the dev server with a polling worker; and `run_check`'s exit status, every time."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from ticketflow.runtime import pollers
from ticketflow.runtime.healthcheck import (
    HealthError,
    check_grpc,
    check_http,
    check_polling,
    check_status,
    init_started_at,
    reach_host,
)
from ticketflow.testkit import eventually_async, free_port


@pytest.mark.parametrize(
    ("bind", "dial"),
    [("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1"), ("127.0.0.1", "127.0.0.1"), ("::1", "[::1]")],
)
def test_reach_host(bind: str, dial: str) -> None:
    assert reach_host(bind) == dial


class _Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/readyz" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_http_healthy_on_2xx_else_an_error_saying_what_it_saw(http_server: int) -> None:
    assert check_http(f"http://127.0.0.1:{http_server}/readyz").endswith(": 200")
    with pytest.raises(HealthError, match="503"):
        check_http(f"http://127.0.0.1:{http_server}/other")
    with pytest.raises(HealthError, match="refused"):
        check_http(f"http://127.0.0.1:{free_port()}/readyz")


async def test_grpc_healthy_only_when_serving() -> None:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        assert "SERVING" in await check_grpc(f"127.0.0.1:{port}")
        await servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        with pytest.raises(HealthError, match="NOT_SERVING"):
            await check_grpc(f"127.0.0.1:{port}")
    finally:
        await server.stop(None)
    with pytest.raises(HealthError, match="UNAVAILABLE"):
        await check_grpc(f"127.0.0.1:{port}", timeout_s=1)


@workflow.defn(name="RuntimeHealthcheckProbe")
class Probe:
    @workflow.run
    async def run(self) -> None:
        return None


async def test_polling_needs_a_recent_poller_of_this_host(dev_env: WorkflowEnvironment) -> None:
    client = dev_env.client
    queue, other = (f"healthcheck-{uuid.uuid4().hex[:8]}" for _ in range(2))
    address = client.service_client.config.target_host
    host = socket.gethostname()
    queues = [(queue, pollers.WORKFLOW)]
    with pytest.raises(HealthError, match="no recent poller"):
        await check_polling(address, "default", queues, identity_prefix="probe-")
    worker = Worker(
        client,
        task_queue=queue,
        workflows=[Probe],
        identity=f"probe-1@{host}",
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    async with worker:

        async def healthy() -> bool:
            try:
                await check_polling(address, "default", queues, identity_prefix="probe-")
            except HealthError:
                return False
            return True

        await eventually_async(healthy, what="the probe worker listed as a poller")
        # Another host's worker, another prefix, or a queue it does not poll: not this service.
        with pytest.raises(HealthError):
            await check_polling(
                address, "default", queues, identity_prefix="probe-", host="elsewhere"
            )
        with pytest.raises(HealthError):
            await check_polling(address, "default", queues, identity_prefix="other-")
        both = [*queues, (other, pollers.WORKFLOW)]
        with pytest.raises(HealthError, match=other):
            await check_polling(address, "default", both, identity_prefix="probe-")
        assert await check_polling(
            address, "default", both, identity_prefix="probe-", any_queue=True
        )
    with pytest.raises(HealthError, match="Temporal at"):
        await check_polling(
            f"127.0.0.1:{free_port()}", "default", queues, identity_prefix="probe-", timeout_s=1
        )


def test_check_status_is_0_or_1_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_status("svc", lambda: "fine") == 0
    assert capsys.readouterr().out == "svc healthcheck: healthy: fine\n"

    def bad() -> str:
        raise HealthError("nobody home")

    assert check_status("svc", bad) == 1
    assert capsys.readouterr().err == "svc healthcheck: NOT healthy: nobody home\n"


# A probe whose Temporal client found nobody, as an image's HEALTHCHECK runs it with the server down.
PROBE_NOBODY = """
import sys
from ticketflow.runtime.healthcheck import check_polling, run_check
run_check("probe", lambda: check_polling(sys.argv[1], "default", [], identity_prefix="p-"))
"""


@pytest.mark.timeout(150)  # thirty probe processes, each importing the Temporal SDK
def test_a_probe_whose_client_found_nobody_exits_1_every_time() -> None:
    """The interpreter's finalisation under the SDK's Rust threads aborted or crashed such a probe
    about once in ten runs (exit -6 or -11 instead of 1); thirty runs, a few at a time."""
    address = f"127.0.0.1:{free_port()}"

    def one(_: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", PROBE_NOBODY, address],
            capture_output=True,
            text=True,
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(one, range(30)))
    assert [r.returncode for r in runs] == [1] * 30, [r.stderr for r in runs if r.returncode != 1]
    assert all("NOT healthy: Temporal at" in r.stderr for r in runs)


def test_init_started_at_is_in_the_past() -> None:
    started = init_started_at()
    assert started is not None
    assert 0 < started <= time.time()
