"""Readiness probes: a port, an HTTP 2xx, and a worker that Temporal sees polling since a moment."""

from __future__ import annotations

import asyncio
import http.server
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from temporalio import activity
from ticketflow.launcher._probes import TemporalPollers, all_of, http_ok, tcp_open
from ticketflow.runtime.pollers import ACTIVITY, WORKFLOW
from ticketflow.testkit import free_port


class _Status(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response({"/ok": 200, "/busy": 503}.get(self.path, 404))
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_http_ok_only_on_2xx(http_port: int) -> None:
    assert http_ok(f"http://127.0.0.1:{http_port}/ok")
    assert not http_ok(f"http://127.0.0.1:{http_port}/busy")  # the api's /readyz before Temporal
    assert not http_ok(f"http://127.0.0.1:{http_port}/missing")
    assert not http_ok(f"http://127.0.0.1:{free_port()}/ok")  # nothing listens


def test_tcp_open_and_all_of() -> None:
    port = free_port()
    assert not tcp_open("127.0.0.1", port)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert tcp_open("127.0.0.1", port)
        assert all_of(lambda: tcp_open("127.0.0.1", port), lambda: True)()
        assert not all_of(lambda: tcp_open("127.0.0.1", port), lambda: False)()


@activity.defn(name="launcher_probe_activity")
async def _probe_activity() -> None:
    return None


@pytest.mark.integration
async def test_temporal_pollers_see_only_workers_polling_since_a_moment(
    dev_env, worker_fleet
) -> None:
    client = dev_env.client
    queue = f"launcher-probe-{uuid.uuid4().hex}"
    since = time.time()
    pollers = TemporalPollers(client.service_client.config.target_host, client.namespace)
    # The probe is synchronous, on a loop of its own: call it off this test's loop.
    try:
        assert not await asyncio.to_thread(pollers.polled_since, [(queue, ACTIVITY)], since)
        fleet = await worker_fleet(client)
        fleet.add(queue, activities=[_probe_activity])
        await fleet.start()  # returns once Temporal lists the worker as a poller

        assert await asyncio.to_thread(pollers.probe([(queue, ACTIVITY)], since_epoch_s=since))
        # Only pollers seen since the moment count (a previous run's workers do not) ...
        later = time.time() + 3600
        assert not await asyncio.to_thread(pollers.polled_since, [(queue, ACTIVITY)], later)
        # ... and every (queue, kind) needs one: this worker runs no workflows.
        both = [(queue, ACTIVITY), (queue, WORKFLOW)]
        assert not await asyncio.to_thread(pollers.polled_since, both, since)
    finally:
        pollers.close()
