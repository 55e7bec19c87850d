"""Helpers of core-worker's workflow tests: start a ticket, wait for a state, count ledger rows."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from temporalio.client import Client, WorkflowHandle
from ticketflow.contracts import names
from ticketflow.contracts.decision_signing import DecisionKey, sign_decision
from ticketflow.contracts.models import DecideInput, TicketInput, TicketOutcome, TicketState
from ticketflow.core_worker._store import LedgerStore
from ticketflow.testkit import BACKENDS, RecordedOutcomes, eventually_async

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


# A module whose tests take the ``ledger_url`` fixture (through ``refund_ledger``, ``outbox`` or
# ``ledger_store``) runs each of them on SQLite and on a real PostgreSQL.
BOTH_BACKENDS = pytest.mark.parametrize("ledger_url", BACKENDS, indirect=True)


def rows(where: Path | LedgerStore, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Rows of the ledger store, read the way ops read it: plain SQL (``?`` placeholders) on the
    SQLite file, or on the PostgreSQL database through the store's engine."""
    if isinstance(where, Path):
        with closing(sqlite3.connect(where)) as conn:
            return conn.execute(sql, args).fetchall()
    parts = sql.split("?")
    named = "".join(f"{part}:p{i}" for i, part in enumerate(parts[:-1])) + parts[-1]
    with where.engine.connect() as conn:
        result = conn.execute(text(named), {f"p{i}": arg for i, arg in enumerate(args)})
        return [tuple(row) for row in result]


def count(where: Path | LedgerStore, sql: str, *args: object) -> int:
    """One number from the ledger store (see ``rows``)."""
    return int(rows(where, sql, *args)[0][0])


# The decision keys the test core worker verifies with (conftest ``start_workers``): the current
# signer, and a previous one still listed (rotation).
TEST_KEY = DecisionKey("test-2", b"k" * 32)
PREVIOUS_KEY = DecisionKey("test-1", b"p" * 32)
TEST_KEYS = (TEST_KEY, PREVIOUS_KEY)


def signed(ticket_id: str, decision: DecideInput, key: DecisionKey = TEST_KEY) -> DecideInput:
    """``decision`` as the api sends it: signed for ``ticket_id``."""
    return sign_decision(ticket_id, decision, key)
