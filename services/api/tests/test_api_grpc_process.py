"""`ticketflow-api` as a real process: HTTP and gRPC in one event loop, both drained on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from datetime import UTC, datetime

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ticketflow.api.grpc_server import TICKET_SERVICE
from ticketflow.contracts import Ticket, TicketOutcome, TicketStatus
from ticketflow.testkit import eventually_async, free_port
from ticketflow.v1 import ticket_pb2, ticket_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def test_grpc_process_serves_both_and_drains_in_flight_calls_on_sigterm(helpers) -> None:
    finished = TicketOutcome(
        ticket_id="slow-one",
        status=TicketStatus.RESOLVED,
        ticket=Ticket(**helpers.submission(ticket_id="slow-one")),
        finished_at=datetime.now(UTC),
    )
    async with helpers.fake_read_model({"slow-one": finished}) as (rm_address, read_model):
        read_model.hold = True  # GetOutcome waits until released: an in-flight call to drain
        async with helpers.api_process(
            temporal_address=f"127.0.0.1:{free_port()}",
            projection_address=rm_address,
            read_model_timeout_s="60",
        ) as (proc, http_url, grpc_address):
            async with httpx.AsyncClient(base_url=http_url) as http:
                assert (await http.get("/healthz")).status_code == 200
            async with grpc.aio.insecure_channel(grpc_address) as channel:
                health = health_pb2_grpc.HealthStub(channel)
                check = health_pb2.HealthCheckRequest
                assert (await health.Check(check(service=""))).status == SERVING
                # Temporal is down: the ticket service says so.
                assert (await health.Check(check(service=TICKET_SERVICE))).status == NOT_SERVING

                tickets = ticket_pb2_grpc.TicketServiceStub(channel)
                in_flight = asyncio.ensure_future(
                    tickets.GetTicket(ticket_pb2.GetTicketRequest(ticket_id="slow-one"))
                )
                await read_model.asked.wait()
                watch = health.Watch(check(service=""))
                assert (await watch.read()).status == SERVING

                proc.send_signal(signal.SIGTERM)
                assert (await watch.read()).status == NOT_SERVING
                watch.cancel()

                async def refusing_new_calls() -> bool:
                    async with grpc.aio.insecure_channel(grpc_address) as fresh:
                        try:
                            await health_pb2_grpc.HealthStub(fresh).Check(check(), timeout=5)
                        except grpc.aio.AioRpcError as exc:
                            assert exc.code() == grpc.StatusCode.UNAVAILABLE
                            return True
                    raise AssertionError("still accepting new calls")

                await eventually_async(refusing_new_calls, what="new calls refused")
                read_model.release.set()
                # The call that was in flight when SIGTERM came is answered, not cut.
                answer = await in_flight
                assert answer.source == ticket_pb2.SOURCE_READ_MODEL
                assert answer.status == ticket_pb2.TICKET_STATUS_RESOLVED
            async with asyncio.timeout(20):
                assert await proc.wait() == 0


async def test_a_second_sigterm_stops_at_once_cutting_in_flight_calls(helpers) -> None:
    finished = TicketOutcome(
        ticket_id="stuck-one",
        status=TicketStatus.RESOLVED,
        ticket=Ticket(**helpers.submission(ticket_id="stuck-one")),
        finished_at=datetime.now(UTC),
    )
    async with helpers.fake_read_model({"stuck-one": finished}) as (rm_address, read_model):
        read_model.hold = True  # never released: only the second signal can end the drain
        async with helpers.api_process(
            temporal_address=f"127.0.0.1:{free_port()}",
            projection_address=rm_address,
            read_model_timeout_s="600",
            shutdown_grace_s="600",
        ) as (proc, _, grpc_address):
            async with grpc.aio.insecure_channel(grpc_address) as channel:
                tickets = ticket_pb2_grpc.TicketServiceStub(channel)
                in_flight = asyncio.ensure_future(
                    tickets.GetTicket(ticket_pb2.GetTicketRequest(ticket_id="stuck-one"))
                )
                await read_model.asked.wait()
                health = health_pb2_grpc.HealthStub(channel)
                watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
                assert (await watch.read()).status == SERVING

                proc.send_signal(signal.SIGTERM)
                # Draining has begun (the first signal was handled): now the second one.
                assert (await watch.read()).status == NOT_SERVING
                watch.cancel()
                proc.send_signal(signal.SIGTERM)

                with pytest.raises(grpc.aio.AioRpcError) as cut:
                    await in_flight
                assert cut.value.code() in {grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE}
            # Well within the 600 s grace: the second signal did not wait for it.
            async with asyncio.timeout(30):
                assert await proc.wait() == 0
            assert proc.stderr is not None
            err = (await proc.stderr.read()).decode()
            assert "SIGTERM, shutting down gracefully" in err
            assert "SIGTERM again, not waiting any longer" in err


@pytest.mark.parametrize("which", ["grpc", "http"])
async def test_grpc_or_http_port_taken_exits_1_with_a_clear_message(helpers, which: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"http_port": "0", "grpc_port": "0", f"{which}_port": str(port)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ticketflow.api",
            env=helpers.env_with(temporal_address=f"127.0.0.1:{free_port()}", **ports),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(20):
            _, err = await proc.communicate()
    # 1, not a crash: the server that did start is stopped in order.
    assert proc.returncode == 1, err.decode()
    assert f"cannot listen for {which.upper()} on 127.0.0.1:{port}".replace("GRPC", "gRPC") in (
        err.decode()
    )
