"""What the console's pages show, computed from the api's own answers (`TicketView`,
`TicketSummary`): money in the currency, ages and time left in words a person reads at a glance."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from ticketflow.contracts import Decision

from ..errors import ApiError
from ..schemas import TicketSummary, TicketView

__all__ = [
    "QueueRow",
    "conflict_message",
    "decision_words",
    "duration",
    "fingerprint",
    "money",
    "queue_row",
]


def money(cents: int | None, currency: str) -> str:
    """`25000` -> `250.00 USD`; None -> an em dash."""
    if cents is None:
        return "—"
    return f"{cents / 100:,.2f} {currency}"


def duration(seconds: float) -> str:
    """A span in the two largest units: `2 d 3 h`, `5 h 12 min`, `4 min`, `less than a minute`."""
    seconds = int(seconds)
    if seconds < 60:
        return "less than a minute"
    minutes, _ = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def time_left(deadline: datetime | None, now: datetime) -> tuple[str, bool]:
    """(words, urgent): what is left before the ticket escalates; urgent under an hour."""
    if deadline is None:
        return "—", False
    left = (deadline - now).total_seconds()
    if left <= 0:
        return "escalating now", True
    return duration(left), left < 3600


def decision_words(decision: Decision) -> str:
    verdict = "approved" if decision.approved else "rejected"
    who = "automatically by policy" if decision.auto else f"by {decision.approver}"
    return f"{verdict} {who}"


@dataclass(frozen=True, slots=True)
class QueueRow:
    ticket_id: str
    subject: str
    category: str
    tier: str
    confidence: str
    refund: str
    age: str
    time_left: str
    urgent: bool
    problem: str = ""


def queue_row(
    summary: TicketSummary, view: TicketView | ApiError, currency: str, now: datetime
) -> QueueRow:
    """One line of the approval queue; a ticket whose state could not be read still shows."""
    started = summary.started_at
    age = duration((now - started).total_seconds()) if started else "—"
    if isinstance(view, ApiError):
        return QueueRow(
            summary.ticket_id, "", "—", "—", "—", "—", age, "—", False, problem=view.message
        )
    c = view.classification
    left, urgent = time_left(view.approval_deadline, now)
    return QueueRow(
        ticket_id=summary.ticket_id,
        subject=view.ticket.subject,
        category=c.category.value if c else "—",
        tier=c.tier.value if c else "—",
        confidence=f"{c.confidence:.0%}" if c else "—",
        refund=money(c.refund_cents if c else None, currency),
        age=age,
        time_left=left,
        urgent=urgent,
    )


def fingerprint(items: list[tuple[str, str]], total: int) -> str:
    """A short hash of what a page shows: the page script reloads it when this changes."""
    raw = "|".join(f"{a}:{b}" for a, b in items) + f"#{total}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def conflict_message(view: TicketView | None, me: str, fallback: str) -> str:
    """Why a decision was refused, said plainly from the ticket's state now."""
    if view is None:
        return fallback
    d = view.decision
    if d is not None and not d.auto and d.approver != me:
        why = f" ({d.reason})" if d.reason else ""
        return (
            f"{d.approver} already {'approved' if d.approved else 'rejected'} this ticket at "
            f"{when(d.decided_at)}{why}. Your decision was not recorded."
        )
    if d is not None and d.approver == me:
        return (
            f"You already {'approved' if d.approved else 'rejected'} this ticket at "
            f"{when(d.decided_at)} with another reason; your new decision was not recorded."
        )
    if view.status.value == "ESCALATED":
        why = f": {view.escalation_reason}" if view.escalation_reason else ""
        return f"The approval window closed: the ticket was escalated{why}. Your decision was not recorded."
    return f"{fallback} Your decision was not recorded."


def when(value: datetime | None) -> str:
    """`2026-01-01 12:05:00 UTC`."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
