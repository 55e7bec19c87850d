"""The refund ledger: tables ``refunds`` and ``refund_attempts`` of the ledger store (``ledger.db``
or PostgreSQL; schema in ``migrations/``).

Effectively once (docs/architecture.md, "Side effects: effectively once"): ``refunds`` is keyed by
ticket_id (the idempotency key). Each call writes its attempt row and, at most once per ticket, the
refund row, in ONE transaction. A retried activity (say the worker died after COMMIT but before
Temporal heard the result) finds the refund row, adds only an attempt row, and answers with the
original receipt: a retry pays nothing. A refund of another amount for a refunded ticket is refused
(``LedgerConflict``).

Safe with several writers on PostgreSQL without a lock of ours: the refund row is INSERTed with
``ON CONFLICT DO NOTHING``, so of concurrent first attempts exactly one inserts (the others wait
on the unique index until it commits, then insert nothing); whoever did not insert reads the
committed row. No conflict target on purpose: ``refund_id`` is unique too and derived from the
ticket_id, and a concurrent insert may meet that index first; with ``ON CONFLICT (ticket_id)``
it raised a UniqueViolation on ``refunds_refund_id_key`` instead of waiting (seen in CI). On
SQLite the ``BEGIN IMMEDIATE`` transaction already serialises them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from ._store import UNIDENTIFIED, AttemptInfo, StoreUser, effect_id, now_iso

__all__ = ["AttemptInfo", "LedgerConflict", "RefundLedger", "RefundRow"]


class LedgerConflict(Exception):
    """The ticket was already refunded a different amount."""


@dataclass(frozen=True)
class RefundRow:
    ticket_id: str
    refund_id: str
    amount_cents: int
    created_at: datetime
    already_applied: bool


class RefundLedger(StoreUser):
    """Refunds, at most one per ticket, and every attempt to issue one."""

    def apply_refund(
        self,
        *,
        ticket_id: str,
        customer_id: str,
        order_id: str | None,
        amount_cents: int,
        who: AttemptInfo = UNIDENTIFIED,
    ) -> RefundRow:
        if type(amount_cents) is not int or amount_cents <= 0:
            raise ValueError(f"amount_cents must be a positive integer, got {amount_cents!r}")
        with self.store.transaction() as conn:
            refund_id, created_at = effect_id("rf", ticket_id), now_iso()
            inserted = conn.execute(
                _INSERT_REFUND,
                {
                    "ticket_id": ticket_id,
                    "refund_id": refund_id,
                    "customer_id": customer_id,
                    "order_id": order_id,
                    "amount_cents": amount_cents,
                    "workflow_id": who.workflow_id,
                    "created_at": created_at,
                },
            ).first()
            if inserted is not None:
                result, existing_amount = "applied", amount_cents
            else:
                row = conn.execute(_SELECT_REFUND, {"ticket_id": ticket_id}).one()
                refund_id, existing_amount, created_at = row
                result = "already_applied" if existing_amount == amount_cents else "conflict"
            conn.execute(
                _INSERT_ATTEMPT,
                {
                    "ticket_id": ticket_id,
                    "amount_cents": amount_cents,
                    "workflow_id": who.workflow_id,
                    "run_id": who.run_id,
                    "activity_id": who.activity_id,
                    "attempt": who.attempt,
                    "result": result,
                    "at": now_iso(),
                },
            )
        # The conflict's attempt row is committed above: the refusal is part of the audit trail.
        if result == "conflict":
            raise LedgerConflict(
                f"ticket {ticket_id} was already refunded {existing_amount} cents; "
                f"refusing a second refund of {amount_cents} cents"
            )
        return RefundRow(
            ticket_id=ticket_id,
            refund_id=refund_id,
            amount_cents=existing_amount,
            created_at=datetime.fromisoformat(created_at),
            already_applied=result == "already_applied",
        )


_INSERT_REFUND = text(
    "INSERT INTO refunds (ticket_id, refund_id, customer_id, order_id, amount_cents, workflow_id,"
    " created_at) VALUES (:ticket_id, :refund_id, :customer_id, :order_id, :amount_cents,"
    " :workflow_id, :created_at) ON CONFLICT DO NOTHING RETURNING refund_id"
)
_SELECT_REFUND = text(
    "SELECT refund_id, amount_cents, created_at FROM refunds WHERE ticket_id = :ticket_id"
)
_INSERT_ATTEMPT = text(
    "INSERT INTO refund_attempts (ticket_id, amount_cents, workflow_id, run_id, activity_id,"
    " attempt, result, at) VALUES (:ticket_id, :amount_cents, :workflow_id, :run_id,"
    " :activity_id, :attempt, :result, :at)"
)
