"""The ledger on PostgreSQL, past one process: core workers on several hosts share one database,
so the read-check-write of a refund must hold across processes (no process-local lock), and a
restart of the database must fail a call retryably without paying anything twice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from ticketflow.contracts.models import (
    IntakeCheckInput,
    IssueRefundInput,
    ReplyKind,
    SendReplyInput,
)
from ticketflow.core_worker._store import LedgerStore
from ticketflow.core_worker.activities import SideEffectActivities
from ticketflow.core_worker.ledger import RefundLedger
from ticketflow.core_worker.outbox import ReplyOutbox
from ticketflow.storage import parse_store_url
from ticketflow.testkit import PostgresServer

from ._tickets import rows

PROCESSES = 4
TICKETS = 40

# One writer process: connects, says "ready", waits for "go" on stdin (so all of them start
# together), then refunds every ticket: the same amount for same-*, its own amount for conf-*.
WRITER = """
import json, sys
from pathlib import Path
from ticketflow.core_worker._store import AttemptInfo, LedgerStore
from ticketflow.core_worker.ledger import LedgerConflict, RefundLedger
from ticketflow.storage import parse_store_url

url, me, tickets = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = LedgerStore(parse_store_url(url, data_dir=Path(".")))
ledger = RefundLedger(store)
with store.engine.connect():
    pass
print("ready", flush=True)
sys.stdin.readline()
seen = {"applied": 0, "already_applied": 0, "conflict": 0}
for i in range(tickets):
    for ticket, amount in ((f"same-{i}", 500), (f"conf-{i}", 100 + me)):
        try:
            row = ledger.apply_refund(ticket_id=ticket, customer_id="c", order_id=None,
                                      amount_cents=amount, who=AttemptInfo(activity_id=str(me)))
            seen["already_applied" if row.already_applied else "applied"] += 1
        except LedgerConflict:
            seen["conflict"] += 1
store.close()
print(json.dumps(seen), flush=True)
"""


def test_processes_refunding_the_same_tickets_at_once_pay_each_once(postgres_url: str) -> None:
    store = LedgerStore(parse_store_url(postgres_url, data_dir=Path(".")))
    store.migrate()
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, postgres_url, str(me), str(TICKETS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for me in range(PROCESSES)
    ]
    try:
        for writer in writers:
            assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        for writer in writers:  # all connected: start them together
            assert writer.stdin is not None
            writer.stdin.write("go\n")
            writer.stdin.close()
        outs = [writer.stdout.read() for writer in writers if writer.stdout is not None]
        for writer in writers:
            writer.wait(timeout=50)
    finally:
        for writer in writers:
            writer.kill()
            writer.wait()
    assert [w.returncode for w in writers] == [0] * PROCESSES, outs
    seen = [json.loads(out) for out in outs]
    # Two tickets per index: same-* applied once and found by the other three; conf-* applied
    # once and refused (LedgerConflict) to the other three.
    assert sum(s["applied"] for s in seen) == 2 * TICKETS
    assert sum(s["already_applied"] for s in seen) == (PROCESSES - 1) * TICKETS
    assert sum(s["conflict"] for s in seen) == (PROCESSES - 1) * TICKETS
    try:
        assert rows(store, "SELECT count(*) FROM refunds") == [(2 * TICKETS,)]
        per_ticket = rows(
            store,
            "SELECT ticket_id, count(*), sum(CASE WHEN result = 'applied' THEN 1 ELSE 0 END)"
            " FROM refund_attempts GROUP BY ticket_id",
        )
        assert len(per_ticket) == 2 * TICKETS
        assert all(n == PROCESSES and applied == 1 for _, n, applied in per_ticket), per_ticket
        # The refund paid is the one its 'applied' attempt asked for.
        assert rows(
            store,
            "SELECT count(*) FROM refunds r JOIN refund_attempts a ON a.ticket_id = r.ticket_id"
            " AND a.result = 'applied' WHERE a.amount_cents <> r.amount_cents",
        ) == [(0,)]
    finally:
        store.close()


def refund(ticket_id: str) -> IssueRefundInput:
    return IssueRefundInput(ticket_id=ticket_id, customer_id="c", amount_cents=1999)


@pytest.mark.timeout(120)  # starts (and restarts) a PostgreSQL server of its own
def test_a_postgresql_restart_fails_calls_retryably_and_the_retry_pays_once(
    tmp_path: Path,
) -> None:
    with PostgresServer() as server:  # its own: this test kills it
        store = LedgerStore(parse_store_url(server.create_database(), data_dir=tmp_path))
        try:
            store.migrate()
            acts = SideEffectActivities(RefundLedger(store), ReplyOutbox(store))
            env = ActivityEnvironment()
            first = env.run(acts.issue_refund, refund("t-1"))

            server.kill()  # a crash of the database between two calls
            reply = SendReplyInput(
                ticket_id="t-2", customer_id="c", kind=ReplyKind.RESOLUTION, body="b"
            )
            calls = [
                lambda: env.run(acts.issue_refund, refund("t-2")),
                lambda: env.run(acts.send_reply, reply),
                lambda: env.run(
                    acts.check_intake, IntakeCheckInput(ticket_id="t-2", content_sha256="x")
                ),
            ]
            for call in calls:
                with pytest.raises(ApplicationError) as failed:
                    call()
                # Retryable: Temporal tries again (a non-retryable error would escalate).
                assert failed.value.type == "LedgerUnavailable", failed.value
                assert not failed.value.non_retryable

            server.start()  # same data, same port: the pool's dead connections are replaced
            retried = env.run(acts.issue_refund, refund("t-2"))
            assert not retried.already_applied  # the failed call wrote nothing
            assert env.run(acts.issue_refund, refund("t-2")).already_applied
            again = env.run(acts.issue_refund, refund("t-1"))
            assert again.already_applied and again.refund_id == first.refund_id
            assert not env.run(acts.send_reply, reply).already_sent
            assert rows(store, "SELECT ticket_id, amount_cents FROM refunds ORDER BY 1") == [
                ("t-1", 1999),
                ("t-2", 1999),
            ]
            assert rows(store, "SELECT ticket_id, result FROM refund_attempts ORDER BY id") == [
                ("t-1", "applied"),
                ("t-2", "applied"),
                ("t-2", "already_applied"),
                ("t-1", "already_applied"),
            ]
        finally:
            store.close()
