from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest
from ticketflow.core_worker.ledger import AttemptInfo, Ledger, LedgerConflict


def rows(ledger: Ledger, sql: str) -> list[tuple]:
    with sqlite3.connect(ledger.path) as conn:
        return conn.execute(sql).fetchall()


def test_refund_applied_once_and_every_attempt_logged(ledger: Ledger) -> None:
    first = ledger.apply_refund(
        ticket_id="t1", customer_id="c", order_id="o", amount_cents=1234, who=AttemptInfo(attempt=1)
    )
    again = ledger.apply_refund(
        ticket_id="t1", customer_id="c", order_id="o", amount_cents=1234, who=AttemptInfo(attempt=2)
    )
    assert not first.already_applied and again.already_applied
    assert (again.refund_id, again.created_at) == (first.refund_id, first.created_at)
    assert rows(ledger, "SELECT ticket_id, amount_cents FROM refunds") == [("t1", 1234)]
    assert rows(ledger, "SELECT attempt, result FROM refund_attempts ORDER BY id") == [
        (1, "applied"),
        (2, "already_applied"),
    ]


def test_second_refund_with_other_amount_is_a_conflict(ledger: Ledger) -> None:
    ledger.apply_refund(ticket_id="t1", customer_id="c", order_id=None, amount_cents=100)
    with pytest.raises(LedgerConflict, match="already refunded 100 cents"):
        ledger.apply_refund(ticket_id="t1", customer_id="c", order_id=None, amount_cents=200)
    assert rows(ledger, "SELECT amount_cents FROM refunds") == [(100,)]
    assert [r for (r,) in rows(ledger, "SELECT result FROM refund_attempts")] == [
        "applied",
        "conflict",
    ]


@pytest.mark.parametrize("amount", [0, -5, 10.5, "100", True])
def test_refund_amount_must_be_positive_integer_cents(ledger: Ledger, amount) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        ledger.apply_refund(ticket_id="t1", customer_id="c", order_id=None, amount_cents=amount)
    assert rows(ledger, "SELECT count(*) FROM refunds") == [(0,)]


def test_concurrent_refunds_of_one_ticket_make_one_row(ledger: Ledger) -> None:
    def go(i: int):
        return ledger.apply_refund(
            ticket_id="race",
            customer_id="c",
            order_id=None,
            amount_cents=500,
            who=AttemptInfo(attempt=i),
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(go, range(32)))
    assert sum(not r.already_applied for r in results) == 1
    assert rows(ledger, "SELECT count(*) FROM refunds") == [(1,)]
    assert rows(ledger, "SELECT count(*) FROM refund_attempts") == [(32,)]


def test_reply_outbox_once_per_ticket(ledger: Ledger) -> None:
    a = ledger.send_reply(ticket_id="t1", customer_id="c", kind="resolution", body="hi")
    b = ledger.send_reply(ticket_id="t1", customer_id="c", kind="resolution", body="hi")
    assert not a.already_sent and b.already_sent and a.reply_id == b.reply_id
    # Another kind of reply for the same ticket is not sent: the first one stands, and says so.
    c = ledger.send_reply(ticket_id="t1", customer_id="c", kind="rejection", body="no")
    assert c.already_sent and c.kind == "resolution" and c.reply_id == a.reply_id
    assert rows(ledger, "SELECT ticket_id, kind FROM replies") == [("t1", "resolution")]
    assert [r for (r,) in rows(ledger, "SELECT result FROM reply_attempts ORDER BY id")] == [
        "sent",
        "already_sent",
        "conflict",
    ]


def test_money_is_stored_as_integer(ledger: Ledger) -> None:
    ledger.apply_refund(ticket_id="t1", customer_id="c", order_id=None, amount_cents=1)
    assert rows(ledger, "SELECT typeof(amount_cents) FROM refunds") == [("integer",)]
