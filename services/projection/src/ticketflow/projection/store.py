"""The read model of finished tickets: SQLite, owned by the projection service.

Derived data: every row can be re-derived from Temporal while histories are retained. Writes are
idempotent and ordered: an outcome replaces the stored one only if it is strictly newer
(finished_at, then a content hash as a tie-break), so replays and late deliveries change nothing.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from ticketflow.contracts.models import TicketOutcome

SCHEMA = """
CREATE TABLE IF NOT EXISTS outcomes (
    ticket_id    TEXT PRIMARY KEY,
    status       TEXT NOT NULL,
    category     TEXT,
    customer_id  TEXT NOT NULL,
    finished_at  TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    outcome_json TEXT NOT NULL,
    recorded_at  TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS outcomes_status ON outcomes (status, finished_at);
"""


class ReadModel:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    def record(self, outcome: TicketOutcome) -> bool:
        """Store the outcome unless an equal or newer one is there. True when the row changed."""
        body = outcome.model_dump_json()
        digest = hashlib.sha256(body.encode()).hexdigest()
        finished = outcome.finished_at.astimezone(UTC).isoformat()
        with self._connect() as conn:
            cur = conn.execute(
                """
                INSERT INTO outcomes (ticket_id, status, category, customer_id, finished_at,
                                      content_hash, outcome_json, recorded_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (ticket_id) DO UPDATE SET
                    status = excluded.status, category = excluded.category,
                    customer_id = excluded.customer_id, finished_at = excluded.finished_at,
                    content_hash = excluded.content_hash, outcome_json = excluded.outcome_json,
                    recorded_at = excluded.recorded_at
                WHERE (excluded.finished_at, excluded.content_hash)
                      > (outcomes.finished_at, outcomes.content_hash)
                """,
                (
                    outcome.ticket_id,
                    outcome.status.value,
                    outcome.classification.category.value if outcome.classification else None,
                    outcome.ticket.customer_id,
                    finished,
                    digest,
                    body,
                    datetime.now(UTC).isoformat(),
                ),
            )
            return cur.rowcount > 0

    def get(self, ticket_id: str) -> TicketOutcome | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT outcome_json FROM outcomes WHERE ticket_id = ?", (ticket_id,)
            ).fetchone()
        return TicketOutcome.model_validate_json(row[0]) if row else None

    def count(self) -> int:
        with self._connect() as conn:
            return conn.execute("SELECT count(*) FROM outcomes").fetchone()[0]
