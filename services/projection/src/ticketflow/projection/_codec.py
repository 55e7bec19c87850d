"""A ``TicketOutcome`` as a row of the ``outcomes`` table, and the two statements that move rows
in (the version-rule upsert) and out (a SELECT of every column).

Timestamps are stored as integer microseconds since the epoch, UTC: they compare as numbers, so
the version rule and the time filters are exact (text comparison of ISO timestamps is not).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, text
from sqlalchemy import exc as sa_exc
from ticketflow.contracts.models import TicketOutcome

__all__ = [
    "COLUMNS",
    "SEQUENCE",
    "StoredOutcome",
    "from_micros",
    "rows_since",
    "select_rows",
    "to_micros",
    "upsert",
]

COLUMNS = (
    "ticket_id, run_id, finished_us, status, category, customer_id, outcome_json, recorded_at, seq"
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(value: datetime) -> int:
    """Integer microseconds since the epoch, UTC (a naive datetime is taken as UTC)."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1)


def from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True)
class StoredOutcome:
    """One row: the outcome as recorded, and when and from which run."""

    ticket_id: str
    run_id: str
    finished_us: int
    status: str
    category: str | None
    customer_id: str
    outcome_json: str
    recorded_at: str
    seq: int

    @property
    def outcome(self) -> TicketOutcome:
        return TicketOutcome.model_validate_json(self.outcome_json)

    @property
    def recorded_at_dt(self) -> datetime:
        return datetime.fromisoformat(self.recorded_at)

    @property
    def version(self) -> tuple[int, str]:
        return (self.finished_us, self.run_id)

    @classmethod
    def from_outcome(cls, outcome: TicketOutcome, run_id: str) -> StoredOutcome:
        return cls(
            ticket_id=outcome.ticket_id,
            run_id=run_id,
            finished_us=to_micros(outcome.finished_at),
            status=outcome.status.value,
            category=outcome.classification.category.value if outcome.classification else None,
            customer_id=outcome.ticket.customer_id,
            outcome_json=outcome.model_dump_json(),
            recorded_at=datetime.now(UTC).isoformat(),
            seq=0,
        )


SEQUENCE = "readmodel_outcome_seq"


def upsert(conn: Connection, row: StoredOutcome, table: str = "outcomes") -> bool:
    """Write ``row`` unless the stored one has an equal or greater version; its ``seq`` is the
    next one. True when the row changed. Runs inside the caller's write transaction.

    One statement on PostgreSQL: ``INSERT ... ON CONFLICT DO UPDATE`` locks the conflicting row and
    re-evaluates the WHERE against its latest committed version, so concurrent projection replicas
    writing the same ticket cannot undo each other. ``seq`` comes from a SEQUENCE there; on SQLite
    it is max+1, taken under the write lock that ``BEGIN IMMEDIATE`` holds.
    """
    if conn.dialect.name == "postgresql":
        seq_sql = f"nextval('{SEQUENCE}')"
    else:
        seq_sql = f"(SELECT coalesce(max(seq), 0) + 1 FROM {table})"
    result = conn.execute(
        text(
            f"""
            INSERT INTO {table} ({COLUMNS}) VALUES (:ticket_id, :run_id, :finished_us, :status,
                :category, :customer_id, :outcome_json, :recorded_at, {seq_sql})
            ON CONFLICT (ticket_id) DO UPDATE SET
                run_id = excluded.run_id, finished_us = excluded.finished_us,
                status = excluded.status, category = excluded.category,
                customer_id = excluded.customer_id, outcome_json = excluded.outcome_json,
                recorded_at = excluded.recorded_at, seq = excluded.seq
            WHERE (excluded.finished_us, excluded.run_id) > ({table}.finished_us, {table}.run_id)
            """
        ),
        {
            "ticket_id": row.ticket_id,
            "run_id": row.run_id,
            "finished_us": row.finished_us,
            "status": row.status,
            "category": row.category,
            "customer_id": row.customer_id,
            "outcome_json": row.outcome_json,
            "recorded_at": row.recorded_at,
        },
    )
    return result.rowcount > 0


def select_rows(
    conn: Connection,
    where: str = "",
    params: Mapping[str, object] | None = None,
    table: str = "outcomes",
) -> list[StoredOutcome]:
    """``SELECT`` every column of the rows matching ``where`` (the text after ``FROM <table>``)."""
    sql = f"SELECT {COLUMNS} FROM {table} {where}".rstrip()
    try:
        return [StoredOutcome(*r) for r in conn.execute(text(sql), dict(params or {})).all()]
    except sa_exc.OperationalError as err:
        # A SQLite file deleted by hand and recreated empty by a reader: an empty view until the
        # next write recreates the table.
        if isinstance(err.orig, sqlite3.OperationalError) and "no such table" in str(err.orig):
            return []
        raise


def rows_since(conn: Connection, seq: int, table: str = "outcomes") -> list[StoredOutcome]:
    """Every row written after ``seq``, in seq order."""
    return select_rows(conn, "WHERE seq > :seq ORDER BY seq", {"seq": seq}, table)
