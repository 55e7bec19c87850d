"""The real `ticketflow-projection` process: serve (with and without Temporal), SIGTERM, rebuild's
exit status when Temporal is unreachable."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ticketflow.contracts.models import TicketOutcome
from ticketflow.contracts.proto_convert import from_proto
from ticketflow.projection.store import ReadModel
from ticketflow.v1 import readmodel_pb2, readmodel_pb2_grpc

LISTENING = re.compile(r"gRPC read API on (127\.0\.0\.1:\d+)")


@pytest.fixture
def dead_temporal() -> Iterator[str]:
    """An address on 127.0.0.1 where nothing listens: the port is bound (so nobody else gets it)
    but not listening, so every connection is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def env_for(data_dir: Path, temporal: str) -> dict[str, str]:
    return {
        **os.environ,
        "TICKETFLOW_DATA_DIR": str(data_dir),
        "TICKETFLOW_TEMPORAL_ADDRESS": temporal,
        "TICKETFLOW_PROJECTION_ADDRESS": "127.0.0.1:0",
        "PYTHONUNBUFFERED": "1",
    }


class Serving:
    def __init__(self, proc: asyncio.subprocess.Process, address: str, log: Path) -> None:
        self.proc = proc
        self.address = address
        self.log = log
        self.channel = grpc.aio.insecure_channel(address)
        self.stub = readmodel_pb2_grpc.ReadModelServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    async def terminate(self) -> tuple[int, str]:
        """SIGTERM, then the exit status and the rest of stdout."""
        self.proc.send_signal(signal.SIGTERM)
        out = await asyncio.wait_for(self.proc.stdout.read(), timeout=60)
        return await self.proc.wait(), out.decode()


@pytest.fixture
async def serve_process(tmp_path: Path) -> AsyncIterator:
    started: list[Serving] = []

    async def start(temporal: str) -> Serving:
        log = tmp_path / f"projection-{len(started)}.log"
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "ticketflow.projection",
                "serve",
                env=env_for(tmp_path / "var", temporal),
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )
        first = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        match = LISTENING.search(first.decode())
        if not match:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"unexpected first line {first!r}; log: {log.read_text()}")
        s = Serving(proc, match.group(1), log)
        started.append(s)
        return s

    yield start
    for s in started:
        await s.channel.close()
        if s.proc.returncode is None:
            s.proc.kill()
            await s.proc.wait()


async def test_read_api_serves_while_temporal_is_unreachable_and_sigterm_stops_it(
    tmp_path: Path, dead_temporal: str, serve_process, helpers
) -> None:
    outcome = helpers.make_outcome("t-offline")
    ReadModel(tmp_path / "var" / "readmodel.db").record(outcome, run_id="r")

    s = await serve_process(dead_temporal)
    resp = await s.stub.GetOutcome(readmodel_pb2.GetOutcomeRequest(ticket_id="t-offline"))
    assert from_proto(resp.outcome, TicketOutcome) == outcome
    check = await s.health.Check(health_pb2.HealthCheckRequest(service=""))
    assert check.status == health_pb2.HealthCheckResponse.SERVING

    async def worker_retrying() -> None:
        assert "waiting for Temporal" in s.log.read_text()

    await helpers.eventually(worker_retrying)

    code, out = await s.terminate()
    assert code == 0, s.log.read_text()
    assert "projection: stopped" in out


async def test_serve_records_real_workflow_outcomes(tmp_path: Path, serve_process, helpers) -> None:
    env = await helpers.start_dev_server()
    try:
        target = env.client.service_client.config.target_host
        s = await serve_process(target)
        # Core and agent workers only: the projection queue is served by the process.
        async with helpers.Fleet(env.client, tmp_path / "ledger.db", None) as fleet:
            handle = await fleet.start()
            outcome = await handle.result()  # returns after record_outcome succeeded
        resp = await s.stub.GetOutcome(readmodel_pb2.GetOutcomeRequest(ticket_id=outcome.ticket_id))
        assert from_proto(resp.outcome, TicketOutcome) == outcome
        listed = await s.stub.ListOutcomes(readmodel_pb2.ListOutcomesRequest())
        assert [o.ticket_id for o in listed.outcomes] == [outcome.ticket_id]
        code, out = await s.terminate()
        assert code == 0, s.log.read_text()
        assert "worker polling 'ticketflow-projection'" in out
    finally:
        await env.shutdown()


async def test_rebuild_exits_non_zero_when_temporal_is_unreachable(
    tmp_path: Path, dead_temporal: str, helpers
) -> None:
    store = ReadModel(tmp_path / "var" / "readmodel.db")
    store.record(helpers.make_outcome("t-keep"), run_id="r")
    before = helpers.table(store)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ticketflow.projection",
        "rebuild",
        "--connect-timeout",
        "5",
        env=env_for(tmp_path / "var", dead_temporal),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 1
    assert "unreachable" in err.decode() and dead_temporal in err.decode()
    assert "nothing was changed" in err.decode()
    assert helpers.table(store) == before


async def test_cli_help_names_the_subcommands() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ticketflow.projection",
        "--help",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0
    text = out.decode()
    assert "serve" in text and "rebuild" in text and "TICKETFLOW_PROJECTION_ADDRESS" in text
