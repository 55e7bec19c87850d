"""Ticket factories: valid payloads, a fresh id each, overridable field by field."""

from __future__ import annotations

from ticketflow.contracts.models import Category, TicketStatus
from ticketflow.testkit import BASE_TIME, fresh_id, new_ticket, outcome, ticket_input


def test_fresh_ids_are_unique_and_prefixed() -> None:
    ids = {fresh_id("x-") for _ in range(1000)}
    assert len(ids) == 1000 and all(i.startswith("x-") for i in ids)


def test_new_ticket_is_a_question_or_a_refund_request() -> None:
    question = new_ticket()
    assert question.requested_refund_cents is None and question.order_id is None
    refund = new_ticket(1999, subject="broken", customer_id="cust-7")
    assert (refund.requested_refund_cents, refund.order_id) == (1999, "order-9")
    assert (refund.subject, refund.customer_id) == ("broken", "cust-7")


def test_ticket_input_takes_an_id_and_policy_overrides() -> None:
    inp = ticket_input(500, "refund please", ticket_id="t-9", confidence_threshold=0.5)
    assert inp.ticket.ticket_id == "t-9"
    assert (inp.ticket.requested_refund_cents, inp.ticket.subject) == (500, "refund please")
    assert inp.policy.confidence_threshold == 0.5
    assert ticket_input().ticket.ticket_id != ticket_input().ticket.ticket_id


def test_outcome_is_consistent() -> None:
    done = outcome("t-3")
    assert done.ticket_id == done.ticket.ticket_id == "t-3"
    assert done.reply is not None and done.reply.ticket_id == "t-3"
    assert done.classification is not None and done.classification.category is Category.ACCOUNT
    assert done.status is TicketStatus.RESOLVED and done.finished_at == BASE_TIME
    escalated = outcome("t-4", status=TicketStatus.ESCALATED, category=None)
    assert escalated.status is TicketStatus.ESCALATED and escalated.classification is None
