"""The HTTP endpoints: submit, follow, list and decide tickets; liveness and readiness.

Handlers only translate HTTP into calls of the service layer (`service.TicketService`, shared with
the gRPC server) and back; errors become HTTP answers in `errors`.
"""

from __future__ import annotations

import email.message
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from ticketflow.contracts import TICKET_ID_PATTERN

from ._version import VERSION
from .auth import ApproverDep, ReaderDep
from .bodies import JsonBodyRoute
from .deps import SettingsDep, TicketsDep
from .errors import UnsupportedMediaType
from .schemas import (
    MAX_LIST_LIMIT,
    CancelAccepted,
    DecisionAccepted,
    DecisionRequest,
    ErrorResponse,
    Health,
    ListTicketsQuery,
    Readiness,
    SubmitTicketRequest,
    TicketAccepted,
    TicketList,
    TicketView,
)

__all__ = ["MAX_LIST_LIMIT", "router"]

log = logging.getLogger(__name__)


# FastAPI's type of a route's `responses`; the tables below are merged into it.
_Responses = dict[int | str, dict[str, Any]]


def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


_INVALID: _Responses = {
    422: _err(
        "Invalid request: malformed JSON (including a body that is not UTF-8 or is nested too "
        "deeply), wrong types, unknown fields, bad limits, NUL characters in text."
    )
}
_BODY_ERRORS: _Responses = {
    400: _err("Invalid Content-Length header."),
    413: _err("Request body over the size limit."),
    415: _err("Content-Type is not application/json."),
    **_INVALID,
}
# Reads (docs/architecture.md, "Who may read what"): open unless TICKETFLOW_VIEWER_TOKENS is set.
_READ_UNAUTHORIZED: _Responses = {
    401: _err(
        "Missing or invalid bearer token (only when the api has TICKETFLOW_VIEWER_TOKENS set): "
        "send a viewer's or an approver's token."
    )
}
_LOCATION = {"Location": {"description": "/tickets/{ticket_id}", "schema": {"type": "string"}}}
_UNAVAILABLE: _Responses = {503: _err("Temporal is unreachable (or no worker answered in time).")}
_SUBMIT_UNAVAILABLE: _Responses = {
    503: _err(
        "Temporal is unreachable; or, for a client-chosen ticket_id that Temporal does not "
        "have, the read model cannot say whether that ticket already finished (retry)."
    )
}
_READ_UNAVAILABLE: _Responses = {
    503: _err(
        "Neither source can answer: Temporal is unreachable or no worker answered in time, and "
        "the read model does not have the ticket or is unreachable too."
    )
}

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


router = APIRouter(route_class=JsonBodyRoute)


@router.post(
    "/tickets",
    status_code=202,
    response_model=TicketAccepted,
    tags=["tickets"],
    summary="Submit a ticket",
    description=(
        "Starts the ticket's workflow. Idempotent on `ticket_id`: the same id with the same content "
        "answers 200 with the existing ticket, with other content 409, also once the ticket has "
        "finished and Temporal no longer has it (the read model is asked first). When the read "
        "model is unreachable and Temporal has no workflow of this id, the ticket is still "
        "accepted (202): its workflow first checks whether the id already reached its end, and "
        "if so ends as a duplicate that does nothing (no second reply or refund), whatever the "
        "content; `GET /tickets/{ticket_id}` then keeps answering the original ticket, and a "
        "`POST` once the read model is back answers 200 or 409 as usual."
    ),
    responses={
        202: {
            "description": "Accepted: its workflow started (with the read model down, it first "
            "checks that the ticket_id did not already finish).",
            "headers": _LOCATION,
        },
        200: {
            "model": TicketAccepted,
            "description": "The same ticket was submitted before.",
            "headers": _LOCATION,
        },
        409: _err("This ticket_id exists with other content."),
        **_BODY_ERRORS,
        **_SUBMIT_UNAVAILABLE,
    },
)
async def submit_ticket(
    _json: JsonBody,
    submission: SubmitTicketRequest,
    response: Response,
    tickets: TicketsDep,
) -> TicketAccepted:
    result = await tickets.submit(submission)
    if not result.created:
        response.status_code = 200
    response.headers["Location"] = f"/tickets/{result.ticket_id}"
    return TicketAccepted(
        ticket_id=result.ticket_id, workflow_id=result.workflow_id, status=result.status
    )


@router.get(
    "/tickets",
    response_model=TicketList,
    tags=["tickets"],
    summary="List tickets by status, a page at a time",
    description=(
        "From Temporal visibility (a list query on the `TicketStatus` search attribute), so it "
        "trails the live state by a moment. The approval queue (`status=WAITING_APPROVAL`) comes "
        "oldest first (closest to its approval deadline), every other list most recent first. "
        "`total` counts every match; `next_page_token`, passed back as `page_token` with the "
        "same `status`, gets the next page (null on the last). A non-terminal status lists "
        "running workflows only; a terminal one every workflow that reached it "
        "(`workflow_status` says whether it is still running)."
    ),
    responses={
        200: {"description": "A page of the matching tickets."},
        400: _err("`page_token` is not one this api made, or was made for another status."),
        **_READ_UNAUTHORIZED,
        **_INVALID,
        **_UNAVAILABLE,
    },
)
async def list_tickets(
    _reader: ReaderDep, query: Annotated[ListTicketsQuery, Query()], tickets: TicketsDep
) -> TicketList:
    return await tickets.list(query.status, query.limit, query.page_token)


@router.get(
    "/tickets/{ticket_id}",
    response_model=TicketView,
    tags=["tickets"],
    summary="What happened to a ticket",
    description=(
        "Live from the workflow's `status` query (`source: live`); from the projection's read "
        "model when Temporal does not know the ticket, is unreachable, or no worker answers in "
        "time (`source: read_model`). A finished ticket answers the same from either source, "
        "apart from `source`."
    ),
    responses={
        200: {"description": "The ticket's state."},
        404: _err("No such ticket: neither Temporal nor the read model knows it."),
        **_READ_UNAUTHORIZED,
        **_INVALID,
        **_READ_UNAVAILABLE,
    },
)
async def get_ticket(
    _reader: ReaderDep, ticket_id: TicketIdPath, tickets: TicketsDep
) -> TicketView:
    return await tickets.get(ticket_id)


@router.post(
    "/tickets/{ticket_id}/decision",
    response_model=DecisionAccepted,
    tags=["tickets"],
    summary="Approve or reject a ticket waiting for approval",
    description=(
        "Sends the workflow's `decide` update as the approver the bearer token belongs to. "
        "The workflow refuses it (409) when the ticket is not waiting, already decided, "
        "past its approval deadline, or closed. The same decision by the same approver sent "
        "again answers the same 200 (it is applied once): after a 503, retry the same request."
    ),
    responses={
        200: {"description": "The decision was accepted."},
        401: _err("Missing or invalid bearer token."),
        404: _err("No such ticket."),
        409: _err("Not waiting for approval: late, duplicate, already decided, or closed."),
        **_BODY_ERRORS,
        503: {
            **_err(
                "Temporal is unreachable, or the decision was sent and its answer did not come "
                "in time (`decision_outcome_unknown`): it may have been applied; retry the same "
                "request, which is applied once and gets the first answer."
            ),
            "headers": {
                "Retry-After": {
                    "description": "Seconds to wait before retrying the same request.",
                    "schema": {"type": "integer"},
                }
            },
        },
    },
)
async def decide_ticket(
    ticket_id: TicketIdPath,
    approver: ApproverDep,
    _json: JsonBody,
    decision: DecisionRequest,
    tickets: TicketsDep,
) -> DecisionAccepted:
    return await tickets.decide(ticket_id, approver, decision)


@router.post(
    "/tickets/{ticket_id}/cancel",
    status_code=202,
    response_model=CancelAccepted,
    tags=["tickets"],
    summary="Cancel a ticket that is not decided yet",
    description=(
        "Asks the ticket's workflow to stop, as the approver the bearer token belongs to (the same "
        "token as a decision). An undecided ticket ends ESCALATED (`cancelled by an operator`) and "
        "the customer gets the escalation reply; a decided or finished one is refused (409), its "
        "end is carried out. Sent again after its answer was lost: 202 with `already: true`."
    ),
    responses={
        202: {"description": "The cancel was requested (or had already ended the ticket)."},
        401: _err("Missing or invalid bearer token."),
        404: _err("No such ticket."),
        409: _err("Already decided or finished: too late to cancel."),
        **_INVALID,
        **_UNAVAILABLE,
    },
)
async def cancel_ticket(
    ticket_id: TicketIdPath, approver: ApproverDep, tickets: TicketsDep
) -> CancelAccepted:
    return await tickets.cancel(ticket_id, approver)


@router.get(
    "/healthz",
    response_model=Health,
    tags=["ops"],
    summary="Liveness: the process answers",
)
async def healthz() -> Health:
    return Health(version=VERSION)


@router.get(
    "/readyz",
    response_model=Readiness,
    tags=["ops"],
    summary="Readiness: Temporal answers a health check",
    responses={200: {"description": "Ready."}, 503: _err("Temporal is unreachable.")},
)
async def readyz(settings: SettingsDep, tickets: TicketsDep) -> Readiness:
    await tickets.check_ready()
    return Readiness(temporal_address=settings.temporal_address, namespace=settings.namespace)
