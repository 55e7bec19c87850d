"""The reply outbox: tables ``replies`` and ``reply_attempts`` of the ledger store (``ledger.db``
or PostgreSQL; schema in ``migrations/``).

Effectively once (docs/architecture.md, "Side effects: effectively once"): ``replies`` is keyed by
ticket_id. Each call writes its attempt row and, at most once per ticket, the reply row, in ONE
transaction; a retry finds the row and answers with the original receipt (``already_sent``). One
reply per ticket, ever: a reply of another kind for a ticket that has one is not sent, the first
one is the answer (its attempt is logged as ``conflict``). Concurrent writers on PostgreSQL: the
reply row is INSERTed ``ON CONFLICT DO NOTHING`` (any unique key: ticket_id or the reply_id derived
from it), as in the refund ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from ._store import UNIDENTIFIED, AttemptInfo, StoreUser, effect_id, now_iso

__all__ = ["AttemptInfo", "EarlierReply", "ReplyOutbox", "ReplyRow"]


@dataclass(frozen=True)
class ReplyRow:
    ticket_id: str
    reply_id: str
    kind: str
    created_at: datetime
    already_sent: bool


@dataclass(frozen=True)
class EarlierReply:
    """The reply row of a ticket_id: the end its run reached, and with which content."""

    ticket_id: str
    reply_id: str
    kind: str
    created_at: datetime
    content_sha256: str | None  # None: sent before the outbox kept fingerprints


class ReplyOutbox(StoreUser):
    """Replies to customers, one per ticket, and every attempt to send one."""

    def send_reply(
        self,
        *,
        ticket_id: str,
        customer_id: str,
        kind: str,
        body: str,
        content_sha256: str | None = None,
        who: AttemptInfo = UNIDENTIFIED,
    ) -> ReplyRow:
        with self.store.transaction() as conn:
            reply_id, created_at = effect_id("rp", ticket_id), now_iso()
            inserted = conn.execute(
                _INSERT_REPLY,
                {
                    "ticket_id": ticket_id,
                    "reply_id": reply_id,
                    "customer_id": customer_id,
                    "kind": kind,
                    "body": body,
                    "workflow_id": who.workflow_id,
                    "created_at": created_at,
                    "content_sha256": content_sha256,
                },
            ).first()
            if inserted is not None:
                result, existing_kind = "sent", kind
            else:
                row = conn.execute(_SELECT_REPLY, {"ticket_id": ticket_id}).one()
                reply_id, existing_kind, created_at, _ = row
                result = "already_sent" if existing_kind == kind else "conflict"
            conn.execute(
                _INSERT_ATTEMPT,
                {
                    "ticket_id": ticket_id,
                    "kind": kind,
                    "workflow_id": who.workflow_id,
                    "run_id": who.run_id,
                    "activity_id": who.activity_id,
                    "attempt": who.attempt,
                    "result": result,
                    "at": now_iso(),
                },
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

    def earlier_reply(self, ticket_id: str) -> EarlierReply | None:
        """The reply row of ``ticket_id`` (None when no run of it reached its end)."""
        with self.store.read() as conn:
            row = conn.execute(_SELECT_REPLY, {"ticket_id": ticket_id}).first()
        if row is None:
            return None
        reply_id, kind, created_at, content_sha256 = row
        return EarlierReply(
            ticket_id, reply_id, kind, datetime.fromisoformat(created_at), content_sha256
        )


_INSERT_REPLY = text(
    "INSERT INTO replies (ticket_id, reply_id, customer_id, kind, body, workflow_id, created_at,"
    " content_sha256) VALUES (:ticket_id, :reply_id, :customer_id, :kind, :body, :workflow_id,"
    " :created_at, :content_sha256) ON CONFLICT DO NOTHING RETURNING reply_id"
)
_SELECT_REPLY = text(
    "SELECT reply_id, kind, created_at, content_sha256 FROM replies WHERE ticket_id = :ticket_id"
)
_INSERT_ATTEMPT = text(
    "INSERT INTO reply_attempts (ticket_id, kind, workflow_id, run_id, activity_id, attempt,"
    " result, at) VALUES (:ticket_id, :kind, :workflow_id, :run_id, :activity_id, :attempt,"
    " :result, :at)"
)
