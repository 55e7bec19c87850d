"""Timers and budgets on the time-skipping test server: approval timeout, fallback routing, escape hatch."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from ticketflow.contracts import names
from ticketflow.contracts.models import (
    DecideInput,
    DecideResult,
    ModelTier,
    ReplyKind,
    TicketStatus,
)
from ticketflow.testkit import ticket_input

from ._tickets import Handle, StartWorkers, signed, start_ticket


async def scheduled_queues(handle: Handle) -> list[tuple[str, str]]:
    """(activity name, task queue) of every scheduled activity, read from the history."""
    out = []
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            a = event.activity_task_scheduled_event_attributes
            out.append((a.activity_type.name, a.task_queue.name))
    return out


async def test_approval_timeout_escalates_and_late_decision_is_refused(
    time_env: WorkflowEnvironment, start_workers: StartWorkers
) -> None:
    projected = await start_workers(time_env)
    inp = ticket_input(refund_cents=80_000, approval_timeout_s=48 * 3600)
    handle = await start_ticket(time_env.client, inp)
    out = await handle.result()  # time skips over the 48 h timer
    assert out.status == TicketStatus.ESCALATED
    assert out.escalation_reason == "no decision before the approval timeout"
    assert out.refund is None and out.reply and out.reply.kind == ReplyKind.ESCALATION
    assert out.decision is None
    assert [o.status for o in projected.outcomes] == [TicketStatus.ESCALATED]
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):
        await handle.execute_update(
            names.DECIDE_UPDATE,
            signed(inp.ticket.ticket_id, DecideInput(approved=True, approver="late")),
            result_type=DecideResult,
        )


async def test_no_primary_worker_routes_to_the_fallback_which_needs_a_human(
    time_env: WorkflowEnvironment, start_workers: StartWorkers
) -> None:
    await start_workers(time_env, primary=False)
    # The test server does not skip schedule-to-start timeouts (only timers): keep budgets short.
    inp = ticket_input(
        approval_timeout_s=3600, agent_schedule_to_start_s=1, primary_recheck_schedule_to_start_s=1
    )
    handle = await start_ticket(time_env.client, inp)
    out = await handle.result()
    # The fallback's confidence is below the threshold: a human had to look, nobody did.
    assert out.status == TicketStatus.ESCALATED
    assert out.classification and out.classification.tier == ModelTier.FALLBACK
    assert out.draft and out.draft.tier == ModelTier.FALLBACK
    # The primary was asked again (v4) and stayed silent: the human got the fallback's answer.
    assert [(c.activity, c.tier, c.ok) for c in out.agent_calls] == [
        (names.CLASSIFY, ModelTier.PRIMARY, False),
        (names.CLASSIFY, ModelTier.FALLBACK, True),
        (names.DRAFT_REPLY, ModelTier.FALLBACK, True),
        (names.CLASSIFY, ModelTier.PRIMARY, False),
    ]
    assert out.agent_calls[0].error == "timeout:SCHEDULE_TO_START"
    # Replay does not see task queues: assert routing on the history itself.
    queues = await scheduled_queues(handle)
    assert queues[:4] == [
        (names.CLASSIFY, names.AGENT_QUEUE),
        (names.CLASSIFY, names.AGENT_FALLBACK_QUEUE),
        (names.DRAFT_REPLY, names.AGENT_FALLBACK_QUEUE),
        (names.CLASSIFY, names.AGENT_QUEUE),
    ]


async def test_no_agent_worker_at_all_escalates_instead_of_hanging(
    time_env: WorkflowEnvironment, start_workers: StartWorkers
) -> None:
    await start_workers(time_env, primary=False, fallback=False)
    inp = ticket_input(
        refund_cents=100, agent_schedule_to_start_s=1, fallback_schedule_to_start_s=1
    )
    handle = await start_ticket(time_env.client, inp)
    out = await handle.result()
    assert out.status == TicketStatus.ESCALATED
    assert out.escalation_reason == "agent could not classify the ticket within its budget"
    assert [c.error for c in out.agent_calls] == ["timeout:SCHEDULE_TO_START"] * 2
    assert out.refund is None
