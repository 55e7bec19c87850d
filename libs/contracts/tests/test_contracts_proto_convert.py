"""proto_convert: contracts models <-> ticketflow.v1 messages, both ways, without loss."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ticketflow.contracts.models import (
    ActionKind,
    AgentCall,
    Category,
    Classification,
    Decision,
    Draft,
    ModelTier,
    RefundReceipt,
    ReplyKind,
    ReplyReceipt,
    Ticket,
    TicketOutcome,
    TicketStatus,
)
from ticketflow.contracts.proto_convert import enum_from_proto, enum_to_proto, from_proto, to_proto
from ticketflow.v1 import ticket_pb2

AT = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def full_outcome() -> TicketOutcome:
    tid = "t-full"
    return TicketOutcome(
        ticket_id=tid,
        status=TicketStatus.RESOLVED,
        ticket=Ticket(
            ticket_id=tid,
            customer_id="cust-1",
            subject="refund please",
            body="order arrived broken",
            order_id="order-9",
            requested_refund_cents=0,  # zero, not absent
            submitted_at=AT,
        ),
        classification=Classification(
            category=Category.REFUND,
            confidence=0.93,
            action=ActionKind.REFUND,
            refund_cents=1999,
            model="mock-primary",
            tier=ModelTier.FALLBACK,
            rationale="keyword: refund",
        ),
        draft=Draft(text="We are sorry.", model="mock-primary", tier=ModelTier.PRIMARY),
        decision=Decision(approved=True, approver="alice", reason="ok", auto=False, decided_at=AT),
        refund=RefundReceipt(
            ticket_id=tid, refund_id="rf_1", amount_cents=1999, created_at=AT, already_applied=True
        ),
        reply=ReplyReceipt(
            ticket_id=tid, reply_id="rp_1", kind=ReplyKind.RESOLUTION, created_at=AT
        ),
        escalation_reason=None,
        agent_calls=[
            AgentCall(activity="classify", tier=ModelTier.PRIMARY, ok=False, error="timeout"),
            AgentCall(activity="classify", tier=ModelTier.FALLBACK, ok=True),
        ],
        finished_at=AT,
    )


def minimal_outcome() -> TicketOutcome:
    return TicketOutcome(
        ticket_id="t-min",
        status=TicketStatus.ESCALATED,
        ticket=Ticket(ticket_id="t-min", customer_id="c", subject="s", body="b"),
        escalation_reason="agent could not classify the ticket within its budget",
        finished_at=AT,
    )


# Factories, not instances: building models at import time would turn a model change into a
# collection error that hides the compatibility gates' own messages.
@pytest.mark.parametrize("make", [full_outcome, minimal_outcome], ids=["full", "minimal"])
def test_outcome_round_trips(make) -> None:
    outcome = make()
    msg = to_proto(outcome, ticket_pb2.TicketOutcome)
    assert from_proto(msg, TicketOutcome) == outcome
    # And through the wire bytes.
    again = ticket_pb2.TicketOutcome.FromString(msg.SerializeToString())
    assert from_proto(again, TicketOutcome) == outcome


def test_wire_shape_of_a_full_outcome() -> None:
    msg = to_proto(full_outcome(), ticket_pb2.TicketOutcome)
    assert msg.status == ticket_pb2.TICKET_STATUS_RESOLVED
    assert msg.classification.category == ticket_pb2.CATEGORY_REFUND
    assert msg.classification.action == ticket_pb2.ACTION_KIND_REFUND
    assert msg.classification.tier == ticket_pb2.MODEL_TIER_FALLBACK
    assert msg.reply.kind == ticket_pb2.REPLY_KIND_RESOLUTION
    assert msg.ticket.HasField("requested_refund_cents") and msg.ticket.requested_refund_cents == 0
    assert msg.refund.amount_cents == 1999
    assert msg.finished_at.ToDatetime(tzinfo=UTC) == AT
    assert [c.ok for c in msg.agent_calls] == [False, True]
    assert not msg.HasField("escalation_reason")


def test_absent_optionals_stay_absent() -> None:
    msg = to_proto(minimal_outcome(), ticket_pb2.TicketOutcome)
    for name in ("classification", "draft", "decision", "refund", "reply"):
        assert not msg.HasField(name), name
    assert not msg.ticket.HasField("order_id")
    assert not msg.ticket.HasField("requested_refund_cents")
    assert not msg.ticket.HasField("submitted_at")
    back = from_proto(msg, TicketOutcome)
    assert back.classification is None and back.ticket.submitted_at is None


def test_enum_helpers() -> None:
    desc = ticket_pb2.TicketStatus.DESCRIPTOR
    assert enum_to_proto(desc, TicketStatus.WAITING_APPROVAL) == (
        ticket_pb2.TICKET_STATUS_WAITING_APPROVAL
    )
    assert enum_to_proto(desc, None) == ticket_pb2.TICKET_STATUS_UNSPECIFIED
    assert enum_to_proto(ticket_pb2.Category.DESCRIPTOR, "billing") == ticket_pb2.CATEGORY_BILLING
    assert enum_from_proto(desc, ticket_pb2.TICKET_STATUS_ESCALATED) == "ESCALATED"
    assert enum_from_proto(desc, 0) is None
    assert enum_from_proto(desc, 99) is None  # an unknown (newer) value


def test_naive_datetime_is_taken_as_utc() -> None:
    ticket = Ticket(
        ticket_id="t", customer_id="c", subject="s", body="b", submitted_at=AT.replace(tzinfo=None)
    )
    msg = to_proto(ticket, ticket_pb2.Ticket)
    assert msg.submitted_at.ToDatetime(tzinfo=UTC) == AT
