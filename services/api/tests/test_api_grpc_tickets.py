"""gRPC `ticketflow.v1.TicketService` over a real loopback channel, on the same service layer as HTTP."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from ticketflow.api import Settings
from ticketflow.api.grpc_server import ERROR_CODE_KEY, TICKET_SERVICE
from ticketflow.contracts import names
from ticketflow.testkit import eventually_async, free_port
from ticketflow.v1 import ticket_pb2

Code = grpc.StatusCode


def submit_request(**overrides: Any) -> ticket_pb2.SubmitTicketRequest:
    """A valid request; an override of None leaves that (optional) field unset."""
    fields: dict[str, Any] = {
        "ticket_id": f"g-{uuid.uuid4().hex}",
        "customer_id": "cust-1",
        "subject": "Refund for a broken kettle",
        "body": "It arrived broken. Please refund.",
        "order_id": "order-1",
        "requested_refund_cents": 2599,
    }
    fields.update(overrides)
    return ticket_pb2.SubmitTicketRequest(**{k: v for k, v in fields.items() if v is not None})


def as_json(request: ticket_pb2.SubmitTicketRequest) -> dict[str, Any]:
    """The same submission for POST /tickets (unset optional fields stay absent)."""
    out: dict[str, Any] = {}
    for field in request.DESCRIPTOR.fields:
        if field.has_presence and not request.HasField(field.name):
            continue
        out[field.name] = getattr(request, field.name)
    return out


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def error_code(err: grpc.aio.AioRpcError) -> str | None:
    return dict(err.trailing_metadata() or ()).get(ERROR_CODE_KEY)  # type: ignore[arg-type]


@pytest.fixture
async def both(settings: Settings, fake_worker: None, helpers: Any) -> AsyncIterator[Any]:
    async with helpers.serve_both(settings) as both:
        yield both


async def test_grpc_submit_then_get_live(both, helpers) -> None:
    request = submit_request()
    answer = await both.grpc.SubmitTicket(request)
    assert answer.ticket_id == request.ticket_id
    assert answer.workflow_id == names.workflow_id(request.ticket_id)
    assert answer.status == ticket_pb2.TICKET_STATUS_RECEIVED
    assert answer.created is True

    async def waiting() -> ticket_pb2.GetTicketResponse:
        got = await both.grpc.GetTicket(ticket_pb2.GetTicketRequest(ticket_id=request.ticket_id))
        assert got.status == ticket_pb2.TICKET_STATUS_WAITING_APPROVAL, got
        return got

    got = await eventually_async(waiting)
    assert got.source == ticket_pb2.SOURCE_LIVE
    assert got.ticket_id == request.ticket_id
    assert got.ticket.subject == request.subject
    assert (
        got.ticket.HasField("requested_refund_cents") and got.ticket.requested_refund_cents == 2599
    )
    assert got.classification.category == ticket_pb2.CATEGORY_REFUND
    assert got.accepting_decisions is True and got.side_effects_done is False
    assert [h.status for h in got.history] == [ticket_pb2.TICKET_STATUS_WAITING_APPROVAL]
    assert not got.HasField("outcome")


async def test_grpc_submit_without_ticket_id_generates_one(both) -> None:
    request = submit_request(ticket_id=None)
    one, two = await both.grpc.SubmitTicket(request), await both.grpc.SubmitTicket(request)
    assert re.fullmatch(r"[0-9a-f]{32}", one.ticket_id)
    assert one.ticket_id != two.ticket_id
    assert one.created and two.created


async def test_grpc_same_content_is_the_same_ticket_and_other_content_already_exists(both) -> None:
    request = submit_request()
    assert (await both.grpc.SubmitTicket(request)).created is True
    again = await both.grpc.SubmitTicket(request)
    assert again.created is False and again.ticket_id == request.ticket_id
    assert again.status != ticket_pb2.TICKET_STATUS_UNSPECIFIED

    other = submit_request(ticket_id=request.ticket_id, body="Something else entirely.")
    err = await rpc_error(both.grpc.SubmitTicket(other))
    assert err.code() == Code.ALREADY_EXISTS
    assert request.ticket_id in (err.details() or "")
    assert await error_code(err) == "ticket_conflict"


async def test_grpc_and_http_submissions_of_one_ticket_id_are_one_ticket(both) -> None:
    via_grpc = submit_request()
    assert (await both.grpc.SubmitTicket(via_grpc)).created is True
    http = await both.http.post("/tickets", json=as_json(via_grpc))
    assert http.status_code == 200, http.text
    assert http.json()["workflow_id"] == names.workflow_id(via_grpc.ticket_id)

    via_http = submit_request(order_id=None, requested_refund_cents=None)
    assert (await both.http.post("/tickets", json=as_json(via_http))).status_code == 202
    assert (await both.grpc.SubmitTicket(via_http)).created is False
    # Presence counts: an explicit refund of 0 cents is other content than "no refund".
    zero = submit_request(ticket_id=via_http.ticket_id, order_id=None, requested_refund_cents=0)
    err = await rpc_error(both.grpc.SubmitTicket(zero))
    assert err.code() == Code.ALREADY_EXISTS
    conflict = await both.http.post("/tickets", json=as_json(zero))
    assert conflict.status_code == 409


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"ticket_id": ""}, "ticket_id"),
        ({"ticket_id": "has space"}, "ticket_id"),
        ({"ticket_id": "x" * 65}, "ticket_id"),
        ({"customer_id": ""}, "customer_id"),
        ({"subject": ""}, "subject"),
        ({"subject": "   "}, "subject"),
        ({"body": ""}, "body"),
        ({"body": "b" * 10_001}, "body"),
        ({"order_id": ""}, "order_id"),
        ({"subject": "a\x00b"}, "subject"),
        ({"body": "\x00"}, "body"),
        ({"customer_id": "c\x00"}, "customer_id"),
        ({"requested_refund_cents": -1}, "requested_refund_cents"),
        ({"requested_refund_cents": 100_000_001}, "requested_refund_cents"),
    ],
)
async def test_grpc_invalid_submission_names_the_field(
    both, overrides: dict[str, Any], field: str
) -> None:
    request = submit_request(**overrides)
    err = await rpc_error(both.grpc.SubmitTicket(request))
    assert err.code() == Code.INVALID_ARGUMENT, err
    assert f"{field}:" in (err.details() or ""), err.details()
    assert await error_code(err) == "validation_error"
    # The HTTP API refuses the same submission for the same field.
    http = await both.http.post("/tickets", json=as_json(request))
    assert http.status_code == 422
    assert ["body", field] in [d["loc"] for d in http.json()["error"]["details"]]


async def test_grpc_every_problem_is_named(both) -> None:
    err = await rpc_error(
        both.grpc.SubmitTicket(ticket_pb2.SubmitTicketRequest(requested_refund_cents=-5))
    )
    assert err.code() == Code.INVALID_ARGUMENT
    for field in ("customer_id", "subject", "body", "requested_refund_cents"):
        assert field in (err.details() or "")


async def test_grpc_oversized_message_is_refused(both, settings: Settings) -> None:
    err = await rpc_error(
        both.grpc.SubmitTicket(submit_request(body="b" * (settings.max_body_bytes + 1)))
    )
    assert err.code() == Code.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("ticket_id", ["", "a/b", "x" * 65])
async def test_grpc_get_with_an_invalid_ticket_id(both, ticket_id: str) -> None:
    err = await rpc_error(both.grpc.GetTicket(ticket_pb2.GetTicketRequest(ticket_id=ticket_id)))
    assert err.code() == Code.INVALID_ARGUMENT
    assert "ticket_id:" in (err.details() or "")


async def test_grpc_get_unknown_is_not_found(both) -> None:
    ticket_id = f"nope-{uuid.uuid4().hex}"
    err = await rpc_error(both.grpc.GetTicket(ticket_pb2.GetTicketRequest(ticket_id=ticket_id)))
    assert err.code() == Code.NOT_FOUND
    assert ticket_id in (err.details() or "")
    assert await error_code(err) == "ticket_not_found"


async def test_grpc_temporal_down_is_unavailable_and_not_serving(helpers) -> None:
    port = free_port()
    down = Settings(temporal_address=f"127.0.0.1:{port}", health_timeout_s=0.5)
    async with helpers.serve_both(down) as both:
        for call in (
            both.grpc.SubmitTicket(submit_request()),
            both.grpc.GetTicket(ticket_pb2.GetTicketRequest(ticket_id="some-ticket")),
        ):
            err = await rpc_error(call)
            assert err.code() == Code.UNAVAILABLE
            assert f"Temporal at 127.0.0.1:{port} is unreachable" in (err.details() or "")
            assert await error_code(err) == "temporal_unavailable"
        # Validation does not need Temporal.
        err = await rpc_error(both.grpc.SubmitTicket(submit_request(customer_id="")))
        assert err.code() == Code.INVALID_ARGUMENT

        from grpc_health.v1 import health_pb2, health_pb2_grpc

        health = health_pb2_grpc.HealthStub(both.channel)
        overall = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert overall.status == health_pb2.HealthCheckResponse.SERVING
        tickets = await health.Check(health_pb2.HealthCheckRequest(service=TICKET_SERVICE))
        assert tickets.status == health_pb2.HealthCheckResponse.NOT_SERVING


def raw_call(both: Any, method: str) -> Any:
    """A call that sends bytes as they are (no serializer) and returns the answer's bytes."""
    return both.channel.unary_unary(
        f"/{TICKET_SERVICE}/{method}", request_serializer=None, response_deserializer=None
    )


_GOOD = submit_request(ticket_id="raw-never-created").SerializeToString()


@pytest.mark.parametrize(
    ("method", "raw", "complaint"),
    [
        pytest.param("SubmitTicket", b"\xff\xff\xff\xff", "Wire format was corrupt", id="garbage"),
        # customer_id (field 2) of two bytes that are not UTF-8
        pytest.param("SubmitTicket", b"\x12\x02\xff\xfe" + _GOOD, "bad UTF-8", id="bad-utf8"),
        # cut inside the last varint
        pytest.param("SubmitTicket", _GOOD[:-1], "Wire format was corrupt", id="truncated"),
        pytest.param("GetTicket", b"\x0a\x03a\xffb", "bad UTF-8", id="get-bad-utf8"),
        # a length past the end
        pytest.param("GetTicket", b"\x0a\x10abc", "Wire format was corrupt", id="get-overrun"),
    ],
)
async def test_grpc_malformed_message_is_invalid_argument(
    both, method: str, raw: bytes, complaint: str
) -> None:
    err = await rpc_error(raw_call(both, method)(raw))
    assert err.code() == Code.INVALID_ARGUMENT, err
    assert "malformed request" in (err.details() or "")
    assert complaint in (err.details() or "")
    assert await error_code(err) == "bad_request"


async def test_grpc_raw_wire_bytes_are_served_like_messages(both) -> None:
    request = submit_request()
    answer = ticket_pb2.SubmitTicketResponse.FromString(
        await raw_call(both, "SubmitTicket")(request.SerializeToString())
    )
    assert answer.ticket_id == request.ticket_id and answer.created is True
    err = await rpc_error(
        raw_call(both, "GetTicket")(
            ticket_pb2.GetTicketRequest(ticket_id="nope").SerializeToString()
        )
    )
    assert err.code() == Code.NOT_FOUND
