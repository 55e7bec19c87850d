"""Crash tests: SIGKILL real worker processes mid-batch and restart them.

Every ticket must reach its right end; every refund and reply must exist exactly once.
"""

from __future__ import annotations

import httpx
import pytest

from .harness import eventually, submit, wait_status

# Whole stacks of real processes, killed and restarted mid-batch, then every ticket waited for.
pytestmark = [pytest.mark.integration, pytest.mark.crash, pytest.mark.timeout(300)]

# Short side-effect timeouts so an attempt lost with a killed worker is retried soon.
FAST_RETRY = {"TICKETFLOW_SIDE_EFFECT_START_TO_CLOSE_S": "3"}


def test_core_worker_killed_during_refunds_pays_each_refund_once(stack_factory) -> None:
    stack = stack_factory(TICKETFLOW_MOCK_LATENCY_MS="100", **FAST_RETRY)
    stack.start_all()
    api = stack.start_api()
    amounts = {}
    for i in range(24):
        cents = 1000 + i  # distinct, under the auto-approve limit
        t = submit(api, subject="refund", body="refund my order", requested_refund_cents=cents)
        amounts[t["ticket_id"]] = cents

    count = lambda: stack.sql("ledger.db", "SELECT count(*) FROM refunds")[0][0]  # noqa: E731
    eventually(lambda: count() >= 1, what="the first refunds")
    stack.kill("ticketflow-core-worker")
    paid_at_kill = count()
    stack.start("ticketflow-core-worker")

    for tid in amounts:
        wait_status(api, tid, "RESOLVED", timeout=180)
    rows = stack.sql("ledger.db", "SELECT ticket_id, amount_cents FROM refunds")
    assert dict(rows) == amounts  # exactly one row per ticket, the right amount
    attempts = stack.sql("ledger.db", "SELECT ticket_id, result FROM refund_attempts")
    assert {tid for tid, _ in attempts} == set(amounts)
    assert sum(1 for _, r in attempts if r == "applied") == len(amounts)
    replies = stack.sql("ledger.db", "SELECT ticket_id FROM replies")
    assert sorted(r for (r,) in replies) == sorted(amounts)
    print(
        f"killed with {paid_at_kill}/{len(amounts)} refunds paid; {len(attempts)} attempts logged"
    )
    api.close()


def test_agent_worker_killed_during_model_calls(stack_factory) -> None:
    stack = stack_factory(TICKETFLOW_MOCK_LATENCY_MS="1500", TICKETFLOW_AGENT_MAX_CONCURRENT="4")
    stack.start_all()
    api = stack.start_api()
    ids = [
        submit(api, subject="Cannot login", body=f"password reset {i}")["ticket_id"]
        for i in range(8)
    ]
    # Kill while model calls are in flight (some tickets are being classified right now).
    eventually(
        lambda: any(api.get(f"/tickets/{t}").json()["status"] == "CLASSIFYING" for t in ids),
        what="a ticket in a model call",
    )
    stack.kill("ticketflow-agent-worker")
    stack.start("ticketflow-agent-worker", "--queue", "both")
    for tid in ids:
        t = wait_status(api, tid, "RESOLVED", "WAITING_APPROVAL", "ESCALATED", timeout=180)
        # Restarted within budget: the primary still answered, nothing needed a human.
        assert t["status"] == "RESOLVED", t
    replies = stack.sql("ledger.db", "SELECT ticket_id, count(*) FROM replies GROUP BY ticket_id")
    assert dict(replies) == dict.fromkeys(ids, 1)
    api.close()


def test_refund_committed_but_worker_died_before_ack_is_not_paid_twice(stack_factory) -> None:
    stack = stack_factory(**FAST_RETRY)
    stack.start_all(TICKETFLOW_FAULT_CRASH_AFTER_REFUND_COMMIT="true")
    api = stack.start_api()
    tid = submit(api, subject="refund", body="refund please", requested_refund_cents=4200)[
        "ticket_id"
    ]

    core = stack.procs["ticketflow-core-worker"]
    eventually(lambda: core.poll() is not None, what="the core worker to die after the commit")
    assert stack.sql("ledger.db", "SELECT amount_cents FROM refunds WHERE ticket_id=?", tid) == [
        (4200,)
    ]
    assert api.get(f"/tickets/{tid}").status_code in (200, 503)  # no worker may answer the query

    stack.start("ticketflow-core-worker")  # healthy this time
    t = wait_status(api, tid, "RESOLVED", timeout=120)
    assert t["outcome"]["refund"]["already_applied"] is True
    assert stack.sql("ledger.db", "SELECT amount_cents FROM refunds WHERE ticket_id=?", tid) == [
        (4200,)
    ]
    assert stack.sql(
        "ledger.db", "SELECT result FROM refund_attempts WHERE ticket_id=? ORDER BY id", tid
    ) == [("applied",), ("already_applied",)]
    api.close()


def test_projection_killed_mid_batch_records_every_outcome_once(stack_factory) -> None:
    stack = stack_factory(TICKETFLOW_MOCK_LATENCY_MS="50", **FAST_RETRY)
    stack.start_all()
    api = stack.start_api()
    ids = [
        submit(api, subject="Cannot login", body=f"password {i}")["ticket_id"] for i in range(20)
    ]
    recorded = lambda: stack.sql("readmodel.db", "SELECT count(*) FROM outcomes")[0][0]  # noqa: E731
    eventually(lambda: recorded() >= 1, what="the first recorded outcomes")
    stack.kill("ticketflow-projection")
    stack.start("ticketflow-projection")
    for tid in ids:
        wait_status(api, tid, "RESOLVED", timeout=180)
    rows = stack.sql("readmodel.db", "SELECT ticket_id, status FROM outcomes")
    assert sorted(rows) == sorted((tid, "RESOLVED") for tid in ids)
    api.close()


def test_api_killed_mid_batch_then_clients_retry_no_ticket_lost_or_doubled(
    stack_factory,
) -> None:
    stack = stack_factory()
    stack.start_all()
    api = stack.start_api()
    bodies = {
        f"retry-{i}": {
            "ticket_id": f"retry-{i}",
            "customer_id": "c",
            "subject": "Cannot login",
            "body": f"password {i}",
        }
        for i in range(30)
    }
    answered: dict[str, int] = {}
    for n, (tid, body) in enumerate(bodies.items()):
        if n == 15:
            stack.kill("ticketflow-api")  # mid-batch: some were submitted, some were not
        try:
            answered[tid] = api.post("/tickets", json=body).status_code
        except httpx.TransportError:
            pass
    assert len(answered) == 15 and set(answered.values()) == {202}
    api.close()

    api = stack.start_api()
    # Clients retry everything they sent (at-least-once): the same ticket, never a second one.
    for tid, body in bodies.items():
        r = api.post("/tickets", json=body)
        assert r.status_code == (200 if tid in answered else 202), (tid, r.text)
    for tid in bodies:
        wait_status(api, tid, "RESOLVED")
    replies = stack.sql("ledger.db", "SELECT ticket_id, count(*) FROM replies GROUP BY ticket_id")
    assert dict(replies) == dict.fromkeys(bodies, 1)
    api.close()
