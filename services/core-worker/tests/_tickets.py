"""Helpers of core-worker's workflow tests: start a ticket, wait for a state, count ledger rows."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from ticketflow.contracts import names
from ticketflow.contracts.decision_signing import DecisionKey, sign_decision
from ticketflow.contracts.models import DecideInput, TicketInput, TicketOutcome, TicketState
from ticketflow.testkit import RecordedOutcomes, eventually_async

Handle = WorkflowHandle[Any, TicketOutcome]
# The conftest fixture ``start_workers(env, ...)``: start the workflow's workers, get the projection
# stand-in.
StartWorkers = Callable[..., Awaitable[RecordedOutcomes]]


async def start_ticket(client: Client, inp: TicketInput) -> Handle:
    return await client.start_workflow(
        names.TICKET_WORKFLOW,
        inp,
        id=names.workflow_id(inp.ticket.ticket_id),
        task_queue=names.CORE_QUEUE,
        result_type=TicketOutcome,
    )


async def state_when(
    handle: Handle, matches: Callable[[TicketState], bool], what: str
) -> TicketState:
    """The ticket's state (query ``status``) once ``matches`` holds, polled with a deadline."""

    async def check() -> TicketState:
        state = await handle.query(names.STATUS_QUERY, result_type=TicketState)
        assert matches(state), f"last status {state.status.value}"
        return state

    return await eventually_async(check, timeout=30, what=what)


def count(ledger_path: Path, sql: str, *args: object) -> int:
    """One number from ``ledger.db``, read the way ops read it: plain SQL on the file."""
    with closing(sqlite3.connect(ledger_path)) as conn:
        return int(conn.execute(sql, args).fetchone()[0])


# The decision keys the test core worker verifies with (conftest ``start_workers``): the current
# signer, and a previous one still listed (rotation).
TEST_KEY = DecisionKey("test-2", b"k" * 32)
PREVIOUS_KEY = DecisionKey("test-1", b"p" * 32)
TEST_KEYS = (TEST_KEY, PREVIOUS_KEY)


def signed(ticket_id: str, decision: DecideInput, key: DecisionKey = TEST_KEY) -> DecideInput:
    """``decision`` as the api sends it: signed for ``ticket_id``."""
    return sign_decision(ticket_id, decision, key)
