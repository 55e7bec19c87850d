"""The refund ledger and the reply outbox: SQLite, owned by core-worker.

Effectively-once: ``refunds`` and ``replies`` are keyed by ticket_id (the idempotency key). Each call
writes its attempt row and, at most once per ticket, the effect row, in ONE transaction. A retried
activity (say the worker died after COMMIT but before Temporal heard the result) finds the effect
row, adds only an attempt row, and answers with the original receipt.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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
CREATE TABLE IF NOT EXISTS replies (
    ticket_id    TEXT PRIMARY KEY,
    reply_id     TEXT NOT NULL UNIQUE,
    customer_id  TEXT NOT NULL,
    kind         TEXT NOT NULL,
    body         TEXT NOT NULL,
    workflow_id  TEXT,
    created_at   TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS reply_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    workflow_id  TEXT,
    run_id       TEXT,
    activity_id  TEXT,
    attempt      INTEGER,
    result       TEXT NOT NULL CHECK (result IN ('sent', 'already_sent', 'conflict')),
    at           TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS reply_attempts_ticket ON reply_attempts (ticket_id);
"""


class LedgerConflict(Exception):
    """The idempotency key is taken by a different effect (other amount or reply kind)."""


@dataclass(frozen=True)
class AttemptInfo:
    """Who is asking: recorded with every attempt, for audit."""

    workflow_id: str | None = None
    run_id: str | None = None
    activity_id: str | None = None
    attempt: int | None = None


@dataclass(frozen=True)
class RefundRow:
    ticket_id: str
    refund_id: str
    amount_cents: int
    created_at: datetime
    already_applied: bool


@dataclass(frozen=True)
class ReplyRow:
    ticket_id: str
    reply_id: str
    kind: str
    created_at: datetime
    already_sent: bool


def _effect_id(prefix: str, ticket_id: str) -> str:
    # Deterministic: the same ticket always maps to the same refund/reply id.
    return f"{prefix}_{hashlib.sha256(ticket_id.encode()).hexdigest()[:20]}"


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Ledger:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One connection per call: activities run on a thread pool. Autocommit mode, explicit
        # BEGIN IMMEDIATE so the read-check-write below is one serialised transaction.
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One serialised write transaction: the effect row and its attempt row commit together."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def apply_refund(
        self,
        *,
        ticket_id: str,
        customer_id: str,
        order_id: str | None,
        amount_cents: int,
        who: AttemptInfo = AttemptInfo(),
    ) -> RefundRow:
        if type(amount_cents) is not int or amount_cents <= 0:
            raise ValueError(f"amount_cents must be a positive integer, got {amount_cents!r}")
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT refund_id, amount_cents, created_at FROM refunds WHERE ticket_id = ?",
                (ticket_id,),
            ).fetchone()
            if row is None:
                refund_id, created_at = _effect_id("rf", ticket_id), _now()
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
                    _now(),
                ),
            )
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

    def send_reply(
        self,
        *,
        ticket_id: str,
        customer_id: str,
        kind: str,
        body: str,
        who: AttemptInfo = AttemptInfo(),
    ) -> ReplyRow:
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT reply_id, kind, created_at FROM replies WHERE ticket_id = ?",
                (ticket_id,),
            ).fetchone()
            if row is None:
                reply_id, created_at = _effect_id("rp", ticket_id), _now()
                conn.execute(
                    "INSERT INTO replies (ticket_id, reply_id, customer_id, kind, body,"
                    " workflow_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (ticket_id, reply_id, customer_id, kind, body, who.workflow_id, created_at),
                )
                result, existing_kind = "sent", kind
            else:
                reply_id, existing_kind, created_at = row
                result = "already_sent" if existing_kind == kind else "conflict"
            conn.execute(
                "INSERT INTO reply_attempts (ticket_id, kind, workflow_id, run_id, activity_id,"
                " attempt, result, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ticket_id,
                    kind,
                    who.workflow_id,
                    who.run_id,
                    who.activity_id,
                    who.attempt,
                    result,
                    _now(),
                ),
            )
        return ReplyRow(
            ticket_id=ticket_id,
            reply_id=reply_id,
            kind=existing_kind,
            created_at=datetime.fromisoformat(created_at),
            # One reply per ticket, ever: a second one of another kind (say the ticket's history
            # was deleted and the id ran again) is not sent; the first one is the answer.
            already_sent=result != "sent",
        )
