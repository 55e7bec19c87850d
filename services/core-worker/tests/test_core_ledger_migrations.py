"""The ledger store's schema is migrated (Alembic, ``ledger_schema_version``), and revision 0001
adopts a ``ledger.db`` that the code before migrations made: rows intact, nothing created twice."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from ticketflow.core_worker._store import MIGRATIONS, LedgerStore
from ticketflow.core_worker.ledger import RefundLedger
from ticketflow.core_worker.outbox import ReplyOutbox
from ticketflow.storage import SchemaMismatch, StoreUrl, sqlite_url

from ._tickets import BOTH_BACKENDS, rows

# The exact DDL the store ran at every open before migrations (ledger.py, outbox.py at 0.1.0);
# ``replies`` without ``content_sha256`` is how the outbox made it before it kept fingerprints.
OLD_LEDGER = """
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
OLD_OUTBOX = """
CREATE TABLE IF NOT EXISTS replies (
    ticket_id    TEXT PRIMARY KEY,
    reply_id     TEXT NOT NULL UNIQUE,
    customer_id  TEXT NOT NULL,
    kind         TEXT NOT NULL,
    body         TEXT NOT NULL,
    workflow_id  TEXT,
    created_at   TEXT NOT NULL{fingerprint}
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
OLD_ROWS = """
INSERT INTO refunds VALUES ('old-1', 'rf_old', 'c', 'o', 1999, 'ticket-old-1',
    '2026-01-01T00:00:00+00:00');
INSERT INTO refund_attempts (ticket_id, amount_cents, workflow_id, run_id, activity_id, attempt,
    result, at) VALUES ('old-1', 1999, 'ticket-old-1', 'r', '3', 1, 'applied',
    '2026-01-01T00:00:00+00:00');
INSERT INTO replies (ticket_id, reply_id, customer_id, kind, body, workflow_id, created_at)
    VALUES ('old-1', 'rp_old', 'c', 'resolution', 'refunded', 'ticket-old-1',
    '2026-01-01T00:00:01+00:00');
INSERT INTO reply_attempts (ticket_id, kind, workflow_id, run_id, activity_id, attempt, result,
    at) VALUES ('old-1', 'resolution', 'ticket-old-1', 'r', '4', 1, 'sent',
    '2026-01-01T00:00:01+00:00');
"""


def old_ledger_file(path: Path, *, fingerprint: bool) -> None:
    with closing(sqlite3.connect(path)) as conn:
        column = ",\n    content_sha256 TEXT" if fingerprint else ""
        conn.executescript(OLD_LEDGER + OLD_OUTBOX.format(fingerprint=column) + OLD_ROWS)


def schema(path: Path) -> list[tuple[str, str]]:
    """The file's tables and indexes with their SQL, as SQLite keeps them."""
    sql = "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"
    return [(n, s) for n, s in rows(path, sql) if n != "ledger_schema_version"]


@pytest.mark.parametrize("fingerprint", [True, False], ids=["current", "before-fingerprint"])
def test_a_file_made_before_migrations_is_adopted_in_place(
    tmp_path: Path, fingerprint: bool
) -> None:
    path = tmp_path / "ledger.db"
    old_ledger_file(path, fingerprint=fingerprint)
    before = schema(path)
    store = LedgerStore(sqlite_url(path))
    try:
        with pytest.raises(SchemaMismatch, match="ticketflow-core-worker migrate"):
            store.require_current()
        assert store.migrate() == (None, "0001")
        store.require_current()
        # Nothing dropped or recreated: the same tables with their rows.
        assert [name for name, _ in schema(path)] == [name for name, _ in before]
        assert rows(path, "SELECT ticket_id, amount_cents FROM refunds") == [("old-1", 1999)]
        assert rows(path, "SELECT count(*) FROM refund_attempts") == [(1,)]
        assert rows(path, "SELECT reply_id, content_sha256 FROM replies") == [("rp_old", None)]
        assert store.migrate() == ("0001", "0001")  # again: no change
        assert store.revision() == MIGRATIONS.head == "0001"
        if fingerprint:
            assert schema(path) == before  # the current file: byte-for-byte the same DDL
        # The adopted rows still guard their tickets: a retry pays and replies nothing.
        refund = RefundLedger(store).apply_refund(
            ticket_id="old-1", customer_id="c", order_id="o", amount_cents=1999
        )
        assert refund.already_applied and refund.refund_id == "rf_old"
        reply = ReplyOutbox(store).send_reply(
            ticket_id="old-1", customer_id="c", kind="resolution", body="refunded"
        )
        assert reply.already_sent and reply.reply_id == "rp_old"
    finally:
        store.close()
    assert rows(path, "SELECT count(*) FROM refunds") == [(1,)]
    assert rows(path, "SELECT count(*) FROM refund_attempts") == [(2,)]


@BOTH_BACKENDS
def test_an_empty_store_is_created_then_left_alone(ledger_url: StoreUrl) -> None:
    store = LedgerStore(ledger_url)
    try:
        with pytest.raises(SchemaMismatch, match="has no schema yet"):
            store.require_current()
        assert store.migrate() == (None, "0001")
        assert store.migrate() == ("0001", "0001")
        RefundLedger(store).apply_refund(
            ticket_id="t1", customer_id="c", order_id=None, amount_cents=5
        )
        assert rows(store, "SELECT version_num FROM ledger_schema_version") == [("0001",)]
    finally:
        store.close()
