"""The operator CLI (`ticketflow tickets ...`, the real console script) against the real stack."""

from __future__ import annotations

import json
import os
import subprocess

import httpx
import pytest

from .harness import BIN, TOKENS, Stack, eventually, submit, wait_status

# A module's first test also starts the stack (dev server and four service processes).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def ticketflow(stack: Stack, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_")}
    env["TICKETFLOW_API_URL"] = f"http://127.0.0.1:{stack.http_port}"
    env["TICKETFLOW_TOKEN"] = TOKENS["alice"]
    return subprocess.run(
        [str(BIN / "ticketflow"), "tickets", *argv],
        env=env,
        cwd=stack.root,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_an_operator_approves_a_waiting_refund_with_the_cli(
    stack: Stack, api: httpx.Client
) -> None:
    tid = submit(
        api,
        subject="Refund",
        body="refund my order",
        order_id="o-42",
        requested_refund_cents=25_000,
    )["ticket_id"]
    wait_status(api, tid, "WAITING_APPROVAL")

    def queued() -> bool:
        listed = ticketflow(stack, "list", "--status", "WAITING_APPROVAL", "--all", "--json")
        assert listed.returncode == 0, listed.stderr
        return tid in [t["ticket_id"] for t in json.loads(listed.stdout)["tickets"]]

    eventually(queued, timeout=30, what=f"{tid} in the CLI's approval queue")

    approved = ticketflow(stack, "approve", tid, "--reason", "loyal customer")
    assert approved.returncode == 0, approved.stderr
    assert "approved by alice" in approved.stdout and "loyal customer" in approved.stdout
    assert TOKENS["alice"] not in approved.stdout + approved.stderr

    done = wait_status(api, tid, "RESOLVED")
    assert done["refund"]["amount_cents"] == 25_000
    refunds = stack.sql("ledger.db", "SELECT amount_cents FROM refunds WHERE ticket_id = ?", tid)
    assert refunds == [(25_000,)]  # paid once

    shown = ticketflow(stack, "show", tid)
    assert shown.returncode == 0 and "RESOLVED" in shown.stdout and "250.00" in shown.stdout

    # Another decision now: the api's 409, exit code 4, nothing paid again.
    late = ticketflow(stack, "reject", tid, "--reason", "changed my mind")
    assert late.returncode == 4, late.stderr
    assert late.stderr.startswith("ticketflow: ") and tid in late.stderr
    assert stack.sql("ledger.db", "SELECT count(*) FROM refunds WHERE ticket_id = ?", tid) == [(1,)]


def test_an_operator_cancels_an_undecided_ticket_with_the_cli(
    stack: Stack, api: httpx.Client
) -> None:
    tid = submit(
        api, subject="Refund", body="refund my order", order_id="o-7", requested_refund_cents=9_000
    )["ticket_id"]
    wait_status(api, tid, "WAITING_APPROVAL")

    cancelled = ticketflow(stack, "cancel", tid)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancel requested while WAITING_APPROVAL" in cancelled.stdout

    done = wait_status(api, tid, "ESCALATED")
    assert done["escalation_reason"].startswith("cancelled by an operator")
    assert done["reply"]["kind"] == "escalation"  # the customer is told, once
    assert stack.sql("ledger.db", "SELECT count(*) FROM refunds WHERE ticket_id = ?", tid) == [(0,)]

    # Sent again (its answer lost, say): the same outcome, not an error.
    again = ticketflow(stack, "cancel", tid, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"ticket_id": tid, "status": "ESCALATED", "already": True}

    # Too late to decide now: exit 4 with the api's message; a bad token: exit 1.
    late = ticketflow(stack, "approve", tid, "--reason", "r")
    assert late.returncode == 4, late.stderr
    env_token = {"TICKETFLOW_TOKEN": "wrong-token-0123456789"}
    refused = ticketflow_env(stack, env_token, "cancel", tid)
    assert refused.returncode == 1 and "TICKETFLOW_TOKEN" in refused.stderr


def ticketflow_env(
    stack: Stack, extra: dict[str, str], *argv: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_")}
    env["TICKETFLOW_API_URL"] = f"http://127.0.0.1:{stack.http_port}"
    env.update(extra)
    return subprocess.run(
        [str(BIN / "ticketflow"), "tickets", *argv],
        env=env,
        cwd=stack.root,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
