"""Operators cancel tickets, ids come back after their history is gone, agents refuse input:
every ticket still reaches an end, and no side effect is doubled or lost."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
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
from ticketflow.core_worker.activities import LedgerActivities
from ticketflow.core_worker.ledger import Ledger
from ticketflow.core_worker.testing import fake_agent
from ticketflow.core_worker.workflow import TicketWorkflow

from .conftest import make_input, start_ticket

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def until(handle, pred, timeout: float = 30.0) -> TicketState:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        state = await handle.query(names.STATUS_QUERY, result_type=TicketState)
        if pred(state):
            return state
        assert loop.time() < deadline, f"state never matched; last {state.status}"
        await asyncio.sleep(0.05)


def count(ledger: Ledger, sql: str, *args) -> int:
    with sqlite3.connect(ledger.path) as conn:
        return conn.execute(sql, args).fetchone()[0]


class Fleet:
    """The workflow's queues are contracts names: each test runs its own workers (with the
    overrides it needs) and finishes its tickets before the next test starts."""

    def __init__(self, env: WorkflowEnvironment, ledger: Ledger, **overrides) -> None:
        acts = LedgerActivities(ledger)
        self.pool = ThreadPoolExecutor(max_workers=4)
        core_acts = overrides.get("core_activities") or [acts.issue_refund, acts.send_reply]

        @activity.defn(name=names.RECORD_OUTCOME)
        async def record_outcome(outcome) -> bool:
            return True

        self.workers = [
            Worker(
                env.client,
                task_queue=names.CORE_QUEUE,
                workflows=[TicketWorkflow],
                activities=core_acts,
                activity_executor=self.pool,
                disable_eager_activity_execution=True,
            ),
            Worker(
                env.client,
                task_queue=names.AGENT_QUEUE,
                activities=overrides.get("primary") or fake_agent(ModelTier.PRIMARY),
            ),
            Worker(
                env.client,
                task_queue=names.AGENT_FALLBACK_QUEUE,
                activities=fake_agent(ModelTier.FALLBACK),
            ),
            Worker(env.client, task_queue=names.PROJECTION_QUEUE, activities=[record_outcome]),
        ]

    async def __aenter__(self) -> Fleet:
        for w in self.workers:
            await w.__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:
        for w in self.workers:
            await w.__aexit__(None, None, None)
        self.pool.shutdown()


async def test_cancel_while_waiting_for_approval_escalates_instead_of_hanging(
    dev_env: WorkflowEnvironment, ledger: Ledger
) -> None:
    async with Fleet(dev_env, ledger):
        inp = make_input(refund_cents=60_000)
        handle = await start_ticket(dev_env.client, inp)
        await until(handle, lambda s: s.status == TicketStatus.WAITING_APPROVAL)
        await handle.cancel()
        out = await handle.result()
    assert out.status == TicketStatus.ESCALATED
    assert out.escalation_reason == "cancelled by an operator while WAITING_APPROVAL"
    assert out.reply and out.reply.kind == ReplyKind.ESCALATION
    assert out.refund is None
    assert count(ledger, "SELECT count(*) FROM refunds") == 0


async def test_cancel_during_an_approved_refund_pays_once_and_resolves(
    dev_env: WorkflowEnvironment, ledger: Ledger
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    real = LedgerActivities(ledger)
    loop = asyncio.get_running_loop()

    @activity.defn(name=names.ISSUE_REFUND)
    def slow_refund(inp: IssueRefundInput) -> RefundReceipt:
        # Hold the first attempt until the test has sent the cancel; the effect then commits
        # after the workflow was told the activity was cancelled.
        loop.call_soon_threadsafe(started.set)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(timeout=60)
        return real.issue_refund(inp)

    async with Fleet(dev_env, ledger, core_activities=[slow_refund, real.send_reply]):
        inp = make_input(refund_cents=30_000)
        handle = await start_ticket(dev_env.client, inp)
        await until(handle, lambda s: s.status == TicketStatus.WAITING_APPROVAL)
        await handle.execute_update(
            names.DECIDE_UPDATE,
            DecideInput(approved=True, approver="alice"),
            result_type=DecideResult,
        )
        await asyncio.wait_for(started.wait(), 30)
        await handle.cancel()

        async def cancel_reached_the_refund() -> bool:
            async for event in handle.fetch_history_events():
                if event.HasField("activity_task_cancel_requested_event_attributes"):
                    return True
            return False

        loop_deadline = loop.time() + 30
        while not await cancel_reached_the_refund():
            assert loop.time() < loop_deadline, "the cancel never reached the held refund"
            await asyncio.sleep(0.05)
        release.set()
        out = await handle.result()
    tid = inp.ticket.ticket_id
    assert out.status == TicketStatus.RESOLVED
    assert out.refund is not None and out.refund.amount_cents == 30_000
    assert count(ledger, "SELECT count(*) FROM refunds WHERE ticket_id=?", tid) == 1
    assert out.reply and out.reply.kind == ReplyKind.RESOLUTION


async def test_a_second_run_of_an_id_whose_reply_was_sent_does_not_fail(
    dev_env: WorkflowEnvironment, ledger: Ledger
) -> None:
    # As if the id ran before (history since deleted): its reply is in the outbox already.
    inp = make_input(refund_cents=90_000)
    tid = inp.ticket.ticket_id
    first = ledger.send_reply(ticket_id=tid, customer_id="cust-1", kind="resolution", body="done")
    async with Fleet(dev_env, ledger):
        handle = await start_ticket(dev_env.client, inp)
        await until(handle, lambda s: s.status == TicketStatus.WAITING_APPROVAL)
        await handle.execute_update(
            names.DECIDE_UPDATE,
            DecideInput(approved=False, approver="bob"),
            result_type=DecideResult,
        )
        out = await handle.result()
    assert out.status == TicketStatus.REJECTED
    assert out.reply and out.reply.already_sent and out.reply.reply_id == first.reply_id
    assert count(ledger, "SELECT count(*) FROM replies WHERE ticket_id=?", tid) == 1


async def test_input_the_primary_refuses_is_not_retried_on_the_fallback(
    dev_env: WorkflowEnvironment, ledger: Ledger
) -> None:
    @activity.defn(name=names.CLASSIFY)
    async def refusing(inp: ClassifyInput) -> Classification:
        raise ApplicationError(
            "cannot read this ticket", type="InvalidAgentInput", non_retryable=True
        )

    async with Fleet(dev_env, ledger, primary=[refusing, fake_agent(ModelTier.PRIMARY)[1]]):
        inp = make_input()
        out = await (await start_ticket(dev_env.client, inp)).result()
    assert out.status == TicketStatus.ESCALATED
    assert [(c.tier, c.ok) for c in out.agent_calls] == [(ModelTier.PRIMARY, False)]
    assert "InvalidAgentInput" in (out.agent_calls[0].error or "")


async def test_a_refused_refund_escalates_with_the_holding_reply(
    dev_env: WorkflowEnvironment, ledger: Ledger
) -> None:
    inp = make_input(refund_cents=1_500)  # small: auto-approved
    tid = inp.ticket.ticket_id
    ledger.apply_refund(ticket_id=tid, customer_id="cust-1", order_id=None, amount_cents=700)
    async with Fleet(dev_env, ledger):
        out = await (await start_ticket(dev_env.client, inp)).result()
    assert out.status == TicketStatus.ESCALATED
    assert (out.escalation_reason or "").startswith("refund failed: error:LedgerConflict")
    assert out.refund is None
    assert out.reply and out.reply.kind == ReplyKind.ESCALATION and not out.reply.already_sent
    assert count(ledger, "SELECT amount_cents FROM refunds WHERE ticket_id=?", tid) == 700
