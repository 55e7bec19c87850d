"""Agent routing across real processes: no agent at all, then only the fallback model."""

from __future__ import annotations

import pytest

from .harness import bearer, submit, wait_status

# A whole stack, and tickets that must first wait out their routing budgets.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_escalated_without_agents_then_fallback_routing_needs_a_human(stack_factory) -> None:
    stack = stack_factory(
        TICKETFLOW_AGENT_SCHEDULE_TO_START_S="1",
        TICKETFLOW_FALLBACK_SCHEDULE_TO_START_S="2",
        # The primary is asked again after the fallback answers (never answers here): short.
        TICKETFLOW_PRIMARY_RECHECK_SCHEDULE_TO_START_S="2",
    )
    stack.start_temporal()
    stack.start("ticketflow-core-worker")
    stack.start("ticketflow-projection")
    api = stack.start_api()

    # No agent worker polls at all: the fallback's budget runs out too, the ticket is ESCALATED.
    lost = submit(api, subject="Cannot login", body="password reset please")
    t = wait_status(api, lost["ticket_id"], "ESCALATED")
    assert "classify" in t["escalation_reason"]
    assert t["outcome"]["status"] == "ESCALATED"

    # Only the fallback model polls: confident keywords, but fallback answers always need a human.
    stack.start("ticketflow-agent-worker", "--queue", "fallback")
    routed = submit(api, subject="Cannot login", body="password reset please")
    t = wait_status(api, routed["ticket_id"], "WAITING_APPROVAL")
    assert t["classification"]["tier"] == "fallback"
    assert t["classification"]["category"] == "account"
    assert t["classification"]["confidence"] < 0.8
    calls = [(c["activity"], c["tier"], c["ok"]) for c in t["agent_calls"]]
    assert calls[-1] == ("classify", "primary", False)  # the re-ask, unanswered
    r = api.post(
        f"/tickets/{routed['ticket_id']}/decision", json={"approved": True}, headers=bearer("alice")
    )
    assert r.status_code == 200, r.text
    wait_status(api, routed["ticket_id"], "RESOLVED")
    api.close()
