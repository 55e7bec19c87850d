"""gRPC ListTickets and DecideTicket (issue 12): HTTP's rules, errors and idempotency, on the same
service layer; a ticket decided over one transport is decided for the other."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from ticketflow.api.grpc_server import ERROR_CODE_KEY
from ticketflow.contracts import names
from ticketflow.testkit import eventually_async
from ticketflow.v1 import ticket_pb2

Code = grpc.StatusCode
WAITING = ticket_pb2.TICKET_STATUS_WAITING_APPROVAL


def token_of(helpers: Any, name: str = "alice") -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {helpers.APPROVERS[name]}"),)


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def error_code(err: grpc.aio.AioRpcError) -> str | None:
    return dict(err.trailing_metadata() or ()).get(ERROR_CODE_KEY)  # type: ignore[arg-type]


@pytest.fixture
async def both(settings, fake_worker: None, helpers: Any) -> AsyncIterator[Any]:
    async with helpers.serve_both(settings) as both:
        yield both


async def waiting_ticket(both: Any, helpers: Any, **overrides: Any) -> str:
    body = helpers.submission(**overrides)
    assert (await both.http.post("/tickets", json=body)).status_code == 202

    async def waiting() -> bool:
        got = await both.grpc.GetTicket(ticket_pb2.GetTicketRequest(ticket_id=body["ticket_id"]))
        assert got.status == WAITING, got
        return True

    await eventually_async(waiting, what="the ticket waiting for approval")
    return str(body["ticket_id"])


def decide(ticket_id: str, approved: bool = True, reason: str | None = "ok") -> Any:
    request = ticket_pb2.DecideTicketRequest(ticket_id=ticket_id, approved=approved)
    if reason is not None:
        request.reason = reason
    return request


# -- ListTickets -----------------------------------------------------------------------------------


async def test_grpc_list_tickets_is_the_http_list(both, helpers) -> None:
    first = await waiting_ticket(both, helpers)
    second = await waiting_ticket(both, helpers)

    async def listed() -> ticket_pb2.ListTicketsResponse:
        page = await both.grpc.ListTickets(ticket_pb2.ListTicketsRequest(status=WAITING, limit=200))
        ids = [t.ticket_id for t in page.tickets]
        assert first in ids and second in ids, ids
        return page

    page = await eventually_async(listed)
    ids = [t.ticket_id for t in page.tickets]
    assert ids.index(first) < ids.index(second)  # the approval queue: oldest first
    row = next(t for t in page.tickets if t.ticket_id == first)
    assert row.workflow_id == names.workflow_id(first)
    assert row.status == WAITING and row.workflow_status == "RUNNING"
    assert row.started_at.seconds > 0 and not row.HasField("closed_at")
    assert page.total >= 2

    http = (
        await both.http.get("/tickets", params={"status": "WAITING_APPROVAL", "limit": 200})
    ).json()
    assert [t["ticket_id"] for t in http["tickets"]] == ids
    assert http["total"] == page.total


async def test_grpc_list_tickets_pages_with_the_page_token(both, helpers) -> None:
    mine = {await waiting_ticket(both, helpers) for _ in range(3)}

    async def all_listed() -> bool:
        page = await both.grpc.ListTickets(ticket_pb2.ListTicketsRequest(status=WAITING))
        assert mine <= {t.ticket_id for t in page.tickets}
        return True

    await eventually_async(all_listed)
    seen: list[str] = []
    request = ticket_pb2.ListTicketsRequest(status=WAITING, limit=1)
    while True:
        page = await both.grpc.ListTickets(request)
        assert len(page.tickets) <= 1
        seen.extend(t.ticket_id for t in page.tickets)
        if not page.HasField("next_page_token"):
            break
        request = ticket_pb2.ListTicketsRequest(
            status=WAITING, limit=1, page_token=page.next_page_token
        )
    assert mine <= set(seen) and len(seen) == len(set(seen))


@pytest.mark.parametrize(
    ("request_fields", "needle", "code"),
    [
        ({"limit": 0}, "limit", "validation_error"),
        ({"limit": 201}, "limit", "validation_error"),
        ({"status": 99}, "status", "validation_error"),
        ({"page_token": ""}, "page_token", "validation_error"),
        ({"page_token": "not-a-token"}, "page_token", "invalid_page_token"),
    ],
)
async def test_grpc_list_tickets_bad_input_is_invalid_argument(
    both, request_fields: dict[str, Any], needle: str, code: str
) -> None:
    err = await rpc_error(both.grpc.ListTickets(ticket_pb2.ListTicketsRequest(**request_fields)))
    assert err.code() == Code.INVALID_ARGUMENT, err
    assert needle in (err.details() or "")
    assert error_code(err) == code


# -- DecideTicket ----------------------------------------------------------------------------------


async def test_grpc_decide_records_the_token_owner_and_is_idempotent(both, helpers) -> None:
    ticket_id = await waiting_ticket(both, helpers)
    first = await both.grpc.DecideTicket(
        decide(ticket_id, reason="loyal customer"), metadata=token_of(helpers, "bob")
    )
    assert first.ticket_id == ticket_id
    assert first.decision.approver == "bob" and first.decision.approved
    assert first.decision.reason == "loyal customer"

    # The answer was lost: the same request again is the same decision, applied once.
    again = await both.grpc.DecideTicket(
        decide(ticket_id, reason="loyal customer"), metadata=token_of(helpers, "bob")
    )
    assert again == first

    # Another approver, or other content, meets the validator: FAILED_PRECONDITION, HTTP's 409.
    for request, who in (
        (decide(ticket_id, reason="loyal customer"), "alice"),
        (decide(ticket_id, approved=False), "bob"),
    ):
        err = await rpc_error(both.grpc.DecideTicket(request, metadata=token_of(helpers, who)))
        assert err.code() == Code.FAILED_PRECONDITION, err
        assert error_code(err) == "decision_rejected"

    view = (await both.http.get(f"/tickets/{ticket_id}")).json()
    assert view["decision"]["approver"] == "bob"


async def test_grpc_and_http_decisions_are_one_decision(both, helpers) -> None:
    ticket_id = await waiting_ticket(both, helpers)
    http = await both.http.post(
        f"/tickets/{ticket_id}/decision",
        json={"approved": True, "reason": "ok"},
        headers=helpers.bearer("alice"),
    )
    assert http.status_code == 200, http.text
    # The same decision over gRPC is the HTTP one, not a second.
    again = await both.grpc.DecideTicket(decide(ticket_id), metadata=token_of(helpers))
    assert again.decision.approver == "alice"
    assert again.decision.decided_at.ToJsonString().startswith(
        http.json()["decision"]["decided_at"][:19]
    )


async def test_grpc_rejection_without_a_reason(both, helpers) -> None:
    ticket_id = await waiting_ticket(both, helpers)
    answer = await both.grpc.DecideTicket(
        decide(ticket_id, approved=False, reason=None), metadata=token_of(helpers)
    )
    assert answer.decision.approved is False and not answer.decision.HasField("reason")


@pytest.mark.parametrize(
    "metadata",
    [None, (("authorization", "Bearer wrong-token"),), (("authorization", "alice-token"),)],
    ids=["missing", "wrong", "no-scheme"],
)
async def test_grpc_decide_needs_an_approver_token(both, helpers, metadata: Any) -> None:
    ticket_id = await waiting_ticket(both, helpers)
    err = await rpc_error(both.grpc.DecideTicket(decide(ticket_id), metadata=metadata))
    assert err.code() == Code.UNAUTHENTICATED, err
    assert "bearer token" in (err.details() or "")
    assert error_code(err) == "unauthorized"
    view = (await both.http.get(f"/tickets/{ticket_id}")).json()
    assert view["status"] == "WAITING_APPROVAL" and view["decision"] is None


async def test_grpc_decide_on_a_ticket_not_waiting_or_closed(both, helpers, dev_env) -> None:
    held = helpers.submission(subject=f"Wait {helpers.HOLD}")
    assert (await both.http.post("/tickets", json=held)).status_code == 202
    err = await rpc_error(
        both.grpc.DecideTicket(decide(held["ticket_id"]), metadata=token_of(helpers))
    )
    assert err.code() == Code.FAILED_PRECONDITION and error_code(err) == "decision_rejected"

    closed = await waiting_ticket(both, helpers)
    handle = dev_env.client.get_workflow_handle(names.workflow_id(closed))
    await handle.signal(helpers.FINISH_SIGNAL)
    await handle.result()
    err = await rpc_error(both.grpc.DecideTicket(decide(closed), metadata=token_of(helpers)))
    assert err.code() == Code.FAILED_PRECONDITION, err
    assert "closed" in (err.details() or "")


@pytest.mark.parametrize(
    ("ticket_id", "reason", "code", "grpc_code"),
    [
        (f"nope-{uuid.uuid4().hex}", "ok", "ticket_not_found", Code.NOT_FOUND),
        ("bad id!", "ok", "validation_error", Code.INVALID_ARGUMENT),
        ("", "ok", "validation_error", Code.INVALID_ARGUMENT),
        ("t-1", "nul\x00", "validation_error", Code.INVALID_ARGUMENT),
        ("t-1", "x" * 5000, "validation_error", Code.INVALID_ARGUMENT),
    ],
    ids=["unknown", "bad-id", "empty-id", "nul-reason", "long-reason"],
)
async def test_grpc_decide_bad_input(
    both, helpers, ticket_id: str, reason: str, code: str, grpc_code: Code
) -> None:
    err = await rpc_error(
        both.grpc.DecideTicket(decide(ticket_id, reason=reason), metadata=token_of(helpers))
    )
    assert err.code() == grpc_code, err
    assert error_code(err) == code
    assert err.details()


async def test_grpc_list_tickets_needs_a_reader_token_when_viewer_tokens_are_set(
    settings, fake_worker: None, helpers
) -> None:
    fields = {name: getattr(settings, name) for name in settings.model_fields_set}
    guarded = type(settings)(**{**fields, "viewer_tokens": "vera:vera-viewer-token-0123456789"})
    async with helpers.serve_both(guarded) as both:
        request = ticket_pb2.ListTicketsRequest(status=WAITING)
        for metadata in (None, (("authorization", "Bearer wrong"),)):
            err = await rpc_error(both.grpc.ListTickets(request, metadata=metadata))
            assert err.code() == Code.UNAUTHENTICATED and error_code(err) == "unauthorized"
        viewer = (("authorization", "Bearer vera-viewer-token-0123456789"),)
        await both.grpc.ListTickets(request, metadata=viewer)
        await both.grpc.ListTickets(request, metadata=token_of(helpers))
        # A viewer reads the queue but cannot decide.
        err = await rpc_error(both.grpc.DecideTicket(decide("t-1"), metadata=viewer))
        assert err.code() == Code.UNAUTHENTICATED
