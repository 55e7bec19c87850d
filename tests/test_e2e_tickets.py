"""The whole system over HTTP: real dev server, real service processes, loopback only."""

from __future__ import annotations

import httpx
import pytest
from ticketflow.testkit import free_port

from .harness import Stack, bearer, eventually, submit, wait_status

# A module's first test also starts the stack (dev server and four service processes).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def refunds(stack: Stack, ticket_id: str) -> list[tuple]:
    return stack.sql("ledger.db", "SELECT amount_cents FROM refunds WHERE ticket_id = ?", ticket_id)


def replies(stack: Stack, ticket_id: str) -> list[tuple]:
    return stack.sql("ledger.db", "SELECT kind FROM replies WHERE ticket_id = ?", ticket_id)


def test_confident_account_question_resolves_on_its_own(stack: Stack, api: httpx.Client) -> None:
    created = submit(api, subject="Cannot login", body="I forgot my password")
    assert created["status"] == "RECEIVED"
    assert created["workflow_id"] == f"ticket-{created['ticket_id']}"
    t = wait_status(api, created["ticket_id"], "RESOLVED")
    assert t["source"] == "live"
    assert t["classification"]["category"] == "account"
    assert t["decision"]["approver"] == "auto"
    assert t["outcome"]["status"] == "RESOLVED"
    assert refunds(stack, created["ticket_id"]) == []
    assert replies(stack, created["ticket_id"]) == [("resolution",)]


def test_small_refund_is_auto_approved_and_paid_once(stack: Stack, api: httpx.Client) -> None:
    created = submit(
        api,
        subject="Refund please",
        body="refund my order",
        order_id="o-1",
        requested_refund_cents=1500,
    )
    t = wait_status(api, created["ticket_id"], "RESOLVED")
    assert t["decision"]["approver"] == "auto"
    assert refunds(stack, created["ticket_id"]) == [(1500,)]


def test_large_refund_waits_for_an_authenticated_approver(stack: Stack, api: httpx.Client) -> None:
    created = submit(
        api,
        subject="Refund please",
        body="refund my order",
        order_id="o-2",
        requested_refund_cents=25_000,
    )
    tid = created["ticket_id"]
    wait_status(api, tid, "WAITING_APPROVAL")
    eventually(
        lambda: (
            tid
            in [
                x["ticket_id"]
                for x in api.get("/tickets", params={"status": "WAITING_APPROVAL"}).json()[
                    "tickets"
                ]
            ]
        ),
        what="the waiting ticket in the visibility listing",
    )
    assert refunds(stack, tid) == []

    no_token = api.post(f"/tickets/{tid}/decision", json={"approved": True})
    assert no_token.status_code == 401
    bad_token = api.post(
        f"/tickets/{tid}/decision",
        json={"approved": True},
        headers={"Authorization": "Bearer nope"},
    )
    assert bad_token.status_code == 401
    assert wait_status(api, tid, "WAITING_APPROVAL")  # still waiting: nothing was decided

    ok = api.post(
        f"/tickets/{tid}/decision",
        json={"approved": True, "reason": "vip"},
        headers=bearer("alice"),
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["ticket_id"] == tid
    t = wait_status(api, tid, "RESOLVED")
    assert t["decision"]["approver"] == "alice" and t["decision"]["reason"] == "vip"
    assert refunds(stack, tid) == [(25_000,)]

    dup = api.post(f"/tickets/{tid}/decision", json={"approved": False}, headers=bearer("bob"))
    assert dup.status_code == 409, dup.text
    assert refunds(stack, tid) == [(25_000,)]


def test_rejection_pays_nothing_and_a_second_decision_conflicts(
    stack: Stack, api: httpx.Client
) -> None:
    created = submit(api, subject="Refund please", body="refund", requested_refund_cents=90_000)
    tid = created["ticket_id"]
    wait_status(api, tid, "WAITING_APPROVAL")
    r = api.post(
        f"/tickets/{tid}/decision",
        json={"approved": False, "reason": "no receipt"},
        headers=bearer("bob"),
    )
    assert r.status_code == 200, r.text
    again = api.post(f"/tickets/{tid}/decision", json={"approved": True}, headers=bearer("alice"))
    assert again.status_code == 409, again.text
    t = wait_status(api, tid, "REJECTED")
    assert t["decision"]["approved"] is False and t["decision"]["approver"] == "bob"
    eventually(lambda: replies(stack, tid) == [("rejection",)], what="the holding reply")
    assert refunds(stack, tid) == []


def test_unclear_ticket_times_out_to_escalated_and_late_decision_conflicts(
    stack: Stack, api: httpx.Client
) -> None:
    # A second api process with a short approval timeout: policy is fixed per ticket at start.
    port = str(free_port())
    short = stack.start_api(
        "api-short-timeout",
        TICKETFLOW_HTTP_PORT=port,
        TICKETFLOW_GRPC_PORT=str(free_port()),
        TICKETFLOW_APPROVAL_TIMEOUT_S="2",
    )
    try:
        created = submit(short, subject="hmm", body="something odd happened")
        tid = created["ticket_id"]
        t = wait_status(api, tid, "ESCALATED")
        assert t["classification"]["category"] == "other"
        late = api.post(
            f"/tickets/{tid}/decision", json={"approved": True}, headers=bearer("alice")
        )
        assert late.status_code == 409, late.text
        eventually(lambda: replies(stack, tid) == [("escalation",)], what="the escalation reply")
    finally:
        short.close()
        stack.stop("api-short-timeout")


def test_unknown_ticket_is_404_everywhere(api: httpx.Client) -> None:
    assert api.get("/tickets/no-such-ticket").status_code == 404
    r = api.post(
        "/tickets/no-such-ticket/decision", json={"approved": True}, headers=bearer("alice")
    )
    assert r.status_code == 404


def test_same_ticket_id_same_content_is_200_other_content_409(api: httpx.Client) -> None:
    body = {"ticket_id": "idem-e2e-1", "customer_id": "c9", "subject": "login", "body": "password"}
    first = api.post("/tickets", json=body)
    assert first.status_code == 202, first.text
    again = api.post("/tickets", json=body)
    assert again.status_code == 200 and again.json()["ticket_id"] == "idem-e2e-1"
    other = api.post("/tickets", json={**body, "body": "different"})
    assert other.status_code == 409, other.text
