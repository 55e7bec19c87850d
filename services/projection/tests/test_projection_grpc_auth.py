"""The read-model token: with `TICKETFLOW_READMODEL_TOKEN` set, every ReadModelService call needs
`authorization: Bearer <token>` metadata (UNAUTHENTICATED otherwise); health and reflection stay
open. Issue 8: `ListOutcomes` returned customer ids, ticket bodies and approver names to any
caller on the host."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import ValidationError
from ticketflow import testkit
from ticketflow.projection.grpc_api import ReadApiServer
from ticketflow.projection.settings import Settings
from ticketflow.projection.store import ReadModelStore
from ticketflow.runtime.settings import settings_problems
from ticketflow.v1 import readmodel_pb2, readmodel_pb2_grpc

TOKEN = "rm-token-0123456789abcdef"


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
async def guarded(store: ReadModelStore) -> AsyncIterator[grpc.aio.Channel]:
    store.record(testkit.outcome("t-1"), run_id="run-1")
    server = ReadApiServer(store, "127.0.0.1:0", token=TOKEN)
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel
    finally:
        await channel.close()
        await server.stop(0)


CALLS = [
    ("GetOutcome", readmodel_pb2.GetOutcomeRequest(ticket_id="t-1")),
    ("ListOutcomes", readmodel_pb2.ListOutcomesRequest()),
]


@pytest.mark.parametrize(("method", "request_"), CALLS, ids=[m for m, _ in CALLS])
@pytest.mark.parametrize(
    "metadata",
    [
        None,
        bearer("wrong-token"),
        bearer(""),
        (("authorization", TOKEN),),  # no scheme
        (("authorization", f"Basic {TOKEN}"),),
        bearer(TOKEN + "x"),
    ],
    ids=["none", "wrong", "empty", "no-scheme", "basic", "longer"],
)
async def test_every_read_without_the_token_is_unauthenticated(
    guarded: grpc.aio.Channel, method: str, request_, metadata, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stub = readmodel_pb2_grpc.ReadModelServiceStub(guarded)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await getattr(stub, method)(request_, metadata=metadata)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    details = info.value.details() or ""
    assert "TICKETFLOW_READMODEL_TOKEN" in details and "authorization" in details
    assert TOKEN not in details
    assert not any(TOKEN in r.getMessage() for r in caplog.records)


async def test_the_token_opens_every_read(guarded: grpc.aio.Channel) -> None:
    stub = readmodel_pb2_grpc.ReadModelServiceStub(guarded)
    got = await stub.GetOutcome(
        readmodel_pb2.GetOutcomeRequest(ticket_id="t-1"), metadata=bearer(TOKEN)
    )
    assert got.outcome.ticket_id == "t-1"
    listed = await stub.ListOutcomes(readmodel_pb2.ListOutcomesRequest(), metadata=bearer(TOKEN))
    assert [o.ticket_id for o in listed.outcomes] == ["t-1"]
    # The scheme is case-insensitive (RFC 7235).
    got = await stub.GetOutcome(
        readmodel_pb2.GetOutcomeRequest(ticket_id="t-1"),
        metadata=(("authorization", f"bearer {TOKEN}"),),
    )
    assert got.outcome.ticket_id == "t-1"


async def test_a_malformed_request_without_the_token_is_unauthenticated(
    guarded: grpc.aio.Channel,
) -> None:
    """Authentication comes before parsing: a stranger learns nothing from the parser."""
    call = guarded.unary_unary(
        "/ticketflow.v1.ReadModelService/GetOutcome",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(b"\xff\xff\xff")
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_health_needs_no_token(guarded: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(guarded)
    for service in ("", "ticketflow.v1.ReadModelService"):
        resp = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING


async def test_without_a_token_configured_reads_stay_open(read_api, store: ReadModelStore) -> None:
    store.record(testkit.outcome("t-open"), run_id="run-1")
    got = await read_api.stub.GetOutcome(readmodel_pb2.GetOutcomeRequest(ticket_id="t-open"))
    assert got.outcome.ticket_id == "t-open"


def test_settings_read_the_token_and_never_show_it(monkeypatch) -> None:
    monkeypatch.setenv("TICKETFLOW_READMODEL_TOKEN", TOKEN)
    settings = Settings()
    assert settings.readmodel_token.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings)
    assert settings.projection_address == "127.0.0.1:50052"  # loopback unless told otherwise


@pytest.mark.parametrize("bad", ["has space", "short", "tab\there-0123456789"])
def test_a_bad_token_is_refused_naming_the_variable(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(readmodel_token=bad)
    (problem,) = settings_problems(info.value)
    assert problem.startswith("TICKETFLOW_READMODEL_TOKEN: "), problem
    assert bad not in problem
