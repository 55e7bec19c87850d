"""The refund ledger: one refund per ticket, every attempt logged, conflicting amounts refused."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import inspect
from ticketflow.core_worker._store import LedgerStore
from ticketflow.core_worker.ledger import AttemptInfo, LedgerConflict, RefundLedger, RefundRow
from ticketflow.storage import Backend

from ._tickets import BOTH_BACKENDS, rows

pytestmark = BOTH_BACKENDS


def test_refund_applied_once_and_every_attempt_logged(refund_ledger: RefundLedger) -> None:
    first = refund_ledger.apply_refund(
        ticket_id="t1", customer_id="c", order_id="o", amount_cents=1234, who=AttemptInfo(attempt=1)
    )
    again = refund_ledger.apply_refund(
        ticket_id="t1", customer_id="c", order_id="o", amount_cents=1234, who=AttemptInfo(attempt=2)
    )
    assert not first.already_applied and again.already_applied
    assert (again.refund_id, again.created_at) == (first.refund_id, first.created_at)
    assert rows(refund_ledger.store, "SELECT ticket_id, amount_cents FROM refunds") == [
        ("t1", 1234)
    ]
    assert rows(refund_ledger.store, "SELECT attempt, result FROM refund_attempts ORDER BY id") == [
        (1, "applied"),
        (2, "already_applied"),
    ]


def test_second_refund_with_other_amount_is_a_conflict(refund_ledger: RefundLedger) -> None:
    refund_ledger.apply_refund(ticket_id="t1", customer_id="c", order_id=None, amount_cents=100)
    with pytest.raises(LedgerConflict, match="already refunded 100 cents"):
        refund_ledger.apply_refund(ticket_id="t1", customer_id="c", order_id=None, amount_cents=200)
    assert rows(refund_ledger.store, "SELECT amount_cents FROM refunds") == [(100,)]
    assert [r for (r,) in rows(refund_ledger.store, "SELECT result FROM refund_attempts")] == [
        "applied",
        "conflict",
    ]


@pytest.mark.parametrize("amount", [0, -5, 10.5, "100", True])
def test_refund_amount_must_be_positive_integer_cents(
    refund_ledger: RefundLedger, amount: Any
) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        refund_ledger.apply_refund(
            ticket_id="t1", customer_id="c", order_id=None, amount_cents=amount
        )
    assert rows(refund_ledger.store, "SELECT count(*) FROM refunds") == [(0,)]


def test_concurrent_refunds_of_one_ticket_make_one_row(refund_ledger: RefundLedger) -> None:
    def go(i: int) -> RefundRow:
        return refund_ledger.apply_refund(
            ticket_id="race",
            customer_id="c",
            order_id=None,
            amount_cents=500,
            who=AttemptInfo(attempt=i),
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(go, range(32)))
    assert sum(not r.already_applied for r in results) == 1
    assert rows(refund_ledger.store, "SELECT count(*) FROM refunds") == [(1,)]
    assert rows(refund_ledger.store, "SELECT count(*) FROM refund_attempts") == [(32,)]


def test_money_is_stored_as_integer(refund_ledger: RefundLedger) -> None:
    refund_ledger.apply_refund(ticket_id="t1", customer_id="c", order_id=None, amount_cents=1)
    if refund_ledger.store.backend == Backend.SQLITE:
        typed = rows(refund_ledger.store, "SELECT typeof(amount_cents) FROM refunds")
        assert typed == [("integer",)]
    else:
        typed = rows(refund_ledger.store, "SELECT pg_typeof(amount_cents)::text FROM refunds")
        assert typed == [("bigint",)]


def test_ledger_and_outbox_share_one_store_with_the_tables_ops_read(
    ledger_store: LedgerStore,
) -> None:
    assert ledger_store.migrate() == ("0001", "0001")  # migrating again changes nothing
    schema = inspect(ledger_store.engine)
    assert sorted(schema.get_table_names()) == [
        "ledger_schema_version",
        "refund_attempts",
        "refunds",
        "replies",
        "reply_attempts",
    ]
    assert [c["name"] for c in schema.get_columns("refunds")] == [
        "ticket_id",
        "refund_id",
        "customer_id",
        "order_id",
        "amount_cents",
        "workflow_id",
        "created_at",
    ]
    assert [c["name"] for c in schema.get_columns("replies")] == [
        "ticket_id",
        "reply_id",
        "customer_id",
        "kind",
        "body",
        "workflow_id",
        "created_at",
        "content_sha256",
    ]
