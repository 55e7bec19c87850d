"""Crash tests with the ledger, the outbox and the read model on PostgreSQL: two core workers share
it (as on two hosts); one is SIGKILLed mid-batch, then the database itself crashes and restarts
under load. Every ticket must reach its end; every refund and reply must exist exactly once; while
the database is down, the api's read path answers 503 with a message (never a hang) and still
accepts tickets."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from ticketflow.testkit import PostgresServer

from .harness import eventually, submit, wait_status

pytestmark = [pytest.mark.integration, pytest.mark.crash, pytest.mark.timeout(300)]

# Short side-effect timeouts so an attempt lost with a killed worker is retried soon.
FAST_RETRY = {"TICKETFLOW_SIDE_EFFECT_START_TO_CLOSE_S": "3"}


def pg(url: str, query: str) -> list[tuple[Any, ...]]:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute(query).fetchall()
    except psycopg.OperationalError:
        return []  # down (the test restarts it): nothing to count now


def test_two_core_workers_and_a_database_crash_pay_each_refund_once(stack_factory) -> None:
    with PostgresServer() as server:  # its own: this test kills it
        url = server.create_database()
        stack = stack_factory(
            TICKETFLOW_LEDGER_URL=url,
            TICKETFLOW_READMODEL_URL=url,  # the same database: each store has its own tables
            TICKETFLOW_MIGRATE_ON_START="true",  # both at once: the advisory lock serialises
            TICKETFLOW_MOCK_LATENCY_MS="100",
            **FAST_RETRY,
        )
        stack.start_all()
        stack.start("core-2", script="ticketflow-core-worker")
        api = stack.start_api()
        amounts = {}
        for i in range(24):
            cents = 1000 + i  # distinct, under the auto-approve limit
            t = submit(api, subject="refund", body="refund my order", requested_refund_cents=cents)
            amounts[t["ticket_id"]] = cents

        def paid() -> int:
            got = pg(url, "SELECT count(*) FROM refunds")
            return got[0][0] if got else -1

        eventually(lambda: paid() >= 1, what="the first refunds")
        stack.kill("ticketflow-core-worker")  # one host gone; core-2 carries on
        at_kill, batch = paid(), len(amounts)
        eventually(lambda: paid() >= at_kill + 2, what="refunds paid by core-2 alone")
        server.kill()  # the database crashes under load ...

        def failed_retryably() -> int:  # whole logs of both core workers
            logs = [*stack.logs.glob("core-2.*.log"), *stack.logs.glob("ticketflow-core-*.log")]
            return sum(
                p.read_text(errors="replace").count("ledger store unavailable") for p in logs
            )

        # ... side effects fail retryably while it is down (none is lost: Temporal retries) ...
        eventually(lambda: failed_retryably() >= 1, what="a refund failing while the db is down")
        # The read path: a ticket Temporal does not know is looked up in the read model, which
        # is down: 503 with a message, not a hang (the client's timeout) and not a 404.
        eventually(
            lambda: api.get("/tickets/never-submitted").status_code == 503,
            what="a read-model lookup answering 503 while the database is down",
        )
        down = api.get("/tickets/never-submitted").json()
        assert down["error"]["code"] == "read_model_unavailable", down
        # Intake does not need the read model: a ticket submitted now is accepted, and ends.
        late = submit(api, subject="refund", body="refund my order", requested_refund_cents=999)
        amounts[late["ticket_id"]] = 999
        server.start()  # ... and it comes back: the failed attempts are retried
        stack.start("ticketflow-core-worker")

        for tid in amounts:
            wait_status(api, tid, "RESOLVED", timeout=180)
        assert dict(pg(url, "SELECT ticket_id, amount_cents FROM refunds")) == amounts
        applied = pg(
            url,
            "SELECT ticket_id, count(*) FROM refund_attempts WHERE result = 'applied'"
            " GROUP BY ticket_id",
        )
        assert dict(applied) == dict.fromkeys(amounts, 1)
        replies = pg(url, "SELECT ticket_id, count(*) FROM replies GROUP BY ticket_id")
        assert dict(replies) == dict.fromkeys(amounts, 1)
        attempts = pg(url, "SELECT count(*) FROM refund_attempts")[0][0]
        retried = failed_retryably()
        print(
            f"killed a core worker at {at_kill}/{batch} refunds; {attempts} attempts; "
            f"{retried} attempts failed retryably while the database was down"
        )
        api.close()
        for name in ("ticketflow-core-worker", "core-2"):  # before their database goes
            stack.stop(name)
