"""The fake agent and RecordedOutcomes, run in an ActivityEnvironment: the answers and injected
faults that other packages' workflow tests are written against."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from ticketflow.contracts import names
from ticketflow.contracts.models import (
    ActionKind,
    Category,
    Classification,
    ClassifyInput,
    Draft,
    DraftReplyInput,
    ModelTier,
)
from ticketflow.testkit import (
    FALLBACK_CONFIDENCE,
    RecordedOutcomes,
    fake_agent,
    fresh_id,
    outcome,
    ticket_input,
)


def by_name(tier: ModelTier) -> dict[str, Callable[..., Awaitable[object]]]:
    """The fake agent's activities by their registered (contract) names."""
    # The SDK keeps the registered name on its (private) definition; there is no public getter.
    return {str(activity._Definition.must_from_callable(fn).name): fn for fn in fake_agent(tier)}


async def classify(
    tier: ModelTier, subject: str, refund: int | None = None, *, attempt: int = 1
) -> Classification:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    ticket = ticket_input(refund, subject).ticket
    answer = await env.run(by_name(tier)[names.CLASSIFY], ClassifyInput(ticket=ticket))
    assert isinstance(answer, Classification)
    return answer


def test_activities_carry_the_contract_names() -> None:
    for tier in ModelTier:
        assert set(by_name(tier)) == {names.CLASSIFY, names.DRAFT_REPLY}


async def test_primary_answers_with_confidence() -> None:
    refund = await classify(ModelTier.PRIMARY, "refund", 1200)
    assert (refund.category, refund.action, refund.refund_cents) == (
        Category.REFUND,
        ActionKind.REFUND,
        1200,
    )
    assert (refund.confidence, refund.model, refund.tier) == (
        0.95,
        "fake-primary",
        ModelTier.PRIMARY,
    )
    question = await classify(ModelTier.PRIMARY, "cannot login")
    assert (question.category, question.action) == (Category.ACCOUNT, ActionKind.REPLY_ONLY)
    unclear = await classify(ModelTier.PRIMARY, "unclear thing")
    assert (unclear.category, unclear.confidence) == (Category.OTHER, 0.4)


async def test_fallback_always_needs_a_human() -> None:
    answer = await classify(ModelTier.FALLBACK, "refund", 1200)
    assert (answer.confidence, answer.tier) == (FALLBACK_CONFIDENCE, ModelTier.FALLBACK)


async def test_refused_input_fails_for_good() -> None:
    with pytest.raises(ApplicationError) as refused:
        await classify(ModelTier.PRIMARY, "refused input")
    assert refused.value.non_retryable and refused.value.type == "InvalidAgentInput"


async def test_flaky_fails_its_first_attempt_only() -> None:
    with pytest.raises(ApplicationError) as flaky:
        await classify(ModelTier.PRIMARY, "flaky line")
    assert not flaky.value.non_retryable
    assert (await classify(ModelTier.PRIMARY, "flaky line", attempt=2)).confidence == 0.95


async def test_draft_reply_names_the_ticket() -> None:
    inp = ticket_input()
    classification = await classify(ModelTier.PRIMARY, "cannot login")
    draft = await ActivityEnvironment().run(
        by_name(ModelTier.PRIMARY)[names.DRAFT_REPLY],
        DraftReplyInput(ticket=inp.ticket, classification=classification),
    )
    assert isinstance(draft, Draft)
    assert inp.ticket.ticket_id in draft.text and draft.model == "fake-primary"


async def test_recorded_outcomes_keeps_what_it_receives() -> None:
    recorded = RecordedOutcomes()
    done = outcome(fresh_id())
    assert await ActivityEnvironment().run(recorded.activity, done) is True
    assert recorded.outcomes == [done]
