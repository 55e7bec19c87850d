"""Which answers a ticket is decided on: the auto-approve rule, asking the primary again after
a fallback answer (docs/architecture.md, "Agent calls: timeouts, rate limit, fallback"), and which
human decisions the workflow accepts.

Workflow code, imported by workflow.py inside the sandbox: deterministic, no I/O. The re-ask is
behind the patch ``PATCH_PRIMARY_RECHECK``: histories without it keep handing every fallback
answer to a human.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from ticketflow.contracts import names
    from ticketflow.contracts.models import (
        ActionKind,
        AgentCall,
        Classification,
        ClassifyInput,
        DecideInput,
        Draft,
        DraftReplyInput,
        ModelTier,
        Policy,
        Ticket,
        TicketFacts,
        TicketStatus,
    )

    from .decision_auth import VERIFY_DECISION

from ._routing import ask_primary
from .patches import PATCH_PRIMARY_RECHECK

__all__ = [
    "auto_approvable",
    "needs_refund",
    "recheck_on_primary",
    "refuse_decision",
    "worth_rechecking",
]


def needs_refund(c: Classification | None) -> bool:
    return c is not None and c.action == ActionKind.REFUND and (c.refund_cents or 0) > 0


def _low_risk(c: Classification, policy: Policy) -> bool:
    return not needs_refund(c) or (c.refund_cents or 0) <= policy.auto_approve_limit_cents


def auto_approvable(c: Classification, draft: Draft, policy: Policy) -> bool:
    """Low risk, confident, and answered by the primary model.

    A fallback answer always needs a human.
    """
    if c.tier != ModelTier.PRIMARY or draft.tier != ModelTier.PRIMARY:
        return False
    if c.confidence < policy.confidence_threshold:
        return False
    return _low_risk(c, policy)


def worth_rechecking(c: Classification, draft: Draft, policy: Policy) -> bool:
    """A fallback answered (the classification or the draft), and the ticket would be
    auto-approved had the primary answered the same way.

    The fallback's confidence is on its own, lower scale (it never reaches the threshold), so it
    is held to ``fallback_recheck_min_confidence``; a primary classification to the threshold. A
    refund over the limit needs a human whatever the model: the primary is not asked again, and
    its rate budget goes to tickets it can settle.
    """
    if c.tier == ModelTier.PRIMARY and draft.tier == ModelTier.PRIMARY:
        return False
    if policy.primary_recheck_schedule_to_start_s <= 0:
        return False
    floor = (
        policy.confidence_threshold
        if c.tier == ModelTier.PRIMARY
        else policy.fallback_recheck_min_confidence
    )
    return c.confidence >= floor and _low_risk(c, policy)


async def recheck_on_primary(
    ticket: Ticket,
    classification: Classification,
    draft: Draft,
    policy: Policy,
    calls: list[AgentCall],
) -> tuple[Classification, Draft] | None:
    """Ask the primary again for whatever the fallback answered; the primary's (classification,
    draft) pair, or None when it did not answer within the budget (the caller keeps the fallback's
    pair, so the draft always matches the classification it was written for).

    Only when ``worth_rechecking``, and only for histories that carry the patch. The re-asked calls
    share ``primary_recheck_schedule_to_start_s``: a ticket waits at most that long (plus the
    calls' run time) longer before a human sees it.
    """
    if not worth_rechecking(classification, draft, policy):
        return None
    if not workflow.patched(PATCH_PRIMARY_RECHECK):
        return None
    deadline = workflow.time() + policy.primary_recheck_schedule_to_start_s
    if classification.tier != ModelTier.PRIMARY:
        primary = await ask_primary(
            names.CLASSIFY,
            ClassifyInput(ticket=ticket),
            Classification,
            schedule_to_start_s=deadline - workflow.time(),
            policy=policy,
            calls=calls,
        )
        if primary is None:
            return None
        classification = primary
    remaining = deadline - workflow.time()
    if remaining <= 0:
        return None
    redraft = await ask_primary(
        names.DRAFT_REPLY,
        DraftReplyInput(ticket=ticket, classification=classification),
        Draft,
        schedule_to_start_s=remaining,
        policy=policy,
        calls=calls,
    )
    return None if redraft is None else (classification, redraft)


def refuse_decision(
    facts: TicketFacts, inp: DecideInput, *, accepting: bool, deadline: datetime | None
) -> None:
    """Raise the ``ApplicationError`` that refuses ``inp``, if anything does (the update's
    validator: a refused decision is written nowhere in history). Each refusal has its type, which
    the api maps to its answer."""
    # First: only a decision the api vouches for (an approver's token checked, then signed
    # with a key this worker holds); anyone else learns nothing about the ticket.
    verify = workflow.extern_functions().get(VERIFY_DECISION)
    problem = (
        "this core worker cannot verify decisions (built without DecisionAuth)"
        if verify is None
        else verify(facts.ticket_id, inp)
    )
    if problem is not None:
        raise ApplicationError(
            f"{problem}; only decisions signed by the api are accepted",
            type="DecisionNotVouched",
        )
    if facts.decision is not None:
        raise ApplicationError(
            f"ticket {facts.ticket_id} is already decided "
            f"({'approved' if facts.decision.approved else 'rejected'} by "
            f"{facts.decision.approver})",
            type="AlreadyDecided",
        )
    if facts.status != TicketStatus.WAITING_APPROVAL or not accepting:
        raise ApplicationError(
            f"ticket {facts.ticket_id} is not waiting for approval (status {facts.status.value})",
            type="NotWaitingApproval",
        )
    if deadline is not None and workflow.now() >= deadline:
        raise ApplicationError(
            f"the approval window of ticket {facts.ticket_id} has closed",
            type="ApprovalWindowClosed",
        )
    if not inp.approver.strip():
        raise ApplicationError("approver must not be empty", type="MalformedDecision")
