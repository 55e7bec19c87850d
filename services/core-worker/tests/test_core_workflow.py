"""TicketWorkflow on the real dev server, with the real ledger and outbox and the fake agent."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from ticketflow.contracts import names
from ticketflow.contracts.models import (
    DecideInput,
    DecideResult,
    ReplyKind,
    TicketFacts,
    TicketState,
    TicketStatus,
)
from ticketflow.contracts.search_attributes import TICKET_STATUS
from ticketflow.testkit import eventually_async, ticket_input

from ._tickets import StartWorkers, count, signed, start_ticket, state_when


def waiting(state: TicketState) -> bool:
    return state.status == TicketStatus.WAITING_APPROVAL


async def test_confident_reply_only_ticket_resolves_without_a_human(
    dev_env: WorkflowEnvironment, start_workers: StartWorkers, ledger_path: Path
) -> None:
    projected = await start_workers(dev_env)
    inp = ticket_input()
    handle = await start_ticket(dev_env.client, inp)
    out = await handle.result()
    assert out.status == TicketStatus.RESOLVED
    assert out.decision and out.decision.auto and out.decision.approver == "auto"
    assert out.refund is None and out.reply and out.reply.kind == ReplyKind.RESOLUTION
    assert (
        count(ledger_path, "SELECT count(*) FROM replies WHERE ticket_id=?", inp.ticket.ticket_id)
        == 1
    )
    assert [o.ticket_id for o in projected.outcomes] == [inp.ticket.ticket_id]
    state = await handle.query(names.STATUS_QUERY, result_type=TicketState)
    assert [h.status for h in state.history] == [
        TicketStatus.RECEIVED,
        TicketStatus.CLASSIFYING,
        TicketStatus.DRAFTING,
        TicketStatus.EXECUTING,
        TicketStatus.RESOLVED,
    ]
    assert state.side_effects_done and not state.accepting_decisions
    # The query reports the same facts as the outcome, and the outcome itself once done.
    assert state.outcome == out
    facts = set(TicketFacts.model_fields)
    assert state.model_dump(include=facts) == out.model_dump(include=facts)
    desc = await handle.describe()
    assert desc.typed_search_attributes.get(TICKET_STATUS) == "RESOLVED"


async def test_small_refund_is_auto_approved_and_paid_once(
    dev_env: WorkflowEnvironment, start_workers: StartWorkers, ledger_path: Path
) -> None:
    await start_workers(dev_env)
    inp = ticket_input(refund_cents=1999)
    out = await (await start_ticket(dev_env.client, inp)).result()
    assert out.status == TicketStatus.RESOLVED
    assert out.refund and out.refund.amount_cents == 1999
    tid = inp.ticket.ticket_id
    assert count(ledger_path, "SELECT count(*) FROM refunds WHERE ticket_id=?", tid) == 1
    assert count(ledger_path, "SELECT amount_cents FROM refunds WHERE ticket_id=?", tid) == 1999


async def test_large_refund_waits_then_approved_by_a_human(
    dev_env: WorkflowEnvironment, start_workers: StartWorkers, ledger_path: Path
) -> None:
    await start_workers(dev_env)
    inp = ticket_input(refund_cents=25_000)
    tid = inp.ticket.ticket_id
    handle = await start_ticket(dev_env.client, inp)
    state = await state_when(handle, waiting, "WAITING_APPROVAL")
    assert state.accepting_decisions and state.approval_deadline is not None
    assert state.outcome is None and not state.side_effects_done
    assert count(ledger_path, "SELECT count(*) FROM refunds WHERE ticket_id=?", tid) == 0
    res = await handle.execute_update(
        names.DECIDE_UPDATE,
        signed(
            inp.ticket.ticket_id,
            DecideInput(approved=True, approver="alice", reason="loyal customer"),
        ),
        result_type=DecideResult,
    )
    assert res.status in (TicketStatus.EXECUTING, TicketStatus.RESOLVED)
    assert res.decision.approver == "alice"
    out = await handle.result()
    assert (
        out.status == TicketStatus.RESOLVED
        and out.decision
        and out.decision.reason == "loyal customer"
    )
    assert count(ledger_path, "SELECT amount_cents FROM refunds WHERE ticket_id=?", tid) == 25_000

    # A decision after the workflow closed: refused by the server, nothing changes.
    with pytest.raises(RPCError, match="already completed"):
        await handle.execute_update(
            names.DECIDE_UPDATE,
            signed(inp.ticket.ticket_id, DecideInput(approved=False, approver="bob")),
            result_type=DecideResult,
        )
    assert count(ledger_path, "SELECT count(*) FROM refunds WHERE ticket_id=?", tid) == 1


async def test_rejection_pays_nothing_and_sends_a_holding_reply(
    dev_env: WorkflowEnvironment, start_workers: StartWorkers, ledger_path: Path
) -> None:
    # No projection yet: the ticket stays open after its reply (waiting to be recorded), so the
    # second decision below meets the running workflow, not a closed one.
    await start_workers(dev_env, projection=False)
    inp = ticket_input(refund_cents=90_000)
    handle = await start_ticket(dev_env.client, inp)
    await state_when(handle, waiting, "WAITING_APPROVAL")
    res = await handle.execute_update(
        names.DECIDE_UPDATE,
        signed(inp.ticket.ticket_id, DecideInput(approved=False, approver="alice")),
        result_type=DecideResult,
    )
    assert res.status == TicketStatus.REJECTED
    # A second decision while the first is being carried out is refused.
    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await handle.execute_update(
            names.DECIDE_UPDATE,
            signed(inp.ticket.ticket_id, DecideInput(approved=True, approver="bob")),
            result_type=DecideResult,
        )
    assert "already decided" in str(exc.value.cause)
    await start_workers(dev_env, core=False, primary=False, fallback=False)
    out = await handle.result()
    assert out.status == TicketStatus.REJECTED and out.refund is None
    assert out.reply and out.reply.kind == ReplyKind.REJECTION
    assert (
        count(ledger_path, "SELECT count(*) FROM refunds WHERE ticket_id=?", inp.ticket.ticket_id)
        == 0
    )


async def test_decision_refused_when_not_waiting(
    dev_env: WorkflowEnvironment, start_workers: StartWorkers
) -> None:
    await start_workers(dev_env, primary=False, fallback=False)
    # No agent worker: the ticket sits in CLASSIFYING (long budgets), not waiting for approval.
    inp = ticket_input(agent_schedule_to_start_s=3600, fallback_schedule_to_start_s=3600)
    handle = await start_ticket(dev_env.client, inp)
    await state_when(handle, lambda s: s.status == TicketStatus.CLASSIFYING, "CLASSIFYING")
    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await handle.execute_update(
            names.DECIDE_UPDATE,
            signed(inp.ticket.ticket_id, DecideInput(approved=True, approver="alice")),
            result_type=DecideResult,
        )
    assert "not waiting for approval" in str(exc.value.cause)
    await handle.terminate("test over")


async def test_waiting_tickets_are_listed_by_search_attribute(
    dev_env: WorkflowEnvironment, start_workers: StartWorkers
) -> None:
    await start_workers(dev_env)
    inp = ticket_input(refund_cents=70_000)
    handle = await start_ticket(dev_env.client, inp)
    await state_when(handle, waiting, "WAITING_APPROVAL")
    query = f'WorkflowId = "{handle.id}" AND TicketStatus = "WAITING_APPROVAL"'

    async def listed() -> bool:
        return bool([wf async for wf in dev_env.client.list_workflows(query)])

    await eventually_async(listed, timeout=30, what="visibility listing the waiting ticket")
    await handle.terminate("test over")
