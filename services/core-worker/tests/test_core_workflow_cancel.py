"""Operators cancel tickets, ids come back after their history is gone, agents refuse input:
every ticket still reaches an end, and no side effect is doubled or lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from ticketflow.contracts import names
from ticketflow.contracts.models import (
    Classification,
    ClassifyInput,
    DecideInput,
    DecideResult,
    IssueRefundInput,
    ModelTier,
    RefundReceipt,
    ReplyKind,
    TicketState,
    TicketStatus,
)
from ticketflow.core_worker.activities import SideEffectActivities
from ticketflow.core_worker.ledger import RefundLedger
from ticketflow.core_worker.outbox import ReplyOutbox
from ticketflow.testkit import eventually_async, fake_agent, ticket_input

from ._tickets import StartWorkers, count, signed, start_ticket, state_when


def waiting(state: TicketState) -> bool:
    return state.status == TicketStatus.WAITING_APPROVAL


async def test_cancel_while_waiting_for_approval_escalates_instead_of_hanging(
    dev_env: WorkflowEnvironment, start_workers: StartWorkers, ledger_path: Path
) -> None:
    await start_workers(dev_env)
    inp = ticket_input(refund_cents=60_000)
    handle = await start_ticket(dev_env.client, inp)
    await state_when(handle, waiting, "WAITING_APPROVAL")
    await handle.cancel()
    out = await handle.result()
    assert out.status == TicketStatus.ESCALATED
    assert out.escalation_reason == "cancelled by an operator while WAITING_APPROVAL"
    assert out.reply and out.reply.kind == ReplyKind.ESCALATION
    assert out.refund is None
    assert count(ledger_path, "SELECT count(*) FROM refunds") == 0


async def test_cancel_during_an_approved_refund_pays_once_and_resolves(
    dev_env: WorkflowEnvironment,
    start_workers: StartWorkers,
    side_effects: SideEffectActivities,
    ledger_path: Path,
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    loop = asyncio.get_running_loop()

    @activity.defn(name=names.ISSUE_REFUND)
    def slow_refund(inp: IssueRefundInput) -> RefundReceipt:
        # Hold the first attempt until the test has sent the cancel; the effect then commits
        # after the workflow was told the activity was cancelled.
        loop.call_soon_threadsafe(started.set)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(timeout=60)
        return side_effects.issue_refund(inp)

    await start_workers(dev_env, core_activities=[slow_refund, side_effects.send_reply])
    inp = ticket_input(refund_cents=30_000)
    handle = await start_ticket(dev_env.client, inp)
    await state_when(handle, waiting, "WAITING_APPROVAL")
    await handle.execute_update(
        names.DECIDE_UPDATE,
        signed(inp.ticket.ticket_id, DecideInput(approved=True, approver="alice")),
        result_type=DecideResult,
    )
    await asyncio.wait_for(started.wait(), 30)
    await handle.cancel()

    async def cancel_recorded() -> bool:
        # The refund is a local activity (v6): no activity task of its own to cancel. The cancel
        # lands in the workflow while the refund is held; the workflow must still finish it.
        async for event in handle.fetch_history_events():
            if event.HasField("workflow_execution_cancel_requested_event_attributes"):
                return True
        return False

    await eventually_async(cancel_recorded, timeout=30, what="the cancel during the held refund")
    release.set()
    out = await handle.result()
    tid = inp.ticket.ticket_id
    assert out.status == TicketStatus.RESOLVED
    assert out.refund is not None and out.refund.amount_cents == 30_000
    assert count(ledger_path, "SELECT count(*) FROM refunds WHERE ticket_id=?", tid) == 1
    assert out.reply and out.reply.kind == ReplyKind.RESOLUTION


async def test_a_second_run_of_an_id_whose_reply_was_sent_does_not_fail(
    dev_env: WorkflowEnvironment,
    start_workers: StartWorkers,
    outbox: ReplyOutbox,
    ledger_path: Path,
) -> None:
    # As if the id ran before (history since deleted): its reply is in the outbox already.
    inp = ticket_input(refund_cents=90_000)
    tid = inp.ticket.ticket_id
    first = outbox.send_reply(ticket_id=tid, customer_id="cust-1", kind="resolution", body="done")
    await start_workers(dev_env)
    handle = await start_ticket(dev_env.client, inp)
    await state_when(handle, waiting, "WAITING_APPROVAL")
    await handle.execute_update(
        names.DECIDE_UPDATE,
        signed(inp.ticket.ticket_id, DecideInput(approved=False, approver="bob")),
        result_type=DecideResult,
    )
    out = await handle.result()
    assert out.status == TicketStatus.REJECTED
    assert out.reply and out.reply.already_sent and out.reply.reply_id == first.reply_id
    assert count(ledger_path, "SELECT count(*) FROM replies WHERE ticket_id=?", tid) == 1


async def test_input_the_primary_refuses_is_not_retried_on_the_fallback(
    dev_env: WorkflowEnvironment, start_workers: StartWorkers
) -> None:
    @activity.defn(name=names.CLASSIFY)
    async def refusing(inp: ClassifyInput) -> Classification:
        raise ApplicationError(
            "cannot read this ticket", type="InvalidAgentInput", non_retryable=True
        )

    await start_workers(dev_env, primary_activities=[refusing, fake_agent(ModelTier.PRIMARY)[1]])
    inp = ticket_input()
    out = await (await start_ticket(dev_env.client, inp)).result()
    assert out.status == TicketStatus.ESCALATED
    assert [(c.tier, c.ok) for c in out.agent_calls] == [(ModelTier.PRIMARY, False)]
    assert "InvalidAgentInput" in (out.agent_calls[0].error or "")


async def test_a_refused_refund_escalates_with_the_holding_reply(
    dev_env: WorkflowEnvironment,
    start_workers: StartWorkers,
    refund_ledger: RefundLedger,
    ledger_path: Path,
) -> None:
    inp = ticket_input(refund_cents=1_500)  # small: auto-approved
    tid = inp.ticket.ticket_id
    refund_ledger.apply_refund(ticket_id=tid, customer_id="cust-1", order_id=None, amount_cents=700)
    await start_workers(dev_env)
    out = await (await start_ticket(dev_env.client, inp)).result()
    assert out.status == TicketStatus.ESCALATED
    assert (out.escalation_reason or "").startswith("refund failed: error:LedgerConflict")
    assert out.refund is None
    assert out.reply and out.reply.kind == ReplyKind.ESCALATION and not out.reply.already_sent
    assert count(ledger_path, "SELECT amount_cents FROM refunds WHERE ticket_id=?", tid) == 700
