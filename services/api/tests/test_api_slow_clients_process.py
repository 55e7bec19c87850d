"""The real api process, short of file descriptors, under more slow clients than it has descriptors.

It once lost its probes and wrote 78 MB of tracebacks in 25 s (300 slow connections, 256
descriptors). Now the probes answer, the slow connections are closed, and the log says so in a line
or two.
"""

from __future__ import annotations

import asyncio
import resource
import signal

import httpx
from temporalio.testing import WorkflowEnvironment
from ticketflow.testkit import eventually_async, free_port

NOFILE = 128  # the api's descriptor limit
SLOW = 200  # slow HTTP connections, more than it has descriptors
SLOW_GRPC = 5
HALF_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # never the blank line


def _enough_descriptors_here() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = SLOW + SLOW_GRPC + 200
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


async def _slow(port: int, first: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if first:
        writer.write(first)
        await writer.drain()
    return reader, writer


async def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Read what the server sends until it closes (a 408 before the close is fine)."""
    try:
        while await reader.read(65536):
            pass
    except ConnectionError:
        pass  # reset: closed as well
    return True


async def test_probes_answer_and_slow_clients_are_closed_at_a_low_descriptor_limit(
    helpers, dev_env: WorkflowEnvironment
) -> None:
    _enough_descriptors_here()
    async with helpers.api_process(
        nofile=NOFILE,
        log_level="warning",  # no access log: what remains is what the api says on its own
        temporal_address=dev_env.client.service_client.config.target_host,
        projection_address=f"127.0.0.1:{free_port()}",
        http_header_timeout_s="10",
    ) as (proc, http_url, grpc_address):
        # Read the log as it comes: a pipe nobody reads would stall a chatty api on its log.
        assert proc.stderr is not None
        log = _Log()
        reading = asyncio.create_task(log.read(proc.stderr))
        http_port = int(http_url.rsplit(":", 1)[1])
        grpc_port = int(grpc_address.rsplit(":", 1)[1])
        # All at once: a burst the api cannot even accept with its descriptors.
        slow = await asyncio.gather(*(_slow(http_port, HALF_REQUEST) for _ in range(SLOW)))
        slow_grpc = [await _slow(grpc_port, b"") for _ in range(SLOW_GRPC)]
        closed = [asyncio.create_task(_closed_by_server(reader)) for reader, _ in slow + slow_grpc]

        async def probes_answer() -> bool:
            # A fresh connection per probe, as an orchestrator's probes make them.
            async with httpx.AsyncClient(base_url=http_url, timeout=2.0) as http:
                try:
                    healthz, readyz = await http.get("/healthz"), await http.get("/readyz")
                except httpx.HTTPError:
                    return False
            return healthz.status_code == readyz.status_code == 200

        await eventually_async(probes_answer, what="/healthz and /readyz to answer 200")
        # ... while slow clients still held connections (within their 10 s header deadline).
        assert not all(task.done() for task in closed[:SLOW])

        # Every slow connection, HTTP and gRPC, is closed by the server (the header deadline also
        # bounds a gRPC handshake).
        async with asyncio.timeout(30):
            assert all(await asyncio.gather(*closed))
        for _, writer in slow + slow_grpc:
            writer.close()

        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            assert await proc.wait() == 0
            await reading
    shown = "\n".join(log.first)
    assert log.tracebacks == 0, shown
    # The first refusal at once, then one summary per 10 s, the rest at shutdown: not one a
    # connection.
    assert 1 <= len(log.refusals) <= 5, shown
    assert log.lines <= len(log.refusals) + 5, shown


class _Log:
    """Counts of the api's log lines, and the first few hundred of them."""

    def __init__(self) -> None:
        self.lines = self.tracebacks = 0
        self.first: list[str] = []
        self.refusals: list[str] = []

    async def read(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            if "File descriptor limit reached. Retrying." in line:
                # gRPC core's own listener says this at most once a second while the burst
                # lasts (how long depends on the machine's load): not a line per connection.
                continue
            self.lines += 1
            self.tracebacks += line.startswith("Traceback")
            if "HTTP connections refused" in line:
                self.refusals.append(line)
            if len(self.first) < 200:
                self.first.append(line)
