"""A deterministic fake agent: the agent worker's activities under their contract names.

For tests and scripts that run a workflow without the agent-worker process (the core worker's
tests, the cross-service tests, the history capture script), and ``RecordedOutcomes``, a stand-in
for the projection's ``record_outcome`` that keeps what it was given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import activity
from temporalio.exceptions import ApplicationError
from ticketflow.contracts import names
from ticketflow.contracts.models import (
    ActionKind,
    Category,
    Classification,
    ClassifyInput,
    Draft,
    DraftReplyInput,
    ModelTier,
    TicketOutcome,
)

__all__ = ["FALLBACK_CONFIDENCE", "RecordedOutcomes", "fake_agent"]

FALLBACK_CONFIDENCE = 0.45


def fake_agent(tier: ModelTier) -> list[Callable[..., Awaitable[object]]]:
    """classify and draft_reply for one model tier.

    Primary: 0.95 confidence, a refund when one is requested, else an account question;
    "unclear" in the subject: category other at 0.4 (a human decides); "flaky" in the subject:
    the first attempt of classify fails with a retryable error (Temporal retries it, the workflow
    never sees it); "refused" in the subject: classify fails with a non-retryable
    InvalidAgentInput. Fallback: always 0.45, so its answers need a human.
    """
    model = f"fake-{tier.value}"

    @activity.defn(name=names.CLASSIFY)
    async def classify(inp: ClassifyInput) -> Classification:
        t = inp.ticket
        if "refused" in t.subject:
            raise ApplicationError(
                "the model refuses this input (injected)",
                type="InvalidAgentInput",
                non_retryable=True,
            )
        if "flaky" in t.subject and activity.info().attempt == 1:
            raise ApplicationError("model endpoint hiccup (injected)", type="AgentUnavailable")
        refund = (t.requested_refund_cents or 0) > 0
        unclear = "unclear" in t.subject
        return Classification(
            category=Category.REFUND
            if refund
            else (Category.OTHER if unclear else Category.ACCOUNT),
            confidence=FALLBACK_CONFIDENCE
            if tier == ModelTier.FALLBACK
            else (0.4 if unclear else 0.95),
            action=ActionKind.REFUND if refund else ActionKind.REPLY_ONLY,
            refund_cents=t.requested_refund_cents if refund else None,
            model=model,
            tier=tier,
            rationale="keyword match (fake agent)",
        )

    @activity.defn(name=names.DRAFT_REPLY)
    async def draft_reply(inp: DraftReplyInput) -> Draft:
        return Draft(
            text=f"Hello, about ticket {inp.ticket.ticket_id}: done.", model=model, tier=tier
        )

    return [classify, draft_reply]


class RecordedOutcomes:
    """``record_outcome`` under its contract name, keeping every outcome it receives."""

    def __init__(self) -> None:
        self.outcomes: list[TicketOutcome] = []

        @activity.defn(name=names.RECORD_OUTCOME)
        async def record_outcome(outcome: TicketOutcome) -> bool:
            self.outcomes.append(outcome)
            return True

        self.activity = record_outcome
