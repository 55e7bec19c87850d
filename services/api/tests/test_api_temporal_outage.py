"""While Temporal is down, the api answers 503 (gRPC UNAVAILABLE) with `Retry-After` at once.

A real dev server on a file is stopped mid-test and restarted on the same port and database. A
client with a 5 s timeout must get the api's answer, not its own timeout: the Temporal SDK retries
a call the server cannot take for up to 10 s by itself, so before the fix every call took 6-10 s.
After a few failures the circuit opens and no call reaches Temporal at all; once Temporal is back,
the probe after the cool-down closes it. One log line when it opens, one when it closes.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from temporalio.client import Client
from ticketflow.api import Settings
from ticketflow.api.temporal import TicketGateway
from ticketflow.testkit import TEST_DECISION_KEYS, DevServer, eventually_async, free_port
from ticketflow.v1 import ticket_pb2, ticket_pb2_grpc

# The client's own patience: what a caller of the api typically allows.
CLIENT_TIMEOUT_S = 5.0
OPENED = "circuit open"
CLOSED = "circuit closed"


class CountingGateway(TicketGateway):
    """The real gateway, counting the operations that go for the Temporal client (every one asks
    `connect()` first, the readiness check and the circuit's probe included)."""

    calls = 0

    async def connect(self) -> Client:
        self.calls += 1
        return await super().connect()


@asynccontextmanager
async def dev_server(tmp_path: Path) -> AsyncIterator[DevServer]:
    server = DevServer(db_filename=tmp_path / "temporal.db")
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


def submit_request(i: int) -> ticket_pb2.SubmitTicketRequest:
    return ticket_pb2.SubmitTicketRequest(customer_id=f"c{i}", subject="Refund", body="refund")


async def http_calls(http: httpx.AsyncClient, helpers: Any, ticket_id: str) -> list[httpx.Response]:
    """POST /tickets, the approval queue and a decision, each under the client's own timeout
    (over ASGI, which has no timeout of its own, the same bound is an asyncio one)."""
    answers = []
    for call in (
        lambda: http.post("/tickets", json=helpers.submission()),
        lambda: http.get("/tickets", params={"status": "WAITING_APPROVAL"}),
        lambda: http.post(
            f"/tickets/{ticket_id}/decision", json={"approved": True}, headers=helpers.bearer()
        ),
    ):
        async with asyncio.timeout(CLIENT_TIMEOUT_S):
            answers.append(await call())
    return answers


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "temporal_unavailable", response.text
    assert int(response.headers["retry-after"]) >= 1


async def assert_grpc_unavailable(stub: ticket_pb2_grpc.TicketServiceStub, i: int) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SubmitTicket(submit_request(i), timeout=CLIENT_TIMEOUT_S)
    # UNAVAILABLE from the api, not DEADLINE_EXCEEDED from the client's own timeout.
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value
    assert "Temporal at" in (info.value.details() or "")
    trailers = dict(info.value.trailing_metadata() or ())
    assert trailers["ticketflow-error-code"] == "temporal_unavailable"
    assert int(trailers["retry-after"]) >= 1


def lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


@pytest.mark.timeout(120)  # two dev-server starts on a file-backed db
async def test_an_outage_is_503_at_once_then_the_circuit_opens_and_closes_when_temporal_is_back(
    helpers, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with dev_server(tmp_path) as server:
        settings = Settings(  # the api's default deadlines, retries and circuit
            temporal_address=server.address,
            core_queue=f"api-outage-{uuid.uuid4().hex}",
            approver_tokens=f"alice:{helpers.APPROVERS['alice']}",
            decision_keys=TEST_DECISION_KEYS,
        )
        gateway = CountingGateway(settings)
        async with helpers.serve_both(settings, gateway=gateway) as api:
            created = await api.http.post("/tickets", json=helpers.submission())
            assert created.status_code == 202, created.text  # connected; no worker: it waits
            ticket_id = created.json()["ticket_id"]

            await asyncio.to_thread(server.stop)

            # Every call answers, 503 with Retry-After, within the client's timeout.
            for response in await http_calls(api.http, helpers, ticket_id):
                assert_unavailable(response)
            await assert_grpc_unavailable(api.grpc, 0)
            assert len(lines(caplog, OPENED)) == 1

            # Open: nothing reaches Temporal any more, readiness included.
            reached = gateway.calls
            for i in range(5):
                for response in await http_calls(api.http, helpers, ticket_id):
                    assert_unavailable(response)
                await assert_grpc_unavailable(api.grpc, i)
            ready = await api.http.get("/readyz")
            assert_unavailable(ready)
            assert "not called" in ready.json()["error"]["details"][0]["reason"]
            assert gateway.calls == reached
            assert len(lines(caplog, OPENED)) == 1, "one line when it opens, not one a request"

            # Temporal comes back on the same port and file: after the cool-down, the next call
            # probes, the circuit closes and the call goes through.
            await asyncio.to_thread(server.start)

            async def submitted() -> bool:
                response = await api.http.post("/tickets", json=helpers.submission())
                assert response.status_code == 202, response.text
                return True

            await eventually_async(submitted, what="POST /tickets accepted again")
            assert (await api.http.get("/readyz")).status_code == 200
            assert gateway.calls > reached
    assert len(lines(caplog, OPENED)) == 1
    assert len(lines(caplog, CLOSED)) == 1


@pytest.mark.timeout(120)  # a dev-server start on a file-backed db and the api as a process
async def test_the_api_process_answers_clients_with_a_5s_timeout_during_an_outage(
    helpers, tmp_path: Path
) -> None:
    """The real process over real sockets: the HTTP and gRPC clients' own 5 s timeouts are the
    bound, so a call that took longer fails here as `httpx.ReadTimeout` / DEADLINE_EXCEEDED."""
    async with dev_server(tmp_path) as server:
        env = {
            "temporal_address": server.address,
            "core_queue": f"api-outage-{uuid.uuid4().hex}",
            "approver_tokens": f"alice:{helpers.APPROVERS['alice']}",
            "decision_keys": TEST_DECISION_KEYS,
            "projection_address": f"127.0.0.1:{free_port()}",  # nothing listens
        }
        async with (
            helpers.api_process(**env) as (_, base_url, grpc_address),
            httpx.AsyncClient(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as http,
            grpc.aio.insecure_channel(grpc_address) as channel,
        ):
            stub = ticket_pb2_grpc.TicketServiceStub(channel)
            created = await http.post("/tickets", json=helpers.submission(ticket_id=None))
            assert created.status_code == 202, created.text
            ticket_id = created.json()["ticket_id"]

            await asyncio.to_thread(server.stop)

            for i in range(3):
                assert_unavailable(
                    await http.post("/tickets", json=helpers.submission(ticket_id=None))
                )
                assert_unavailable(
                    await http.get("/tickets", params={"status": "WAITING_APPROVAL"})
                )
                assert_unavailable(
                    await http.post(
                        f"/tickets/{ticket_id}/decision",
                        json={"approved": True},
                        headers=helpers.bearer(),
                    )
                )
                await assert_grpc_unavailable(stub, i)
