"""Only decisions the api vouches for reach a ticket: the `decide` validator checks the api's
HMAC signature (docs/architecture.md, "The ticket workflow"), so a forged update sent straight to
the Temporal frontend is refused before anything is written to history."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from ticketflow.contracts import names
from ticketflow.contracts.decision_signing import DecisionKey
from ticketflow.contracts.models import DecideInput, DecideResult, TicketState, TicketStatus
from ticketflow.testkit import ticket_input

from ._tickets import (
    PREVIOUS_KEY,
    TEST_KEY,
    Handle,
    StartWorkers,
    count,
    signed,
    start_ticket,
    state_when,
)

UPDATE_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
}


def waiting(state: TicketState) -> bool:
    return state.status == TicketStatus.WAITING_APPROVAL


async def update_events(handle: Handle) -> list[int]:
    return [
        e.event_type async for e in handle.fetch_history_events() if e.event_type in UPDATE_EVENTS
    ]


async def refused(handle: Handle, decision: DecideInput) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await handle.execute_update(names.DECIDE_UPDATE, decision, result_type=DecideResult)
    return str(exc.value.cause)


async def test_forged_decisions_are_refused_and_leave_no_trace(
    dev_env: WorkflowEnvironment, start_workers: StartWorkers, ledger_path: Path
) -> None:
    await start_workers(dev_env)
    inp = ticket_input(refund_cents=25_000)
    tid = inp.ticket.ticket_id
    handle = await start_ticket(dev_env.client, inp)
    await state_when(handle, waiting, "WAITING_APPROVAL")

    forged = DecideInput(approved=True, approver="someone-who-never-signed-in", reason="x")
    assert "not signed by the api" in await refused(handle, forged)
    # Signed with a key the worker does not hold, or for another ticket, or altered afterwards.
    stranger = DecisionKey("test-2", b"x" * 32)
    assert "signature does not match" in await refused(handle, signed(tid, forged, stranger))
    assert "signature does not match" in await refused(handle, signed("other-ticket", forged))
    tampered = signed(tid, forged.model_copy(update={"approved": False}))
    tampered.approved = True
    assert "signature does not match" in await refused(handle, tampered)
    unknown = DecisionKey("retired", b"k" * 32)
    assert "unknown key id 'retired'" in await refused(handle, signed(tid, forged, unknown))

    # Nothing reached history; the ticket still waits and nothing was paid.
    assert await update_events(handle) == []
    state = await handle.query(names.STATUS_QUERY, result_type=TicketState)
    assert waiting(state) and state.decision is None and state.accepting_decisions
    assert count(ledger_path, "SELECT count(*) FROM refunds WHERE ticket_id=?", tid) == 0

    # The api's signed decision is accepted.
    res = await handle.execute_update(
        names.DECIDE_UPDATE,
        signed(tid, DecideInput(approved=True, approver="alice", reason="checked")),
        result_type=DecideResult,
    )
    assert res.decision.approver == "alice"
    out = await handle.result()
    assert out.status == TicketStatus.RESOLVED and out.decision and out.decision.approver == "alice"
    assert count(ledger_path, "SELECT count(*) FROM refunds WHERE ticket_id=?", tid) == 1


async def test_a_decision_signed_with_the_previous_key_is_accepted_while_it_is_listed(
    dev_env: WorkflowEnvironment, start_workers: StartWorkers
) -> None:
    await start_workers(dev_env, decision_keys=(TEST_KEY, PREVIOUS_KEY))
    inp = ticket_input(refund_cents=25_000)
    handle = await start_ticket(dev_env.client, inp)
    await state_when(handle, waiting, "WAITING_APPROVAL")
    decision = signed(
        inp.ticket.ticket_id, DecideInput(approved=False, approver="bob"), PREVIOUS_KEY
    )
    res = await handle.execute_update(names.DECIDE_UPDATE, decision, result_type=DecideResult)
    assert res.status == TicketStatus.REJECTED and res.decision.approver == "bob"
    assert (await handle.result()).status == TicketStatus.REJECTED


async def test_a_dropped_key_no_longer_verifies(
    dev_env: WorkflowEnvironment, start_workers: StartWorkers
) -> None:
    await start_workers(dev_env, decision_keys=(TEST_KEY,))
    inp = ticket_input(refund_cents=25_000)
    handle = await start_ticket(dev_env.client, inp)
    await state_when(handle, waiting, "WAITING_APPROVAL")
    decision = signed(
        inp.ticket.ticket_id, DecideInput(approved=True, approver="bob"), PREVIOUS_KEY
    )
    assert "unknown key id 'test-1'" in await refused(handle, decision)
    assert await update_events(handle) == []
    await handle.terminate("test over")  # the dev server is shared by the session's tests


async def test_a_core_worker_without_keys_refuses_every_human_decision(
    dev_env: WorkflowEnvironment, start_workers: StartWorkers
) -> None:
    # Fails closed: no key, no way to tell the api's decisions from forged ones.
    await start_workers(dev_env, decision_keys=())
    inp = ticket_input(refund_cents=25_000)
    handle = await start_ticket(dev_env.client, inp)
    await state_when(handle, waiting, "WAITING_APPROVAL")
    decision = signed(inp.ticket.ticket_id, DecideInput(approved=True, approver="alice"))
    assert "no decision keys configured" in await refused(handle, decision)
    assert await update_events(handle) == []
    await handle.terminate("test over")


async def test_a_worker_built_without_the_decision_auth_interceptor_fails_closed(
    dev_env: WorkflowEnvironment, start_workers: StartWorkers
) -> None:
    await start_workers(dev_env, decision_keys=None)
    inp = ticket_input(refund_cents=25_000)
    handle = await start_ticket(dev_env.client, inp)
    await state_when(handle, waiting, "WAITING_APPROVAL")
    decision = signed(inp.ticket.ticket_id, DecideInput(approved=True, approver="alice"))
    assert "cannot verify decisions" in await refused(handle, decision)
    await handle.terminate("test over")
