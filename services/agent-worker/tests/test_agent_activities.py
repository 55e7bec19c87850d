"""AgentActivities in an ActivityEnvironment: heartbeats during the call, cancellation, errors."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from ticketflow.agent_worker import AgentActivities, MockAgent
from ticketflow.agent_worker.activities import (
    DEFAULT_HEARTBEAT_PERIOD_S,
    INVALID_INPUT_ERROR_TYPE,
    MIN_HEARTBEAT_PERIOD_S,
    TRANSIENT_ERROR_TYPE,
    heartbeat_period,
)
from ticketflow.contracts import (
    ActionKind,
    Category,
    Classification,
    ClassifyInput,
    Draft,
    DraftReplyInput,
    ModelTier,
    Ticket,
    names,
)

TICKET = Ticket(
    ticket_id="t-42",
    customer_id="c-1",
    subject="Refund please",
    body="It broke.",
    requested_refund_cents=1999,
)


def make_env(*, heartbeat_timeout: float | None = None, attempt: int = 1) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        attempt=attempt,
        heartbeat_timeout=None
        if heartbeat_timeout is None
        else timedelta(seconds=heartbeat_timeout),
    )
    return env


def heartbeat_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("heartbeat-")]


class GatedAgent:
    """An agent whose call lasts until the test releases it: no clocks in the assertions."""

    name = "gated-1"
    tier = ModelTier.PRIMARY

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = False
        self.attempts: list[int] = []

    async def classify(self, ticket: Ticket, *, attempt: int = 1) -> Classification:
        self.attempts.append(attempt)
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return Classification(category=Category.OTHER, confidence=0.4, model=self.name)

    async def draft_reply(
        self, ticket: Ticket, classification: Classification, *, attempt: int = 1
    ) -> Draft:
        raise NotImplementedError


@pytest.mark.parametrize(
    ("timeout", "period"),
    [
        (None, DEFAULT_HEARTBEAT_PERIOD_S),
        (0.0, DEFAULT_HEARTBEAT_PERIOD_S),
        (3.0, 1.0),
        (0.01, MIN_HEARTBEAT_PERIOD_S),
    ],
)
def test_heartbeat_period(timeout: float | None, period: float) -> None:
    assert heartbeat_period(None if timeout is None else timedelta(seconds=timeout)) == period


async def test_heartbeats_while_the_model_call_is_in_flight() -> None:
    agent = GatedAgent()
    env = make_env(heartbeat_timeout=0.15, attempt=2)
    beats: list[tuple] = []

    def on_heartbeat(*details: object) -> None:
        beats.append(details)
        if len(beats) == 3:  # the call only ends once three heartbeats were seen during it
            agent.release.set()

    env.on_heartbeat = on_heartbeat
    result = await env.run(AgentActivities(agent).classify, ClassifyInput(ticket=TICKET))
    assert result.model == "gated-1"
    assert beats == [(names.CLASSIFY,)] * 3
    assert agent.attempts == [2]  # the attempt number comes from activity.info()
    assert heartbeat_tasks() == []  # the loop ended with the call


async def test_heartbeats_during_a_slow_mock_call() -> None:
    env = make_env(heartbeat_timeout=0.1)
    beats: list[tuple] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    acts = AgentActivities(MockAgent(ModelTier.PRIMARY, latency_ms=300))
    result = await env.run(acts.classify, ClassifyInput(ticket=TICKET))
    seen_before_result = len(beats)
    assert result.category is Category.REFUND
    assert seen_before_result > 1
    assert heartbeat_tasks() == []


async def test_cancelling_the_activity_cancels_the_model_call() -> None:
    agent = GatedAgent()
    env = make_env(heartbeat_timeout=0.15)
    running = asyncio.create_task(
        env.run(AgentActivities(agent).classify, ClassifyInput(ticket=TICKET))
    )
    await agent.started.wait()
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert agent.cancelled
    assert heartbeat_tasks() == []


async def test_classify_and_draft_happy_path() -> None:
    acts = AgentActivities(MockAgent(ModelTier.FALLBACK))
    c = await make_env().run(acts.classify, ClassifyInput(ticket=TICKET))
    assert (c.category, c.action, c.refund_cents, c.tier) == (
        Category.REFUND,
        ActionKind.REFUND,
        1999,
        ModelTier.FALLBACK,
    )
    d = await make_env().run(acts.draft_reply, DraftReplyInput(ticket=TICKET, classification=c))
    assert "$19.99" in d.text and d.tier is ModelTier.FALLBACK


@pytest.mark.parametrize("call", [names.CLASSIFY, names.DRAFT_REPLY])
async def test_transient_model_error_is_a_retryable_application_error(call: str) -> None:
    acts = AgentActivities(MockAgent(ModelTier.PRIMARY, failure_rate=1.0))
    classification = Classification(category=Category.OTHER, confidence=0.4, model="m")
    activity_fn, arg = {
        names.CLASSIFY: (acts.classify, ClassifyInput(ticket=TICKET)),
        names.DRAFT_REPLY: (
            acts.draft_reply,
            DraftReplyInput(ticket=TICKET, classification=classification),
        ),
    }[call]
    with pytest.raises(ApplicationError) as caught:
        await make_env(attempt=3).run(activity_fn, arg)
    assert caught.value.type == TRANSIENT_ERROR_TYPE == "TransientModelError"
    assert not caught.value.non_retryable
    assert "attempt 3" in caught.value.message


async def test_input_that_cannot_succeed_is_non_retryable() -> None:
    acts = AgentActivities(MockAgent(ModelTier.PRIMARY))
    refund_without_amount = Classification(
        category=Category.REFUND, confidence=0.95, action=ActionKind.REFUND, model="m"
    )
    with pytest.raises(ApplicationError) as caught:
        await make_env().run(
            acts.draft_reply, DraftReplyInput(ticket=TICKET, classification=refund_without_amount)
        )
    assert caught.value.type == INVALID_INPUT_ERROR_TYPE
    assert caught.value.non_retryable
