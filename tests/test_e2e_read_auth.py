"""Guarded reads across real processes (issue 8): with a viewer token and a read-model token set,
the api reads through the projection (sending the read-model token), a reader without a token is
refused by the api, and a direct call to the projection without the read-model token is refused."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from ticketflow.v1 import readmodel_pb2, readmodel_pb2_grpc, ticket_pb2, ticket_pb2_grpc

from .harness import TOKENS, eventually, submit

# A whole stack; then a ticket must finish and the core worker stop before the read model answers.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

VIEWER = "viewer-token-0123456789abcdef"
READMODEL = "readmodel-token-0123456789abcdef"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def projection_get(address: str, ticket_id: str, token: str | None) -> grpc.StatusCode:
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    async with grpc.aio.insecure_channel(address) as channel:
        stub = readmodel_pb2_grpc.ReadModelServiceStub(channel)
        try:
            await stub.GetOutcome(
                readmodel_pb2.GetOutcomeRequest(ticket_id=ticket_id), metadata=metadata, timeout=10
            )
            await stub.ListOutcomes(readmodel_pb2.ListOutcomesRequest(), metadata=metadata)
        except grpc.aio.AioRpcError as err:
            return err.code()
        return grpc.StatusCode.OK


async def api_get(address: str, ticket_id: str, token: str | None) -> grpc.StatusCode | int:
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    async with grpc.aio.insecure_channel(address) as channel:
        stub = ticket_pb2_grpc.TicketServiceStub(channel)
        try:
            got = await stub.GetTicket(
                ticket_pb2.GetTicketRequest(ticket_id=ticket_id), metadata=metadata, timeout=30
            )
        except grpc.aio.AioRpcError as err:
            return err.code()
        return int(got.source)


def test_api_reads_through_the_guarded_projection_and_strangers_are_refused(
    stack_factory,
) -> None:
    # Every process gets both; only the api reads the viewer tokens, the api and the projection
    # the read-model token.
    stack = stack_factory(
        TICKETFLOW_VIEWER_TOKENS=f"desk:{VIEWER}", TICKETFLOW_READMODEL_TOKEN=READMODEL
    )
    stack.start_all()
    api = stack.start_api()

    # Intake needs no token; reading it back does.
    tid = submit(api, subject="Cannot login", body="password")["ticket_id"]
    assert api.get(f"/tickets/{tid}").status_code == 401
    assert api.get("/tickets").status_code == 401

    def resolved() -> dict | None:
        r = api.get(f"/tickets/{tid}", headers=auth(VIEWER))
        assert r.status_code == 200, r.text
        body = r.json()
        return body if body["status"] == "RESOLVED" and body["side_effects_done"] else None

    live = eventually(resolved, what=f"ticket {tid} resolved")
    assert live["source"] == "live"

    # No core worker: only the read model can answer, through the token the api sends.
    stack.stop("ticketflow-core-worker")

    def from_read_model(token: str) -> dict | None:
        r = api.get(f"/tickets/{tid}", headers=auth(token))
        assert r.status_code == 200, r.text
        return r.json() if r.json()["source"] == "read_model" else None

    for token in (VIEWER, TOKENS["alice"]):
        recorded = eventually(lambda t=token: from_read_model(t), what="a read-model answer")
        assert recorded["ticket"]["customer_id"] == "cust-1"
        assert recorded["status"] == "RESOLVED"
    assert api.get(f"/tickets/{tid}").status_code == 401

    grpc_api = f"127.0.0.1:{stack.grpc_port}"
    assert asyncio.run(api_get(grpc_api, tid, VIEWER)) == ticket_pb2.SOURCE_READ_MODEL
    assert asyncio.run(api_get(grpc_api, tid, None)) == grpc.StatusCode.UNAUTHENTICATED

    # The projection itself: refused without the read-model token, even with a viewer token.
    projection = f"127.0.0.1:{stack.projection_port}"
    assert asyncio.run(projection_get(projection, tid, None)) == grpc.StatusCode.UNAUTHENTICATED
    assert asyncio.run(projection_get(projection, tid, VIEWER)) == grpc.StatusCode.UNAUTHENTICATED
    assert asyncio.run(projection_get(projection, tid, READMODEL)) == grpc.StatusCode.OK

    # No process wrote a token into its log.
    for log in stack.logs.glob("*.log"):
        text = log.read_text(errors="replace")
        for secret in (VIEWER, READMODEL, TOKENS["alice"]):
            assert secret not in text, log.name
