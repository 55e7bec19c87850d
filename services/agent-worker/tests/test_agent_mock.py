"""MockAgent: keyword rules, tiers, replies, money formatting, deterministic faults."""

from __future__ import annotations

import asyncio

import pytest
from ticketflow.agent_worker import (
    Agent,
    InvalidAgentInputError,
    MockAgent,
    TransientModelError,
    format_cents,
)
from ticketflow.agent_worker.mock import FALLBACK_MAX_CONFIDENCE, classify_text
from ticketflow.contracts import ActionKind, Category, Classification, ModelTier, Ticket

PRIMARY = MockAgent(ModelTier.PRIMARY)
FALLBACK = MockAgent(ModelTier.FALLBACK)


def ticket(
    subject: str = "Hello",
    body: str = "Just saying hi.",
    *,
    refund: int | None = None,
    ticket_id: str = "t-1",
    order_id: str | None = None,
) -> Ticket:
    return Ticket(
        ticket_id=ticket_id,
        customer_id="c-1",
        subject=subject,
        body=body,
        order_id=order_id,
        requested_refund_cents=refund,
    )


# (subject, body, requested cents) -> (category, primary confidence, action)
CASES = {
    "refund with amount": (
        ("Refund please", "The item arrived broken.", 1234),
        (Category.REFUND, 0.95, ActionKind.REFUND),
    ),
    "money back": (
        ("Order", "I want my MONEY BACK", 500),
        (Category.REFUND, 0.95, ActionKind.REFUND),
    ),
    "reimbursed": (
        ("Travel", "Please get me reimbursed", 700),
        (Category.REFUND, 0.95, ActionKind.REFUND),
    ),
    "refund without amount": (
        ("Refunds?", "How do refunds work?", None),
        (Category.REFUND, 0.6, ActionKind.REPLY_ONLY),
    ),
    "refund of zero": (("refund", "x", 0), (Category.REFUND, 0.6, ActionKind.REPLY_ONLY)),
    "billing": (
        ("Invoice", "Where is my invoice?", None),
        (Category.BILLING, 0.92, ActionKind.REPLY_ONLY),
    ),
    "charged": (
        ("Card", "I was charged twice", None),
        (Category.BILLING, 0.92, ActionKind.REPLY_ONLY),
    ),
    "payments": (("Q", "Failed payments", 100), (Category.BILLING, 0.92, ActionKind.REPLY_ONLY)),
    "technical": (
        ("App crashes", "on start", None),
        (Category.TECHNICAL, 0.9, ActionKind.REPLY_ONLY),
    ),
    "not working": (
        ("Sync", "it is not  working", None),
        (Category.TECHNICAL, 0.9, ActionKind.REPLY_ONLY),
    ),
    "account password": (
        ("Forgot password", "help", None),
        (Category.ACCOUNT, 0.93, ActionKind.REPLY_ONLY),
    ),
    "log-in": (
        ("Cannot log-in", "since Monday", None),
        (Category.ACCOUNT, 0.93, ActionKind.REPLY_ONLY),
    ),
    "sign in": (("x", "I cannot Sign In", None), (Category.ACCOUNT, 0.93, ActionKind.REPLY_ONLY)),
    "no match": (
        ("Hello", "Nice product, thanks!", None),
        (Category.OTHER, 0.4, ActionKind.REPLY_ONLY),
    ),
    "substring is no word": (
        ("Debugging", "my accountant likes surcharges", None),
        (Category.OTHER, 0.4, ActionKind.REPLY_ONLY),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_primary_rules(case: tuple) -> None:
    (subject, body, cents), (category, confidence, action) = case
    c = await PRIMARY.classify(ticket(subject, body, refund=cents))
    assert (c.category, c.confidence, c.action) == (category, confidence, action)
    assert c.refund_cents == (cents if action is ActionKind.REFUND else None)
    assert (c.model, c.tier) == ("mock-primary-1", ModelTier.PRIMARY)
    assert c.rationale


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_fallback_same_answer_lower_confidence(case: tuple) -> None:
    (subject, body, cents), (category, confidence, action) = case
    c = await FALLBACK.classify(ticket(subject, body, refund=cents))
    assert (c.category, c.action) == (category, action)
    assert c.confidence == min(confidence, FALLBACK_MAX_CONFIDENCE) < 0.5
    assert (c.model, c.tier) == ("mock-fallback-1", ModelTier.FALLBACK)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("refund the double charge, the app has an error, password reset", Category.REFUND),
        ("payment error on my account", Category.BILLING),
        ("login error", Category.TECHNICAL),
        ("account password", Category.ACCOUNT),
    ],
)
def test_precedence_refund_billing_technical_account(text: str, category: Category) -> None:
    assert classify_text(text)[0] is category


async def test_clear_match_on_primary_is_confident() -> None:
    for subject in ("refund", "invoice", "crash", "password"):
        assert (await PRIMARY.classify(ticket(subject, "x", refund=100))).confidence >= 0.9


def test_mock_is_an_agent() -> None:
    assert isinstance(PRIMARY, Agent)


@pytest.mark.parametrize(
    ("cents", "text"),
    [(0, "$0.00"), (5, "$0.05"), (99, "$0.99"), (1234, "$12.34"), (100_000_000, "$1,000,000.00")],
)
def test_format_cents(cents: int, text: str) -> None:
    assert format_cents(cents) == text


@pytest.mark.parametrize("bad", [12.34, True, "1234"])
def test_format_cents_refuses_non_integers(bad: object) -> None:
    with pytest.raises(TypeError):
        format_cents(bad)  # type: ignore[arg-type]


def test_format_cents_refuses_negative() -> None:
    with pytest.raises(ValueError):
        format_cents(-1)


async def test_refund_draft_mentions_amount_and_order() -> None:
    t = ticket("Refund", "broken on arrival", refund=1234, order_id="o-9")
    draft = await PRIMARY.draft_reply(t, await PRIMARY.classify(t))
    assert "$12.34" in draft.text and "o-9" in draft.text and "t-1" in draft.text
    assert (draft.model, draft.tier) == ("mock-primary-1", ModelTier.PRIMARY)


async def test_drafts_are_deterministic_and_differ_per_category() -> None:
    texts: dict[Category, set[str]] = {}
    for (subject, body, cents), (category, _, _) in CASES.values():
        t = ticket(subject, body, refund=cents)
        first = await FALLBACK.draft_reply(t, await FALLBACK.classify(t))
        again = await MockAgent(ModelTier.FALLBACK).draft_reply(t, await FALLBACK.classify(t))
        assert first == again
        assert first.tier is ModelTier.FALLBACK and first.model == "mock-fallback-1"
        texts.setdefault(category, set()).add(first.text.split("\n\n")[2])
    assert set(texts) == set(Category)
    all_bodies = [body for bodies in texts.values() for body in bodies]
    assert len(all_bodies) == len(set(all_bodies))  # no two categories share a reply


async def test_refund_action_without_amount_cannot_be_drafted() -> None:
    bad = Classification(
        category=Category.REFUND, confidence=0.95, action=ActionKind.REFUND, model="m"
    )
    with pytest.raises(InvalidAgentInputError):
        await PRIMARY.draft_reply(ticket("refund"), bad)


def _pattern(agent: MockAgent) -> list[bool]:
    return [
        agent.fails(f"t-{n}", call, attempt)
        for n in range(50)
        for call in ("classify", "draft_reply")
        for attempt in (1, 2, 3)
    ]


def test_failures_are_deterministic_per_seed() -> None:
    a = _pattern(MockAgent(ModelTier.PRIMARY, failure_rate=0.5, seed=7))
    assert a == _pattern(MockAgent(ModelTier.PRIMARY, failure_rate=0.5, seed=7))
    assert True in a and False in a
    assert a != _pattern(MockAgent(ModelTier.PRIMARY, failure_rate=0.5, seed=8))
    assert a != _pattern(MockAgent(ModelTier.FALLBACK, failure_rate=0.5, seed=7))


def test_failure_rate_extremes() -> None:
    assert all(_pattern(MockAgent(ModelTier.PRIMARY, failure_rate=1.0, seed=3)))
    assert not any(_pattern(MockAgent(ModelTier.PRIMARY, failure_rate=0.0, seed=3)))


async def test_injected_failure_raises_transient_error_as_predicted() -> None:
    agent = MockAgent(ModelTier.PRIMARY, failure_rate=0.5, seed=1)
    t = ticket("invoice")
    for attempt in range(1, 11):
        if agent.fails(t.ticket_id, "classify", attempt):
            with pytest.raises(TransientModelError):
                await agent.classify(t, attempt=attempt)
        else:
            assert (await agent.classify(t, attempt=attempt)).category is Category.BILLING
    always = MockAgent(ModelTier.FALLBACK, failure_rate=1.0)
    with pytest.raises(TransientModelError):
        await always.draft_reply(t, await FALLBACK.classify(t), attempt=4)


async def test_latency_is_cancellable() -> None:
    slow = MockAgent(ModelTier.PRIMARY, latency_ms=600_000)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await slow.classify(ticket())


def test_jitter_spreads_latency_uniformly_and_deterministically() -> None:
    agent = MockAgent(ModelTier.PRIMARY, latency_ms=100, jitter_ms=3000, seed=5)
    delays = [agent.delay_ms(f"t-{n}", "classify", 1) for n in range(400)]
    assert delays == [
        MockAgent(ModelTier.PRIMARY, latency_ms=100, jitter_ms=3000, seed=5).delay_ms(
            f"t-{n}", "classify", 1
        )
        for n in range(400)
    ]
    assert all(100 <= d < 3100 for d in delays)
    # Spread over the whole range: every tenth of it is hit.
    assert {int((d - 100) // 300) for d in delays} == set(range(10))
    # Retries draw again; no jitter means the fixed latency.
    assert agent.delay_ms("t-1", "classify", 1) != agent.delay_ms("t-1", "classify", 2)
    assert MockAgent(ModelTier.PRIMARY, latency_ms=100).delay_ms("t-1", "classify", 1) == 100


@pytest.mark.parametrize(
    "kwargs",
    [{"latency_ms": -1}, {"jitter_ms": -1}, {"failure_rate": 1.01}, {"failure_rate": -0.1}],
)
def test_bad_knobs_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        MockAgent(ModelTier.PRIMARY, **kwargs)
