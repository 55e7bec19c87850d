"""The real `ticketflow-projection` process records the outcomes of real TicketWorkflow runs.

Cross-service: core-worker's workflow and side effects and the fake agent run as in-process
workers; the projection's queue is served only by the process under test.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import grpc
from ticketflow import testkit
from ticketflow.contracts.models import TicketOutcome
from ticketflow.contracts.proto_convert import from_proto
from ticketflow.v1 import readmodel_pb2, readmodel_pb2_grpc

from .workflow_stack import TicketStack, start_server

LISTENING = re.compile(r"gRPC read API on (127\.0\.0\.1:\d+)")


async def test_serve_records_real_workflow_outcomes(tmp_path: Path) -> None:
    env = await start_server()
    log = tmp_path / "projection.log"
    proc: asyncio.subprocess.Process | None = None
    try:
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "ticketflow.projection",
                "serve",
                env={
                    **{k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_")},
                    "TICKETFLOW_DATA_DIR": str(tmp_path / "var"),
                    "TICKETFLOW_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
                    "TICKETFLOW_PROJECTION_ADDRESS": "127.0.0.1:0",
                    "PYTHONUNBUFFERED": "1",
                },
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode()
        listening = LISTENING.search(first)
        assert listening, f"unexpected first line {first!r}; log: {log.read_text()}"

        # Core and agent workers only: the projection queue is served by the process.
        async with TicketStack(env.client, tmp_path, projection_db=None) as stack:
            handle = await stack.start()
            outcome = await handle.result()  # returns after record_outcome succeeded

        async with grpc.aio.insecure_channel(listening.group(1)) as channel:
            stub = readmodel_pb2_grpc.ReadModelServiceStub(channel)
            resp = await stub.GetOutcome(
                readmodel_pb2.GetOutcomeRequest(ticket_id=outcome.ticket_id)
            )
            assert from_proto(resp.outcome, TicketOutcome) == outcome
            listed = await stub.ListOutcomes(readmodel_pb2.ListOutcomesRequest())
            assert [o.ticket_id for o in listed.outcomes] == [outcome.ticket_id]

        proc.send_signal(signal.SIGTERM)
        out = (await asyncio.wait_for(proc.stdout.read(), timeout=30)).decode()
        assert await proc.wait() == 0, log.read_text()
        assert "worker polling 'ticketflow-projection'" in out
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        await testkit.stop_env(env)
