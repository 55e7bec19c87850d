"""How the operator CLI shows the api's answers to a person (``--json`` prints them as they are)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["decision_text", "ticket_table", "ticket_text"]


def ticket_table(tickets: Sequence[Mapping[str, Any]]) -> str:
    """One line per ticket, columns aligned."""
    header = ("TICKET", "STATUS", "WORKFLOW", "STARTED", "CLOSED")
    rows = [
        (
            str(t.get("ticket_id", "")),
            str(t.get("status") or "-"),
            str(t.get("workflow_status") or "-"),
            _when(t.get("started_at")),
            _when(t.get("closed_at")),
        )
        for t in tickets
    ]
    return _columns([header, *rows])


def ticket_text(view: Mapping[str, Any]) -> str:
    """A ticket's state as "field: value" lines, the ones that are set."""
    ticket = view.get("ticket") or {}
    lines: list[tuple[str, str]] = [
        ("ticket", str(view.get("ticket_id", ""))),
        ("status", str(view.get("status", ""))),
        ("customer", str(ticket.get("customer_id", ""))),
        ("subject", str(ticket.get("subject", ""))),
        ("body", str(ticket.get("body", ""))),
    ]
    if ticket.get("order_id"):
        lines.append(("order", str(ticket["order_id"])))
    if ticket.get("requested_refund_cents") is not None:
        lines.append(("requested refund", _cents(ticket["requested_refund_cents"])))
    if ticket.get("submitted_at"):
        lines.append(("submitted", _when(ticket["submitted_at"])))
    if c := view.get("classification"):
        refund = f", refund {_cents(c['refund_cents'])}" if c.get("refund_cents") else ""
        lines.append(
            (
                "classification",
                f"{c.get('category')} -> {c.get('action')}{refund} "
                f"(confidence {c.get('confidence')}, {c.get('model')}/{c.get('tier')})",
            )
        )
    if view.get("accepting_decisions"):
        deadline = view.get("approval_deadline")
        until = f" until {_when(deadline)}" if deadline else ""
        lines.append(("waiting for", f"a decision{until}: ticketflow tickets approve|reject"))
    if d := view.get("decision"):
        lines.append(("decision", decision_text(d)))
    if r := view.get("refund"):
        again = " (already applied)" if r.get("already_applied") else ""
        lines.append(("refund", f"{_cents(r.get('amount_cents'))} as {r.get('refund_id')}{again}"))
    if r := view.get("reply"):
        lines.append(("reply", _reply(r)))
    if view.get("escalation_reason"):
        lines.append(("escalated", str(view["escalation_reason"])))
    if d := view.get("duplicate_of"):
        lines.append(("duplicate of", str(d)))
    lines.append(("source", str(view.get("source", ""))))
    return _pairs(lines)


def decision_text(decision: Mapping[str, Any]) -> str:
    verdict = "approved" if decision.get("approved") else "rejected"
    who = "automatically" if decision.get("auto") else f"by {decision.get('approver')}"
    reason = f": {decision['reason']}" if decision.get("reason") else ""
    return f"{verdict} {who} at {_when(decision.get('decided_at'))}{reason}"


def _reply(reply: Mapping[str, Any]) -> str:
    return f"{reply.get('kind')} as {reply.get('reply_id')} at {_when(reply.get('created_at'))}"


def _when(value: Any) -> str:
    """An ISO timestamp shortened for a table: date and time to the second, "Z" for UTC."""
    if not value:
        return "-"
    text = str(value).replace("T", " ")
    head, dot, rest = text.partition(".")
    if dot:
        zone = "".join(ch for ch in rest if not ch.isdigit())
        text = head + zone
    return text.replace("+00:00", "Z")


def _cents(value: Any) -> str:
    try:
        return f"{int(value) / 100:.2f}"
    except (TypeError, ValueError):
        return str(value)


def _pairs(lines: Iterable[tuple[str, str]]) -> str:
    items = list(lines)
    width = max(len(k) for k, _ in items) + 1
    return "\n".join(f"{(k + ':').ljust(width)} {v}" for k, v in items)


def _columns(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
