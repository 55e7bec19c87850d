"""The logs of a whole run, at DEBUG: one JSON format for every service, the ticket's ids on every
line about a ticket, and no ticket body, customer data, decision reason or token in any line.

Every secret-bearing value of the run carries a marker; the test greps every process's output
(dev server included) for the markers.
"""

from __future__ import annotations

from typing import Any

import pytest
from ticketflow.testkit import json_log_lines

from .harness import DECISION_KEYS, TOKENS, Stack, bearer, submit, wait_status

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

READMODEL_TOKEN = "SECRETreadmodeltoken0123456789"
SERVICES = ("ticketflow-api", "ticketflow-core-worker", "ticketflow-agent-worker")


def test_a_debug_run_logs_ids_in_one_format_and_no_secrets(stack_factory: Any) -> None:
    stack: Stack = stack_factory(
        TICKETFLOW_LOG_LEVEL="DEBUG",
        TICKETFLOW_READMODEL_TOKEN=READMODEL_TOKEN,
    )
    stack.start_all()
    api = stack.start_api()
    tickets = []
    plan = [("Cannot login", "forgot my password", None), ("Refund", "refund my order", 25_000)]
    for i, (subject, body, cents) in enumerate(plan):
        fields: dict[str, Any] = {
            "ticket_id": f"logs-{i}",
            "customer_id": f"SECRETcustomer{i}",
            "subject": f"{subject} SECRETsubject{i}",
            "body": f"{body} SECRETbody{i}",
            "order_id": f"SECRETorder{i}",
        }
        if cents:
            fields["requested_refund_cents"] = cents
        tickets.append(submit(api, **fields)["ticket_id"])
    wait_status(api, tickets[1], "WAITING_APPROVAL")
    decided = api.post(
        f"/tickets/{tickets[1]}/decision",
        json={"approved": True, "reason": "SECRETreason loyal customer"},
        headers=bearer("alice"),
    )
    assert decided.status_code == 200, decided.text
    refused = api.post(
        f"/tickets/{tickets[0]}/decision",
        json={"approved": True, "reason": "SECRETreason2"},
        headers={"Authorization": "Bearer SECRETwrongtoken"},
    )
    assert refused.status_code == 401
    for tid in tickets:
        wait_status(api, tid, "RESOLVED", "REJECTED", "ESCALATED")
    stack.close()  # every process flushed and stopped: the logs are complete

    logs = {path.name: path.read_text(errors="replace") for path in stack.logs.glob("*.log")}
    everything = "\n".join(logs.values())
    secrets = ["SECRET", *TOKENS.values(), DECISION_KEYS.split(":", 1)[1], READMODEL_TOKEN]
    for secret in secrets:
        leaks = [line for line in everything.splitlines() if secret in line]
        assert not leaks, f"{secret!r} in the logs:\n" + "\n".join(leaks[:5])

    for name in [*SERVICES, "ticketflow-projection"]:
        text = "\n".join(v for k, v in logs.items() if k.startswith(f"{name}."))
        records = json_log_lines(text)
        assert records, f"no JSON log line from {name}"
        for r in records:
            assert {"timestamp", "level", "logger", "message", "service"} <= r.keys(), r
        # Every line about a ticket says which, in fields a log search can filter on.
        for r in records:
            for tid in tickets:
                if tid in r["message"]:
                    assert r.get("ticket_id") == tid, r
                    assert r.get("workflow_id") == f"ticket-{tid}", r
        about = [r for r in records if r.get("ticket_id") in tickets]
        assert about, f"{name} logged nothing about the tickets"
    # A worker's lines about a ticket carry the trace of the ticket.
    core = json_log_lines("\n".join(v for k, v in logs.items() if "core-worker" in k))
    assert any(r.get("trace_id") and r.get("ticket_id") for r in core)
