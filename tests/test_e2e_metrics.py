"""Every process serves Prometheus metrics, and after a small batch they say what happened.

Real processes (dev server, core worker, agent worker, projection, api), each with its own
metrics port (``TICKETFLOW_METRICS_PORT``). The batch: account questions and small refunds that
resolve on their own, large refunds an approver approves, and tickets that go to the fallback
model (the primary's worker stopped) and that an approver rejects. Each counter is compared
with what the tickets, the ledger and the api's answers say happened.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from ticketflow.testkit import metric_value, scrape

from .deploy_metrics import queried_names
from .harness import Stack, bearer, eventually, submit, wait_status

_SERIES = re.compile(r"_(bucket|count|sum|total)$")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]  # a stack, a batch, a restart

ACCOUNT, SMALL, LARGE, FALLBACK = 3, 2, 2, 2


def _refund(api: httpx.Client, cents: int) -> dict:
    return submit(
        api, subject="Refund please", body="refund my order", order_id="o-1",
        requested_refund_cents=cents,
    )  # fmt: skip


def _decide(
    api: httpx.Client, ticket_id: str, approved: bool, headers: dict[str, str] | None = None
) -> httpx.Response:
    return api.post(
        f"/tickets/{ticket_id}/decision",
        json={"approved": approved, "reason": "checked"},
        headers=headers or bearer("alice"),
    )


def _fallback_routings(tickets: list[dict[str, Any]]) -> int:
    """Primary calls that ended in a schedule-to-start timeout, as the workflows recorded them."""
    return sum(
        1
        for t in tickets
        for call in t["agent_calls"]
        if call["tier"] == "primary" and call["error"] == "timeout:SCHEDULE_TO_START"
    )


def test_counters_match_a_batch(stack_factory: Any, tmp_path: Path) -> None:
    stack: Stack = stack_factory(
        # Policy frozen into each ticket by the api: a primary that does not start a call within
        # 2 s sends it to the fallback; a fallback answer is never re-asked of the primary.
        TICKETFLOW_AGENT_SCHEDULE_TO_START_S="2",
        TICKETFLOW_PRIMARY_RECHECK_SCHEDULE_TO_START_S="0",
        TICKETFLOW_GAUGE_INTERVAL_S="0.5",
    )
    stack.start_all()
    api = stack.start_api()

    auto = [submit(api, subject="Cannot login", body="forgot my password") for _ in range(ACCOUNT)]
    auto += [_refund(api, 1500) for _ in range(SMALL)]
    large = [_refund(api, 25_000) for _ in range(LARGE)]
    for t in auto:
        wait_status(api, t["ticket_id"], "RESOLVED")
    for t in large:
        wait_status(api, t["ticket_id"], "WAITING_APPROVAL")

    def queue_gauges() -> dict:
        samples = scrape(stack.metrics["ticketflow-projection"])
        assert metric_value(samples, "ticketflow_approvals_waiting") == LARGE
        return samples

    # The projection reads the approval queue from visibility (eventually consistent).
    gauges = eventually(queue_gauges, what="the approval queue in the projection's gauges")
    assert metric_value(gauges, "ticketflow_approval_oldest_wait_seconds") > 0
    assert metric_value(gauges, "ticketflow_tickets_stuck") == 0
    assert (
        _decide(api, large[0]["ticket_id"], True, {"Authorization": "Bearer nope"}).status_code
        == 401
    )
    for t in large:
        assert _decide(api, t["ticket_id"], True).status_code == 200
        wait_status(api, t["ticket_id"], "RESOLVED")
    assert _decide(api, large[0]["ticket_id"], False).status_code == 409  # finished: late
    # The same ticket again (same id, same content): the existing one, 200, not a new ticket.
    same_ticket = {"ticket_id": "same-1", "customer_id": "c", "subject": "login", "body": "help"}
    assert api.post("/tickets", json=same_ticket).status_code == 202
    wait_status(api, "same-1", "RESOLVED")
    same = api.post("/tickets", json=same_ticket)
    assert same.status_code == 200, same.text

    primary_agent = scrape(stack.metrics["ticketflow-agent-worker"])

    # The primary model's worker goes away: the next tickets go to the fallback model.
    stack.stop("ticketflow-agent-worker")
    stack.start("ticketflow-agent-worker", "--queue", "fallback", script="ticketflow-agent-worker")
    fallback = [submit(api, subject="Cannot login", body="forgot my password")]
    fallback += [submit(api, subject="Cannot login", body="locked out, password")]
    for t in fallback:
        wait_status(api, t["ticket_id"], "WAITING_APPROVAL")
        assert _decide(api, t["ticket_id"], False).status_code == 200
        wait_status(api, t["ticket_id"], "REJECTED")

    tickets = [
        api.get(f"/tickets/{t['ticket_id']}").json()
        for t in [*auto, *large, *fallback, {"ticket_id": "same-1"}]
    ]
    refunds = stack.sql("ledger.db", "SELECT amount_cents FROM refunds")
    replies = stack.sql("ledger.db", "SELECT kind, COUNT(*) FROM replies GROUP BY kind")
    n = len(tickets)

    # The api: submissions by outcome, decisions by result, HTTP durations by route.
    api_m = scrape(stack.metrics["ticketflow-api"])
    submitted = "ticketflow_tickets_submitted_total"
    assert metric_value(api_m, submitted, outcome="accepted") == n
    assert metric_value(api_m, submitted, outcome="existing") == 1
    decisions = "ticketflow_decisions_total"
    assert metric_value(api_m, decisions, result="accepted") == LARGE + FALLBACK
    assert metric_value(api_m, decisions, result="unauthorised") == 1
    assert metric_value(api_m, decisions, result="late") == 1
    assert metric_value(api_m, "ticketflow_ticket_reads_total", source="live") > 0
    http_count = "ticketflow_http_request_duration_seconds_count"
    assert metric_value(api_m, http_count, method="POST", route="/tickets", code="202") == n
    assert metric_value(api_m, http_count, route="/tickets/{ticket_id}/decision", code="200") == (
        LARGE + FALLBACK
    )

    # The core worker: what the ledger holds, and each ticket's end counted once.
    core = scrape(stack.metrics["ticketflow-core-worker"])
    assert metric_value(core, "ticketflow_refunds_paid_total") == len(refunds) == SMALL + LARGE
    assert metric_value(core, "ticketflow_refunds_paid_cents_total") == sum(c for (c,) in refunds)
    for kind, count in replies:
        assert metric_value(core, "ticketflow_replies_sent_total", kind=kind) == count, kind
    assert metric_value(core, "ticketflow_replies_sent_total") == n
    finished = "ticketflow_tickets_finished_total"
    assert metric_value(core, finished) == n
    by_status: dict[str, int] = {}
    for t in tickets:
        by_status[t["status"]] = by_status.get(t["status"], 0) + 1
    for status, count in by_status.items():
        assert metric_value(core, finished, status=status) == count, status
    assert metric_value(core, finished, status="RESOLVED", path="human") == LARGE
    assert metric_value(core, finished, status="REJECTED", path="human", tier="fallback") == (
        FALLBACK
    )
    waits = "ticketflow_approval_wait_seconds_count"
    assert metric_value(core, waits, result="decided") == LARGE + FALLBACK
    routed = _fallback_routings(tickets)
    assert routed >= FALLBACK
    assert metric_value(core, "ticketflow_fallback_routings_total") == routed
    assert metric_value(core, "ticketflow_fallback_routings_total", reason="primary_busy") == routed
    assert metric_value(core, "ticketflow_ticket_duration_seconds_count") == n
    # The SDK's own metrics, from the same port.
    assert metric_value(core, "temporal_workflow_completed_total") == n
    assert metric_value(core, "temporal_workflow_task_schedule_to_start_latency_seconds_count") > 0
    assert metric_value(core, "temporal_num_pollers", poller_type="workflow_task") > 0

    # The agent workers: one model call per classify and draft of every ticket they answered.
    calls = "ticketflow_agent_calls_total"
    primary_answered = ACCOUNT + SMALL + LARGE + 1  # + same-1
    for activity in ("classify", "draft_reply"):
        assert metric_value(primary_agent, calls, activity=activity, result="ok") == (
            primary_answered
        ), activity
    fallback_agent = scrape(stack.metrics["ticketflow-agent-worker"])
    assert metric_value(fallback_agent, calls, tier="fallback", result="ok") == 2 * FALLBACK
    assert metric_value(fallback_agent, calls, tier="primary") == 0
    assert metric_value(primary_agent, "temporal_activity_execution_latency_seconds_count") > 0

    # The projection: one outcome recorded per ticket, and its gRPC read API timed.
    projection = scrape(stack.metrics["ticketflow-projection"])
    executed = "temporal_activity_execution_latency_seconds_count"
    assert metric_value(projection, executed, activity_type="record_outcome") == n
    grpc_count = "ticketflow_grpc_request_duration_seconds_count"
    assert metric_value(projection, grpc_count, code="OK") > 0  # the api's GetOutcome calls

    # Temporal's dev server serves its own.
    eventually(lambda: len(scrape(stack.metrics["temporal"])) > 0, what="dev server metrics")

    # Every metric deploy/'s dashboard and alert rules query is served by some service.
    served = {
        _SERIES.sub("", name)
        for samples in (api_m, core, primary_agent, fallback_agent, projection, gauges)
        for (name, _) in samples
    }
    assert queried_names() - served == set()
