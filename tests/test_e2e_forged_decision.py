"""A decision sent straight to the Temporal frontend, past the api and its approver tokens, is
refused by the core worker's `decide` validator and pays nothing (docs/architecture.md, "The
ticket workflow"): real dev server, real core worker, agent worker, projection and api processes.
"""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest
from ticketflow.runtime.devserver import temporal_binary

from .harness import Stack, bearer, submit, wait_status

# Starting the stack (dev server and four service processes) takes most of it.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def temporal_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [temporal_binary(), *args, "--address", f"127.0.0.1:{stack.temporal_port}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def forge(stack: Stack, ticket_id: str, decision: dict[str, object]) -> str:
    """`temporal workflow update execute ... --name decide`: what anyone who reaches the
    frontend can run. Returns its output; it must fail."""
    done = temporal_cli(
        stack,
        "workflow",
        "update",
        "execute",
        "--workflow-id",
        f"ticket-{ticket_id}",
        "--name",
        "decide",
        "--input",
        json.dumps(decision),
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, f"the forged decision was accepted:\n{output}"
    return output


def update_events(stack: Stack, ticket_id: str) -> list[str]:
    done = temporal_cli(
        stack, "workflow", "show", "--workflow-id", f"ticket-{ticket_id}", "--output", "json"
    )
    assert done.returncode == 0, done.stderr
    events = json.loads(done.stdout)["events"]
    assert events, done.stdout
    # The CLI's JSON names types EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED and the like.
    return [e["eventType"] for e in events if "update" in str(e["eventType"]).lower()]


def refunds(stack: Stack, ticket_id: str) -> list[tuple]:
    return stack.sql("ledger.db", "SELECT amount_cents FROM refunds WHERE ticket_id = ?", ticket_id)


def test_a_forged_decide_through_the_temporal_cli_is_refused_and_pays_nothing(
    stack: Stack, api: httpx.Client
) -> None:
    created = submit(
        api,
        subject="Refund please",
        body="refund my order",
        order_id="o-forged",
        requested_refund_cents=25_000,
    )
    tid = created["ticket_id"]
    wait_status(api, tid, "WAITING_APPROVAL")

    unsigned = {"approved": True, "approver": "someone-who-never-signed-in", "reason": "x"}
    assert "not signed by the api" in forge(stack, tid, unsigned)
    invented = {**unsigned, "key_id": "e2e", "signature": "0" * 64}
    assert "signature does not match" in forge(stack, tid, invented)

    # Refused by the validator: nothing in history, still waiting, nothing paid.
    assert update_events(stack, tid) == []
    t = wait_status(api, tid, "WAITING_APPROVAL")
    assert t["decision"] is None
    assert refunds(stack, tid) == []
    assert "someone-who-never-signed-in" not in stack.log("ticketflow-core-worker")

    # The api's decision, from an authenticated approver, is signed and goes through.
    ok = api.post(f"/tickets/{tid}/decision", json={"approved": True}, headers=bearer("alice"))
    assert ok.status_code == 200, ok.text
    t = wait_status(api, tid, "RESOLVED")
    assert t["decision"]["approver"] == "alice"
    assert refunds(stack, tid) == [(25_000,)]
