"""The HTTP endpoints of DESIGN.md "HTTP API". Handlers only translate: the work is in `temporal`."""

from __future__ import annotations

import email.message
import logging
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Annotated, Any
from uuid import uuid4

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from ticketflow.contracts import TICKET_ID_PATTERN, DecideInput, TicketOutcome, TicketStatus

from .auth import ApproverDep
from .deps import GatewayDep, ReadModelDep, SettingsDep
from .errors import DecisionRejected, TicketNotFound, Unavailable, UnsupportedMediaType
from .readmodel import ReadModel
from .schemas import (
    DecisionAccepted,
    DecisionRequest,
    ErrorResponse,
    Health,
    Readiness,
    SubmitTicketRequest,
    TicketAccepted,
    TicketList,
    TicketView,
)

__all__ = ["MAX_LIST_LIMIT", "router"]

log = logging.getLogger(__name__)

MAX_LIST_LIMIT = 200
_VERSION = version("ticketflow-api")


def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


_INVALID = {422: _err("Invalid request: malformed JSON, wrong types, unknown fields, bad limits.")}
_BODY_ERRORS = {
    413: _err("Request body over the size limit."),
    415: _err("Content-Type is not application/json."),
    **_INVALID,
}
_LOCATION = {"Location": {"description": "/tickets/{ticket_id}", "schema": {"type": "string"}}}
_UNAVAILABLE = {503: _err("Temporal is unreachable (or no worker answered in time).")}

TicketIdPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=TICKET_ID_PATTERN,
        description="1-64 of A-Z a-z 0-9 _ -",
        examples=["order-1234-refund"],
    ),
]


async def require_json_body(request: Request) -> None:
    """415 unless the body is JSON; 422 when it is empty (FastAPI would say only "Field required")."""
    content_type = request.headers.get("content-type")
    if not content_type:
        raise UnsupportedMediaType("missing Content-Type: send application/json")
    parsed = email.message.Message()
    parsed["content-type"] = content_type
    mime = parsed.get_content_type()
    if not (
        mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))
    ):
        raise UnsupportedMediaType(f"Content-Type {mime!r} is not supported: send application/json")
    charset = parsed.get_param("charset")
    if isinstance(charset, str) and charset.lower() not in {"utf-8", "utf8"}:
        raise UnsupportedMediaType(f"charset {charset!r} is not supported: send UTF-8")
    if not (await request.body()).strip():
        raise RequestValidationError(
            [
                {
                    "type": "missing",
                    "loc": ("body",),
                    "msg": "request body is empty: send a JSON object",
                }
            ]
        )


JsonBody = Annotated[None, Depends(require_json_body)]


class ListTicketsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: TicketStatus | None = Field(None, description="Only tickets in this status.")
    limit: int = Field(50, ge=1, le=MAX_LIST_LIMIT, description="At most this many tickets.")


router = APIRouter()


@router.post(
    "/tickets",
    status_code=202,
    response_model=TicketAccepted,
    tags=["tickets"],
    summary="Submit a ticket",
    description=(
        "Starts the ticket's workflow. Idempotent on `ticket_id`: the same id with the same content "
        "answers 200 with the existing ticket, with other content 409."
    ),
    responses={
        202: {"description": "Accepted: a new ticket, its workflow started.", "headers": _LOCATION},
        200: {
            "model": TicketAccepted,
            "description": "The same ticket was submitted before.",
            "headers": _LOCATION,
        },
        409: _err("This ticket_id exists with other content."),
        **_BODY_ERRORS,
        **_UNAVAILABLE,
    },
)
async def submit_ticket(
    _json: JsonBody,
    submission: SubmitTicketRequest,
    response: Response,
    gateway: GatewayDep,
) -> TicketAccepted:
    ticket_id = submission.ticket_id or uuid4().hex
    result = await gateway.submit(submission.to_ticket(ticket_id, datetime.now(UTC)))
    if not result.created:
        response.status_code = 200
    response.headers["Location"] = f"/tickets/{ticket_id}"
    return TicketAccepted(
        ticket_id=result.ticket_id, workflow_id=result.workflow_id, status=result.status
    )


@router.get(
    "/tickets",
    response_model=TicketList,
    tags=["tickets"],
    summary="List tickets by status",
    description=(
        "From Temporal visibility (a list query on the `TicketStatus` search attribute), so it "
        "trails the live state by a moment; in visibility order (most recent first)."
    ),
    responses={200: {"description": "The matching tickets."}, **_INVALID, **_UNAVAILABLE},
)
async def list_tickets(
    query: Annotated[ListTicketsQuery, Query()], gateway: GatewayDep
) -> TicketList:
    return TicketList(tickets=await gateway.list_tickets(query.status, query.limit))


@router.get(
    "/tickets/{ticket_id}",
    response_model=TicketView,
    tags=["tickets"],
    summary="What happened to a ticket",
    description=(
        "Live from the workflow's `status` query (`source: live`); from the projection's read "
        "model when Temporal does not know the ticket or cannot answer (`source: read_model`)."
    ),
    responses={
        200: {"description": "The ticket's state."},
        404: _err("No such ticket."),
        **_INVALID,
        **_UNAVAILABLE,
    },
)
async def get_ticket(
    ticket_id: TicketIdPath, gateway: GatewayDep, read_model: ReadModelDep
) -> TicketView:
    try:
        return TicketView.from_state(await gateway.state(ticket_id))
    except (TicketNotFound, Unavailable) as live_error:
        outcome = await _recorded_outcome(read_model, ticket_id)
        if outcome is None:
            raise
        log.info("ticket %s answered from the read model (%s)", ticket_id, live_error.code)
        return TicketView.from_outcome(outcome)


@router.post(
    "/tickets/{ticket_id}/decision",
    response_model=DecisionAccepted,
    tags=["tickets"],
    summary="Approve or reject a ticket waiting for approval",
    description=(
        "Sends the workflow's `decide` update as the approver the bearer token belongs to. "
        "The workflow refuses it (409) when the ticket is not waiting, already decided, "
        "past its approval deadline, or closed."
    ),
    responses={
        200: {"description": "The decision was accepted."},
        401: _err("Missing or invalid bearer token."),
        404: _err("No such ticket."),
        409: _err("Not waiting for approval: late, duplicate, already decided, or closed."),
        **_BODY_ERRORS,
        **_UNAVAILABLE,
    },
)
async def decide_ticket(
    ticket_id: TicketIdPath,
    approver: ApproverDep,
    _json: JsonBody,
    decision: DecisionRequest,
    gateway: GatewayDep,
    read_model: ReadModelDep,
) -> DecisionAccepted:
    update = DecideInput(approved=decision.approved, approver=approver, reason=decision.reason)
    try:
        result = await gateway.decide(ticket_id, update)
    except TicketNotFound:
        if await _recorded_outcome(read_model, ticket_id) is not None:
            raise DecisionRejected(
                f"ticket {ticket_id!r} is finished; no more decisions accepted"
            ) from None
        raise
    log.info("ticket %s decided by %s: approved=%s", ticket_id, approver, decision.approved)
    return DecisionAccepted(
        ticket_id=result.ticket_id, status=result.status, decision=result.decision
    )


@router.get(
    "/healthz",
    response_model=Health,
    tags=["ops"],
    summary="Liveness: the process answers",
)
async def healthz() -> Health:
    return Health(version=_VERSION)


@router.get(
    "/readyz",
    response_model=Readiness,
    tags=["ops"],
    summary="Readiness: Temporal answers a health check",
    responses={200: {"description": "Ready."}, 503: _err("Temporal is unreachable.")},
)
async def readyz(settings: SettingsDep, gateway: GatewayDep) -> Readiness:
    await gateway.check_ready()
    return Readiness(temporal_address=settings.temporal_address, namespace=settings.namespace)


async def _recorded_outcome(read_model: ReadModel, ticket_id: str) -> TicketOutcome | None:
    try:
        return await read_model.get_outcome(ticket_id)
    except Unavailable as exc:
        log.warning("read model unavailable for ticket %s: %s", ticket_id, exc.message)
        return None
