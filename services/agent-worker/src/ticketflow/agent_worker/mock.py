"""A deterministic stand-in for a language model, so tests and benchmarks are exact.

Classification: keyword rules on subject + body, case-insensitive, matched on word boundaries with
common English endings ("refunds", "charged", "crashing"; spaces and hyphens interchangeable, so
"log-in" counts as "log in"). Precedence, first match wins:

1. refund    ("refund", "money back", "reimburse"): money leaves the company, the riskiest action,
             so it must never hide behind another category. 0.95 with action REFUND when a positive
             amount was requested; otherwise 0.6, reply only, so a human looks.
2. billing   ("invoice", "charge", "charged", "billing", "payment"): 0.92, reply only.
3. technical ("error", "crash", "bug", "not working", "broken"): 0.90, reply only.
4. account   ("password", "login", "log in", "sign in", "account"): 0.93, reply only. Last because
             "account" appears in almost every ticket ("my account was charged twice" is billing).
5. other     no match: 0.4, below any sensible approval threshold.

The FALLBACK tier answers the same category and action with confidence capped at 0.45, so its
answers always need a human.

Injected latency: ``latency_ms`` plus, with ``jitter_ms``, a uniform extra in [0, jitter_ms) drawn
the same way as the faults below (a benchmark's "0-3 s model" is latency 0, jitter 3000).

Injected faults: after the latency (a cancellable sleep), a call fails with
``TransientModelError`` when a number drawn from SHA-256 of (seed, tier, ticket_id, call, attempt)
falls below ``failure_rate``. No global RNG state: the same inputs fail the same way in any order,
in any process. The tier is part of the key so the two models fail independently.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass

from ticketflow.contracts import ActionKind, Category, Classification, Draft, ModelTier, Ticket

from .agent import InvalidAgentInputError, TransientModelError

__all__ = [
    "FALLBACK_MAX_CONFIDENCE",
    "MockAgent",
    "classify_text",
    "format_cents",
    "model_name",
]

FALLBACK_MAX_CONFIDENCE = 0.45
REFUND_WITHOUT_AMOUNT_CONFIDENCE = 0.6
NO_MATCH_CONFIDENCE = 0.4

_ENDINGS = r"(?:s|es|d|ed|ing|ment)?"


@dataclass(frozen=True)
class _Rule:
    category: Category
    confidence: float
    pattern: re.Pattern[str]


def _rule(category: Category, confidence: float, *keywords: str) -> _Rule:
    alternatives = "|".join(r"[\s-]+".join(map(re.escape, kw.split())) for kw in keywords)
    return _Rule(category, confidence, re.compile(rf"\b(?:{alternatives}){_ENDINGS}\b", re.I))


_RULES: tuple[_Rule, ...] = (
    _rule(Category.REFUND, 0.95, "refund", "money back", "reimburse"),
    _rule(Category.BILLING, 0.92, "invoice", "charge", "charged", "billing", "payment"),
    _rule(Category.TECHNICAL, 0.90, "error", "crash", "bug", "not working", "broken"),
    _rule(Category.ACCOUNT, 0.93, "password", "login", "log in", "sign in", "account"),
)


def model_name(tier: ModelTier) -> str:
    return f"mock-{ModelTier(tier).value}-1"


def format_cents(cents: int) -> str:
    """Integer cents as dollars: 1234 -> "$12.34", 123456789 -> "$1,234,567.89"."""
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise TypeError(f"money is integer cents, got {type(cents).__name__}")
    if cents < 0:
        raise ValueError(f"negative amount: {cents}")
    dollars, rest = divmod(cents, 100)
    return f"${dollars:,}.{rest:02d}"


def classify_text(text: str) -> tuple[Category, float, str | None]:
    """The primary model's rule: (category, confidence, matched phrase or None)."""
    for rule in _RULES:
        if m := rule.pattern.search(text):
            return rule.category, rule.confidence, m.group(0)
    return Category.OTHER, NO_MATCH_CONFIDENCE, None


def _unit_interval(*key: object) -> float:
    """A uniform number in [0, 1) fixed by ``key``."""
    digest = hashlib.sha256("\x1f".join(map(str, key)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class MockAgent:
    """Deterministic ``Agent``: keyword classification, template replies, injected latency/faults."""

    def __init__(
        self,
        tier: ModelTier,
        latency_ms: float = 0,
        failure_rate: float = 0.0,
        seed: int = 0,
        jitter_ms: float = 0,
    ) -> None:
        if latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {latency_ms}")
        if jitter_ms < 0:
            raise ValueError(f"jitter_ms must be >= 0, got {jitter_ms}")
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be within [0, 1], got {failure_rate}")
        self.tier = ModelTier(tier)
        self.name = model_name(self.tier)
        self.latency_ms = latency_ms
        self.jitter_ms = jitter_ms
        self.failure_rate = failure_rate
        self.seed = seed

    def __repr__(self) -> str:
        return (
            f"MockAgent(tier={self.tier.value!r}, latency_ms={self.latency_ms}, "
            f"jitter_ms={self.jitter_ms}, "
            f"failure_rate={self.failure_rate}, seed={self.seed})"
        )

    def fails(self, ticket_id: str, call: str, attempt: int) -> bool:
        """Whether ``call`` on this ticket fails at this attempt (pure; exposed for tests)."""
        return _unit_interval(self.seed, self.tier.value, ticket_id, call, attempt) < (
            self.failure_rate
        )

    def delay_ms(self, ticket_id: str, call: str, attempt: int) -> float:
        """How long ``call`` takes on this ticket at this attempt (pure; exposed for tests)."""
        if not self.jitter_ms:
            return self.latency_ms
        draw = _unit_interval(self.seed, self.tier.value, ticket_id, call, attempt, "latency")
        return self.latency_ms + draw * self.jitter_ms

    async def _model_call(self, ticket_id: str, call: str, attempt: int) -> None:
        if attempt < 1:
            raise InvalidAgentInputError(f"attempt must be >= 1, got {attempt}")
        await asyncio.sleep(self.delay_ms(ticket_id, call, attempt) / 1000)
        if self.fails(ticket_id, call, attempt):
            raise TransientModelError(
                f"{self.name}: injected transient failure ({call}, ticket {ticket_id}, "
                f"attempt {attempt})"
            )

    async def classify(self, ticket: Ticket, *, attempt: int = 1) -> Classification:
        await self._model_call(ticket.ticket_id, "classify", attempt)
        category, confidence, matched = classify_text(f"{ticket.subject}\n{ticket.body}")
        action, refund_cents = ActionKind.REPLY_ONLY, None
        if category is Category.REFUND:
            requested = ticket.requested_refund_cents
            if requested:
                action, refund_cents = ActionKind.REFUND, requested
            else:
                confidence = REFUND_WITHOUT_AMOUNT_CONFIDENCE
        if self.tier is ModelTier.FALLBACK:
            confidence = min(confidence, FALLBACK_MAX_CONFIDENCE)
        rationale = (
            f"matched {matched!r} (rule {category.value})" if matched else "no keyword matched"
        )
        if category is Category.REFUND and refund_cents is None:
            rationale += "; no refund amount requested"
        return Classification(
            category=category,
            confidence=confidence,
            action=action,
            refund_cents=refund_cents,
            model=self.name,
            tier=self.tier,
            rationale=rationale,
        )

    async def draft_reply(
        self, ticket: Ticket, classification: Classification, *, attempt: int = 1
    ) -> Draft:
        if classification.action is ActionKind.REFUND and not classification.refund_cents:
            raise InvalidAgentInputError(
                f"ticket {ticket.ticket_id}: a refund action needs a positive refund_cents"
            )
        await self._model_call(ticket.ticket_id, "draft_reply", attempt)
        return Draft(text=_reply_text(ticket, classification), model=self.name, tier=self.tier)


_SIGNATURE = "Best regards,\nticketflow support"


def _reply_text(ticket: Ticket, c: Classification) -> str:
    about_order = f" about order {ticket.order_id}" if ticket.order_id else ""
    if c.action is ActionKind.REFUND and c.refund_cents:
        body = (
            f"Thank you for contacting us{about_order}. We have approved a refund of "
            f"{format_cents(c.refund_cents)} to your original payment method; it usually appears "
            "within 5-10 business days."
        )
    elif c.category is Category.REFUND:
        body = (
            f"We're sorry to hear you would like a refund{about_order}. Please reply with the "
            "order number and the amount you would like refunded, and we will review it promptly."
        )
    elif c.category is Category.BILLING:
        body = (
            "Thanks for reaching out about your billing question. We are reviewing the charges "
            "on your account and will correct anything that is wrong. If you have the invoice "
            "number to hand, replying with it will speed things up."
        )
    elif c.category is Category.TECHNICAL:
        body = (
            "Sorry for the trouble. We have passed the problem you describe to our engineers. "
            "Meanwhile, please update to the latest version and restart the app; if the problem "
            "persists, reply with the exact error message you see."
        )
    elif c.category is Category.ACCOUNT:
        body = (
            "To regain access, use the 'Forgot password' link on the sign-in page; the reset "
            "email arrives within a few minutes. If it does not, check your spam folder or reply "
            "here and we will help you."
        )
    else:
        body = (
            "Thank you for your message. A member of our team will read it and get back to you "
            "shortly."
        )
    return f'Hello,\n\nRe: "{ticket.subject}" (ticket {ticket.ticket_id})\n\n{body}\n\n{_SIGNATURE}'
