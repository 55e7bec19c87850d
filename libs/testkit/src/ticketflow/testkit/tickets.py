"""Ticket factories: valid payloads with a fresh id each, overridable field by field."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from ticketflow.contracts.models import (
    ActionKind,
    Category,
    Classification,
    Decision,
    NewTicket,
    Policy,
    ReplyKind,
    ReplyReceipt,
    Ticket,
    TicketInput,
    TicketOutcome,
    TicketStatus,
)

__all__ = ["BASE_TIME", "TEST_DECISION_KEYS", "fresh_id", "new_ticket", "outcome", "ticket_input"]

BASE_TIME = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def fresh_id(prefix: str = "t") -> str:
    """A ticket id no other test uses."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def new_ticket(
    refund_cents: int | None = None, subject: str = "cannot login", **fields: Any
) -> NewTicket:
    """What a customer submits: an account question, or a refund request when ``refund_cents``."""
    values: dict[str, Any] = {
        "customer_id": "cust-1",
        "subject": subject,
        "body": "I want a refund" if refund_cents else "please help",
        "order_id": "order-9" if refund_cents else None,
        "requested_refund_cents": refund_cents,
        **fields,
    }
    return NewTicket(**values)


def ticket_input(
    refund_cents: int | None = None,
    subject: str = "cannot login",
    *,
    ticket_id: str | None = None,
    **policy: Any,
) -> TicketInput:
    """A workflow input for a new ticket; ``policy`` overrides ``Policy`` fields."""
    new = new_ticket(refund_cents, subject)
    return TicketInput(
        ticket=Ticket(ticket_id=ticket_id or fresh_id(), **new.model_dump()),
        policy=Policy(**policy),
    )


def outcome(
    ticket_id: str = "t-1",
    *,
    status: TicketStatus = TicketStatus.RESOLVED,
    category: Category | None = Category.ACCOUNT,
    finished_at: datetime = BASE_TIME,
    customer_id: str = "cust-1",
    **extra: Any,
) -> TicketOutcome:
    """A finished ticket as the workflow reports it (auto-approved, replied)."""
    ticket = Ticket(
        ticket_id=ticket_id,
        customer_id=customer_id,
        subject="cannot login",
        body="please help",
        submitted_at=finished_at - timedelta(minutes=5),
    )
    classification = (
        Classification(
            category=category, confidence=0.95, action=ActionKind.REPLY_ONLY, model="fake-primary"
        )
        if category
        else None
    )
    return TicketOutcome(
        ticket_id=ticket_id,
        status=status,
        ticket=ticket,
        classification=classification,
        decision=Decision(approved=True, approver="auto", auto=True, decided_at=finished_at),
        reply=ReplyReceipt(
            ticket_id=ticket_id,
            reply_id=f"rp_{ticket_id}",
            kind=ReplyKind.RESOLUTION,
            created_at=finished_at,
        ),
        finished_at=finished_at,
        **extra,
    )


# A decision signing key for tests (TICKETFLOW_DECISION_KEYS syntax): never used outside tests.
TEST_DECISION_KEYS = "test:" + base64.b64encode(b"ticketflow-test-decision-key-32b").decode()
