"""The refund ledger: SQLite tables ``refunds`` and ``refund_attempts`` in ``ledger.db``.

Effectively once (docs/architecture.md, "Side effects: effectively once"): ``refunds`` is keyed by
ticket_id (the idempotency key). Each call writes its attempt row and, at most once per ticket, the
refund row, in ONE transaction. A retried activity (say the worker died after COMMIT but before
Temporal heard the result) finds the refund row, adds only an attempt row, and answers with the
original receipt: a retry pays nothing. A refund of another amount for a refunded ticket is refused
(``LedgerConflict``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ._sqlite import UNIDENTIFIED, AttemptInfo, SqliteStore, effect_id, now_iso

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


class RefundLedger(SqliteStore):
    """Refunds, at most one per ticket, and every attempt to issue one."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS refunds (
        ticket_id    TEXT PRIMARY KEY,
        refund_id    TEXT NOT NULL UNIQUE,
        customer_id  TEXT NOT NULL,
        order_id     TEXT,
        amount_cents INTEGER NOT NULL CHECK (typeof(amount_cents) = 'integer' AND amount_cents > 0),
        workflow_id  TEXT,
        created_at   TEXT NOT NULL
    ) STRICT;
    CREATE TABLE IF NOT EXISTS refund_attempts (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        ticket_id    TEXT NOT NULL,
        amount_cents INTEGER NOT NULL,
        workflow_id  TEXT,
        run_id       TEXT,
        activity_id  TEXT,
        attempt      INTEGER,
        result       TEXT NOT NULL CHECK (result IN ('applied', 'already_applied', 'conflict')),
        at           TEXT NOT NULL
    ) STRICT;
    CREATE INDEX IF NOT EXISTS refund_attempts_ticket ON refund_attempts (ticket_id);
    """

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
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT refund_id, amount_cents, created_at FROM refunds WHERE ticket_id = ?",
                (ticket_id,),
            ).fetchone()
            if row is None:
                refund_id, created_at = effect_id("rf", ticket_id), now_iso()
                conn.execute(
                    "INSERT INTO refunds (ticket_id, refund_id, customer_id, order_id,"
                    " amount_cents, workflow_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        ticket_id,
                        refund_id,
                        customer_id,
                        order_id,
                        amount_cents,
                        who.workflow_id,
                        created_at,
                    ),
                )
                result, existing_amount = "applied", amount_cents
            else:
                refund_id, existing_amount, created_at = row
                result = "already_applied" if existing_amount == amount_cents else "conflict"
            conn.execute(
                "INSERT INTO refund_attempts (ticket_id, amount_cents, workflow_id, run_id,"
                " activity_id, attempt, result, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ticket_id,
                    amount_cents,
                    who.workflow_id,
                    who.run_id,
                    who.activity_id,
                    who.attempt,
                    result,
                    now_iso(),
                ),
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
