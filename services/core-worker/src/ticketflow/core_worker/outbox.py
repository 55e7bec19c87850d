"""The reply outbox: SQLite tables ``replies`` and ``reply_attempts`` in ``ledger.db``.

Effectively once (docs/architecture.md, "Side effects: effectively once"): ``replies`` is keyed by
ticket_id. Each call writes its attempt row and, at most once per ticket, the reply row, in ONE
transaction; a retry finds the row and answers with the original receipt (``already_sent``). One
reply per ticket, ever: a reply of another kind for a ticket that has one is not sent, the first
one is the answer (its attempt is logged as ``conflict``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ._sqlite import UNIDENTIFIED, AttemptInfo, SqliteStore, effect_id, now_iso

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


class ReplyOutbox(SqliteStore):
    """Replies to customers, one per ticket, and every attempt to send one."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS replies (
        ticket_id    TEXT PRIMARY KEY,
        reply_id     TEXT NOT NULL UNIQUE,
        customer_id  TEXT NOT NULL,
        kind         TEXT NOT NULL,
        body         TEXT NOT NULL,
        workflow_id  TEXT,
        created_at   TEXT NOT NULL,
        content_sha256 TEXT
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

    # Forward-only, idempotent in-place upgrades of files an older version wrote: (table, column,
    # definition). A column is only ever added, nullable, so older code still reads the file.
    COLUMNS = (("replies", "content_sha256", "TEXT"),)

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
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT reply_id, kind, created_at FROM replies WHERE ticket_id = ?",
                (ticket_id,),
            ).fetchone()
            if row is None:
                reply_id, created_at = effect_id("rp", ticket_id), now_iso()
                conn.execute(
                    "INSERT INTO replies (ticket_id, reply_id, customer_id, kind, body,"
                    " workflow_id, created_at, content_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        ticket_id,
                        reply_id,
                        customer_id,
                        kind,
                        body,
                        who.workflow_id,
                        created_at,
                        content_sha256,
                    ),
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
                    now_iso(),
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

    def earlier_reply(self, ticket_id: str) -> EarlierReply | None:
        """The reply row of ``ticket_id`` (None when no run of it reached its end)."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT reply_id, kind, created_at, content_sha256 FROM replies"
                " WHERE ticket_id = ?",
                (ticket_id,),
            ).fetchone()
        if row is None:
            return None
        reply_id, kind, created_at, content_sha256 = row
        return EarlierReply(
            ticket_id, reply_id, kind, datetime.fromisoformat(created_at), content_sha256
        )
