"""HTTP request and response bodies: the wire shapes of the HTTP API (and of the gRPC answers).

Requests are strict: unknown fields are refused and JSON types are not coerced (no "12" for an int,
no 1 for a bool), with the limits of the contracts models. Responses reuse the contracts models for
the nested parts, so the API says exactly what the workflow says.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError
from ticketflow.contracts import (
    MAX_BODY_CHARS,
    MAX_REASON_CHARS,
    MAX_REFUND_CENTS,
    MAX_SUBJECT_CHARS,
    TICKET_ID_PATTERN,
    Cents,
    Decision,
    EarlierRun,
    ShortId,
    StatusChange,
    Ticket,
    TicketFacts,
    TicketOutcome,
    TicketState,
    TicketStatus,
    names,
)

from ._paging import MAX_TOKEN_CHARS

__all__ = [
    "MAX_LIST_LIMIT",
    "CancelAccepted",
    "DecisionAccepted",
    "DecisionRequest",
    "ErrorDetail",
    "ErrorResponse",
    "Health",
    "ListTicketsQuery",
    "Readiness",
    "SubmitTicketRequest",
    "TicketAccepted",
    "TicketList",
    "TicketSummary",
    "TicketView",
]


def _no_nul(value: object) -> object:
    """Refuse NUL (U+0000) in request text: valid JSON, but it truncates C strings, breaks logs and
    terminals downstream, and is never part of a ticket. (The contracts' payload models keep
    accepting it: tightening them would break stored payloads, docs/compatibility.md.)"""
    if isinstance(value, str) and "\x00" in value:
        raise PydanticCustomError("string_nul", "must not contain NUL characters (U+0000)")
    return value


def _whole_number(value: object) -> object:
    """A JSON number with no fractional part is an integer (`529.0` is 529), as JSON Schema's
    `integer`, which the OpenAPI document publishes, says; anything else stays refused."""
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise PydanticCustomError("int_type", "Input should be a whole number of cents")
    return value


NoNul = BeforeValidator(_no_nul)
_NO_NUL = "No NUL characters (U+0000)."
# At least one non-blank character (pydantic patterns search, they are not anchored).
_NOT_BLANK = r"\S"
TicketIdField = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=TICKET_ID_PATTERN)
]
Subject = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_SUBJECT_CHARS, pattern=_NOT_BLANK), NoNul
]
Body = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_BODY_CHARS, pattern=_NOT_BLANK), NoNul
]
Reason = Annotated[str, StringConstraints(max_length=MAX_REASON_CHARS), NoNul]
RequestId = Annotated[ShortId, NoNul]
RefundCents = Annotated[Cents, BeforeValidator(_whole_number)]

_EXAMPLE_TICKET_ID = "4f7d2c1e9b8a4d6f8e2a1b3c5d7e9f01"
MAX_LIST_LIMIT = 200


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SubmitTicketRequest(_Request):
    """A new ticket. Without `ticket_id` the api generates one (submitting twice makes two)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ticket_id": "order-1234-refund",
                    "customer_id": "cust-42",
                    "subject": "Refund for a broken kettle",
                    "body": "The kettle arrived broken, I would like a refund please.",
                    "order_id": "order-1234",
                    "requested_refund_cents": 2599,
                }
            ]
        }
    )

    ticket_id: TicketIdField | None = Field(
        None, description="Idempotency key: 1-64 of A-Z a-z 0-9 _ -; generated when absent."
    )
    customer_id: RequestId = Field(description=f"No whitespace. {_NO_NUL}")
    subject: Subject = Field(description=f"At least one non-blank character. {_NO_NUL}")
    body: Body = Field(description=f"At least one non-blank character. {_NO_NUL}")
    order_id: RequestId | None = Field(None, description=f"No whitespace. {_NO_NUL}")
    requested_refund_cents: RefundCents | None = Field(
        None,
        description=(
            f"Integer cents, 0..{MAX_REFUND_CENTS}: a JSON number without a fractional part "
            "(2599 or 2599.0)."
        ),
    )

    def to_ticket(self, ticket_id: str, submitted_at: datetime) -> Ticket:
        return Ticket(
            ticket_id=ticket_id,
            submitted_at=submitted_at,
            **self.model_dump(exclude={"ticket_id"}),
        )


class DecisionRequest(_Request):
    """A human's decision on a ticket waiting for approval."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"approved": True, "reason": "refund is within policy"}]}
    )

    approved: bool
    reason: Reason | None = Field(None, description=_NO_NUL)


class ListTicketsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: TicketStatus | None = Field(None, description="Only tickets in this status.")
    limit: int = Field(50, ge=1, le=MAX_LIST_LIMIT, description="At most this many tickets.")
    page_token: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_TOKEN_CHARS,
        description=(
            "The `next_page_token` of the previous page, unchanged, with the same `status`; "
            "a token that is not, or was made for another status, gets 400."
        ),
    )


class TicketAccepted(BaseModel):
    """A submitted ticket: new (202) or the existing one with the same content (200)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ticket_id": _EXAMPLE_TICKET_ID,
                    "workflow_id": names.workflow_id(_EXAMPLE_TICKET_ID),
                    "status": "RECEIVED",
                }
            ]
        }
    )

    ticket_id: str
    workflow_id: str
    status: TicketStatus | None = Field(
        None, description="Current status; null only if the workflow never reported one."
    )


# The ticket's facts are the contracts' `TicketFacts`, the fields the workflow's query and result
# carry; the rest is the api's: the answer's `source`, and what only the live state knows. (The
# docstring is the OpenAPI description.)
class TicketView(TicketFacts):
    """What happened to a ticket, and where the answer came from."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ticket_id": _EXAMPLE_TICKET_ID,
                    "status": "WAITING_APPROVAL",
                    "source": "live",
                    "ticket": {
                        "ticket_id": _EXAMPLE_TICKET_ID,
                        "customer_id": "cust-42",
                        "subject": "Refund for a broken kettle",
                        "body": "The kettle arrived broken, I would like a refund please.",
                        "order_id": "order-1234",
                        "requested_refund_cents": 2599,
                        "submitted_at": "2025-01-01T12:00:00Z",
                    },
                    "classification": {
                        "category": "refund",
                        "confidence": 0.93,
                        "action": "refund",
                        "refund_cents": 2599,
                        "model": "mock-primary",
                        "tier": "primary",
                        "rationale": "keyword 'refund'",
                    },
                    "draft": None,
                    "decision": None,
                    "outcome": None,
                    "accepting_decisions": True,
                    "side_effects_done": False,
                }
            ]
        }
    )

    source: Literal["live", "read_model"]
    accepting_decisions: bool = Field(
        False, description="Whether a decision would be accepted now."
    )
    side_effects_done: bool = Field(False, description="Whether every final side effect ran.")
    approval_deadline: datetime | None = None
    history: list[StatusChange] = Field(default_factory=list)
    outcome: TicketOutcome | None = None
    duplicate_of: EarlierRun | None = Field(
        None,
        description="Set only when the answer is a run that ended as a duplicate of an earlier "
        "run of this ticket_id whose outcome the read model could not give (see POST /tickets).",
    )

    @classmethod
    def from_state(cls, state: TicketState) -> TicketView:
        """The live answer. A finished ticket is answered from its outcome, as the read model does.

        So the answer about a finished ticket does not change shape when its workflow leaves
        Temporal (retention) or its worker is down: only `source` differs. The price: a finished
        ticket's live answer has no `history` and no `approval_deadline` (the outcome has neither).
        """
        if state.outcome is not None:
            return cls.from_outcome(state.outcome, source="live")
        # Every field of the live state is a field of the view (a test holds it so).
        return cls(source="live", **_fields(state, TicketState))

    @classmethod
    def from_outcome(
        cls, outcome: TicketOutcome, *, source: Literal["live", "read_model"] = "read_model"
    ) -> TicketView:
        """A finished ticket: its facts; the door is closed and the effects are done."""
        return cls(
            source=source,
            accepting_decisions=False,
            side_effects_done=True,
            outcome=outcome,
            duplicate_of=outcome.duplicate_of,
            **_fields(outcome, TicketFacts),
        )


def _fields(model: TicketFacts, shape: type[TicketFacts]) -> dict[str, Any]:
    """The values of ``shape``'s fields in ``model`` (nested models as they are, not copies)."""
    return {name: getattr(model, name) for name in shape.model_fields}


class TicketSummary(BaseModel):
    ticket_id: str
    workflow_id: str
    status: TicketStatus | None = Field(None, description="The TicketStatus search attribute.")
    workflow_status: str | None = Field(
        None, description="Temporal execution status: RUNNING, COMPLETED, FAILED, ..."
    )
    started_at: datetime | None = None
    closed_at: datetime | None = None


class TicketList(BaseModel):
    """A page of tickets from Temporal visibility (eventually consistent: a second or so behind)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tickets": [
                        {
                            "ticket_id": _EXAMPLE_TICKET_ID,
                            "workflow_id": names.workflow_id(_EXAMPLE_TICKET_ID),
                            "status": "WAITING_APPROVAL",
                            "workflow_status": "RUNNING",
                            "started_at": "2025-01-01T12:00:00Z",
                            "closed_at": None,
                        }
                    ],
                    "next_page_token": "eyJ2IjoxLCJzIjoiV0FJVElOR19BUFBST1ZBTCIsLi4ufQ",
                    "total": 230,
                }
            ]
        }
    )

    tickets: list[TicketSummary]
    next_page_token: str | None = Field(
        None,
        description=(
            "Pass it as `page_token` (with the same `status`) for the next page; null on the last "
            "page. Opaque: only valid unchanged and for the status it was made for."
        ),
    )
    total: int = Field(
        0, description="How many tickets match `status` in all (a count of the same query)."
    )


class DecisionAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ticket_id": _EXAMPLE_TICKET_ID,
                    "status": "EXECUTING",
                    "decision": {
                        "approved": True,
                        "approver": "alice",
                        "reason": "refund is within policy",
                        "auto": False,
                        "decided_at": "2025-01-01T12:05:00Z",
                    },
                }
            ]
        }
    )

    ticket_id: str
    status: TicketStatus
    decision: Decision | None = None


class CancelAccepted(BaseModel):
    """A cancel request the ticket's workflow will honour: it ends ESCALATED, the customer is told."""

    ticket_id: str
    status: TicketStatus = Field(description="The status when the cancel was asked (or its end).")
    already: bool = Field(
        False, description="True when this ticket already ended by an earlier cancel (a retry)."
    )


class Health(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ok", "version": "0.1.0"}]}
    )

    status: Literal["ok"] = "ok"
    version: str


class Readiness(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "ready", "temporal_address": "127.0.0.1:7233", "namespace": "default"}
            ]
        }
    )

    status: Literal["ready"] = "ready"
    temporal_address: str
    namespace: str


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. ticket_not_found.")
    message: str = Field(description="What went wrong, for a human.")
    details: list[Any] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """The shape of every non-2xx answer."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "ticket_not_found",
                        "message": "ticket 'abc' not found",
                        "details": [],
                    }
                }
            ]
        }
    )

    error: ErrorDetail
