"""Reads need a token once viewer tokens are configured (issue 8: reads returned customer ids,
ticket bodies and approver names to anyone on the host).

With `TICKETFLOW_VIEWER_TOKENS` set, GET /tickets, GET /tickets/{id} and gRPC GetTicket need a
viewer's or an approver's bearer token; without it reads stay open (the dev default) and the api
says so once at start. Intake (POST /tickets, SubmitTicket) and the probes stay open either way.
The read-model token (`TICKETFLOW_READMODEL_TOKEN`) is what the api sends to the projection.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from pydantic import ValidationError
from ticketflow.api import Settings, create_app
from ticketflow.api.read_model_client import GrpcReadModelClient
from ticketflow.runtime.settings import settings_problems
from ticketflow.testkit import eventually_async
from ticketflow.v1 import ticket_pb2

Code = grpc.StatusCode
VIEWERS = {"vera": "vera-viewer-token-0123456789", "otto": "otto-viewer-token-9876543210"}
VIEWER_TOKENS = ",".join(f"{n}:{t}" for n, t in VIEWERS.items())


def with_settings(settings: Settings, **changes: Any) -> Settings:
    """The session's settings with `changes`, validated again (derived fields included)."""
    fields = {name: getattr(settings, name) for name in settings.model_fields_set}
    return Settings(**{**fields, **changes})


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def grpc_auth(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
def guarded(settings: Settings) -> Settings:
    return with_settings(settings, viewer_tokens=VIEWER_TOKENS)


@pytest.fixture
async def both(guarded: Settings, fake_worker: None, helpers: Any) -> AsyncIterator[Any]:
    async with helpers.serve_both(guarded) as both:
        yield both


async def submitted(both: Any, helpers: Any) -> str:
    """A ticket submitted without any token (intake stays open), known to Temporal."""
    body = helpers.submission()
    r = await both.http.post("/tickets", json=body)
    assert r.status_code == 202, r.text
    return str(body["ticket_id"])


# -- HTTP ------------------------------------------------------------------------------------------


async def test_reads_without_a_token_are_401_when_viewer_tokens_are_set(both, helpers) -> None:
    ticket_id = await submitted(both, helpers)
    for path in (f"/tickets/{ticket_id}", "/tickets?status=WAITING_APPROVAL"):
        r = await both.http.get(path)
        assert r.status_code == 401, (path, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
        error = r.json()["error"]
        assert error["code"] == "unauthorized"
        assert "Authorization: Bearer" in error["message"]
        assert "viewer" in error["message"]
        # No ticket data in a refused answer.
        assert ticket_id not in r.text and "cust-1" not in r.text
    # The token is checked first: a stranger learns nothing from the validation of the rest.
    for path in ("/tickets?limit=100000", "/tickets/not%20an%20id", "/tickets?page_token=x"):
        r = await both.http.get(path)
        assert r.status_code == 401, (path, r.text)


# "alice" is an approver's name, not a token.
@pytest.mark.parametrize("token", ["wrong-token", "", "alice"])
async def test_reads_with_a_wrong_token_are_401(both, helpers, token: str) -> None:
    ticket_id = await submitted(both, helpers)
    for path in (f"/tickets/{ticket_id}", "/tickets"):
        r = await both.http.get(path, headers=auth(token))
        assert r.status_code == 401, (path, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
    # A scheme other than Bearer is no token either.
    r = await both.http.get("/tickets", headers={"Authorization": f"Basic {VIEWERS['vera']}"})
    assert r.status_code == 401


async def test_viewer_and_approver_tokens_both_read(both, helpers) -> None:
    ticket_id = await submitted(both, helpers)
    tokens = [VIEWERS["vera"], VIEWERS["otto"], helpers.APPROVERS["alice"]]
    for token in tokens:
        r = await both.http.get(f"/tickets/{ticket_id}", headers=auth(token))
        assert r.status_code == 200, r.text
        assert r.json()["ticket"]["customer_id"] == "cust-1"

    # The approval queue is a read too; approvers must see it.
    async def queued() -> bool:
        for token in tokens:
            r = await both.http.get(
                "/tickets", params={"status": "WAITING_APPROVAL", "limit": 200}, headers=auth(token)
            )
            assert r.status_code == 200, r.text
            assert ticket_id in [t["ticket_id"] for t in r.json()["tickets"]]
        return True

    await eventually_async(queued, what="the ticket in the approval queue")


async def test_a_viewer_token_cannot_decide(both, helpers) -> None:
    ticket_id = await submitted(both, helpers)
    r = await both.http.post(
        f"/tickets/{ticket_id}/decision",
        json={"approved": True},
        headers=auth(VIEWERS["vera"]),
    )
    assert r.status_code == 401, r.text


async def test_intake_and_probes_stay_open_when_reads_are_guarded(both, helpers) -> None:
    await submitted(both, helpers)
    for path in ("/healthz", "/readyz", "/openapi.json"):
        r = await both.http.get(path)
        assert r.status_code == 200, (path, r.text)


async def test_reads_stay_open_without_viewer_tokens(
    settings: Settings, fake_worker: None, helpers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ticketflow.api")
    open_settings = with_settings(settings, viewer_tokens="")
    async with helpers.serve_both(open_settings) as both:
        ticket_id = await submitted(both, helpers)
        assert (await both.http.get(f"/tickets/{ticket_id}")).status_code == 200
        assert (await both.http.get("/tickets")).status_code == 200
        got = await both.grpc.GetTicket(ticket_pb2.GetTicketRequest(ticket_id=ticket_id))
        assert got.ticket_id == ticket_id
    said = [r.getMessage() for r in caplog.records if "reads are open" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in caplog.records]
    assert "TICKETFLOW_VIEWER_TOKENS" in said[0]


async def test_guarded_reads_are_announced_without_tokens(
    guarded: Settings, fake_worker: None, helpers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with helpers.serve_app(guarded) as http:
        assert (await http.get("/healthz")).status_code == 200
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "reads need a viewer or approver token (2 viewers, 2 approvers" in logged
    assert not any(token in logged for token in VIEWERS.values())


def test_openapi_shows_the_read_token_on_reads_only() -> None:
    doc = create_app(Settings(viewer_tokens=VIEWER_TOKENS)).openapi()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ReadToken"]["scheme"] == "bearer"
    assert "TICKETFLOW_VIEWER_TOKENS" in schemes["ReadToken"]["description"]
    paths = doc["paths"]
    for path in ("/tickets", "/tickets/{ticket_id}"):
        assert paths[path]["get"]["security"] == [{"ReadToken": []}], path
        assert "401" in paths[path]["get"]["responses"], path
    assert paths["/tickets/{ticket_id}/decision"]["post"]["security"] == [{"ApproverToken": []}]
    for path, method in (("/tickets", "post"), ("/healthz", "get"), ("/readyz", "get")):
        assert "security" not in paths[path][method], (path, method)


# -- gRPC ------------------------------------------------------------------------------------------


async def test_grpc_get_ticket_needs_a_token_when_viewer_tokens_are_set(both, helpers) -> None:
    request = ticket_pb2.SubmitTicketRequest(
        ticket_id="g-read-auth-" + helpers.submission()["ticket_id"][2:18],
        customer_id="cust-1",
        subject="Refund",
        body="Please refund.",
    )
    assert (await both.grpc.SubmitTicket(request)).created is True  # intake: no token needed
    get = ticket_pb2.GetTicketRequest(ticket_id=request.ticket_id)

    for metadata in (None, grpc_auth("wrong-token"), (("authorization", VIEWERS["vera"]),)):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await both.grpc.GetTicket(get, metadata=metadata)
        assert info.value.code() == Code.UNAUTHENTICATED, info.value
        details = info.value.details() or ""
        assert "bearer token" in details
        if "missing" in details:
            assert "metadata 'authorization: Bearer <token>'" in details
        assert dict(info.value.trailing_metadata() or ())["ticketflow-error-code"] == "unauthorized"

    for token in (VIEWERS["otto"], helpers.APPROVERS["bob"]):
        got = await both.grpc.GetTicket(get, metadata=grpc_auth(token))
        assert got.ticket_id == request.ticket_id
        assert got.ticket.customer_id == "cust-1"


# -- the read-model token ----------------------------------------------------------------------


async def test_the_read_model_client_sends_the_read_model_token(helpers) -> None:
    async with helpers.fake_read_model() as (address, servicer):
        client = GrpcReadModelClient(address, timeout_s=5.0, token="rm-token-0123456789abcdef")
        try:
            assert await client.get_outcome("nobody") is None
        finally:
            await client.aclose()
        assert servicer.metadata[-1]["authorization"] == "Bearer rm-token-0123456789abcdef"

        tokenless = GrpcReadModelClient(address, timeout_s=5.0)
        try:
            assert await tokenless.get_outcome("nobody") is None
        finally:
            await tokenless.aclose()
        assert "authorization" not in servicer.metadata[-1]


def test_settings_read_the_viewer_and_read_model_tokens(monkeypatch) -> None:
    monkeypatch.setenv("TICKETFLOW_VIEWER_TOKENS", VIEWER_TOKENS)
    monkeypatch.setenv("TICKETFLOW_READMODEL_TOKEN", "rm-token-0123456789abcdef")
    settings = Settings()
    assert [v.name for v in settings.viewers] == ["vera", "otto"]
    assert settings.readmodel_token.get_secret_value() == "rm-token-0123456789abcdef"
    assert "vera-viewer-token" not in repr(settings)
    assert "rm-token" not in repr(settings)


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("vera", "not of the form name:token"),
        ("vera:a,vera:b", "appears twice"),
        ("vera:a b", "whitespace"),
    ],
)
def test_bad_viewer_tokens_name_the_variable(raw: str, needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(viewer_tokens=raw)
    (message,) = settings_problems(info.value)
    assert "TICKETFLOW_VIEWER_TOKENS" in message and needle in message
    assert "a b" not in message
