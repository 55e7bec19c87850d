"""After a fallback answer, the primary is asked again before a human sees the ticket (patch
``v4-primary-recheck``; docs/architecture.md, "Agent calls: timeouts, rate limit, fallback").

On the time-skipping test server: its clock skips the approval timer, not schedule-to-start
timeouts, so agent budgets stay short. The primary is "congested" by starting its worker late.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from ticketflow.contracts import names
from ticketflow.contracts.models import (
    Draft,
    DraftReplyInput,
    ModelTier,
    TicketState,
    TicketStatus,
)
from ticketflow.testkit import fake_agent, ticket_input

from ._tickets import StartWorkers, start_ticket, state_when

P, F = ModelTier.PRIMARY, ModelTier.FALLBACK
# The fallback answered classify (after the primary's schedule-to-start timeout) and the draft.
FELL_BACK = [
    (names.CLASSIFY, P, False),
    (names.CLASSIFY, F, True),
    (names.DRAFT_REPLY, F, True),
]


def calls_of(state_or_outcome: object) -> list[tuple[str, ModelTier, bool]]:
    return [(c.activity, c.tier, c.ok) for c in state_or_outcome.agent_calls]  # type: ignore[attr-defined]


async def test_fallback_answer_is_asked_again_and_the_primary_auto_approves(
    time_env: WorkflowEnvironment, start_workers: StartWorkers
) -> None:
    await start_workers(time_env, primary=False)
    inp = ticket_input(
        refund_cents=1_500,
        approval_timeout_s=3600,
        agent_schedule_to_start_s=1,
        primary_recheck_schedule_to_start_s=60,
    )
    handle = await start_ticket(time_env.client, inp)
    # The fallback has answered both; the primary comes back (its worker starts).
    await state_when(handle, lambda s: len(s.agent_calls) >= 3, "the fallback answered")
    await start_workers(time_env, core=False, fallback=False, projection=False)
    out = await handle.result()
    assert out.status == TicketStatus.RESOLVED, (
        f"{out.status.value}: {out.escalation_reason}; calls {calls_of(out)}"
    )
    assert out.decision and out.decision.auto
    assert out.classification and out.classification.tier == P
    assert out.draft and out.draft.tier == P
    assert out.refund and out.refund.amount_cents == 1_500
    assert calls_of(out) == [
        *FELL_BACK,
        (names.CLASSIFY, P, True),
        (names.DRAFT_REPLY, P, True),
    ]
    # It never waited for a human.
    state = await handle.query(names.STATUS_QUERY, result_type=TicketState)
    assert WAITING not in [change.status for change in state.history]


WAITING = TicketStatus.WAITING_APPROVAL


async def test_silent_primary_hands_the_fallback_answer_to_a_human(
    time_env: WorkflowEnvironment, start_workers: StartWorkers
) -> None:
    await start_workers(time_env, primary=False)
    inp = ticket_input(
        approval_timeout_s=3600,
        agent_schedule_to_start_s=1,
        primary_recheck_schedule_to_start_s=1,
    )
    handle = await start_ticket(time_env.client, inp)
    state = await state_when(handle, lambda s: s.status == WAITING, "waiting for a human")
    assert state.classification and state.classification.tier == F
    assert state.draft and state.draft.tier == F
    assert calls_of(state) == [*FELL_BACK, (names.CLASSIFY, P, False)]
    assert state.agent_calls[-1].error == "timeout:SCHEDULE_TO_START"
    out = await handle.result()  # nobody decides: the approval timer runs out
    assert out.status == TicketStatus.ESCALATED
    assert out.escalation_reason == "no decision before the approval timeout"


@pytest.mark.parametrize(
    ("refund_cents", "policy"),
    [
        pytest.param(80_000, {}, id="big-refund"),
        pytest.param(None, {"fallback_recheck_min_confidence": 0.5}, id="low-confidence"),
        pytest.param(None, {"primary_recheck_schedule_to_start_s": 0}, id="recheck-off"),
    ],
)
async def test_fallback_answer_a_human_must_see_anyway_is_not_asked_again(
    time_env: WorkflowEnvironment,
    start_workers: StartWorkers,
    refund_cents: int | None,
    policy: dict[str, float],
) -> None:
    await start_workers(time_env, primary=False)
    inp = ticket_input(refund_cents, approval_timeout_s=3600, agent_schedule_to_start_s=1, **policy)
    handle = await start_ticket(time_env.client, inp)
    state = await state_when(handle, lambda s: s.status == WAITING, "waiting for a human")
    assert calls_of(state) == FELL_BACK
    assert state.classification and state.classification.tier == F


def primary_whose_first_draft_fails() -> list[Callable[..., Awaitable[object]]]:
    """The fake primary, except that its first draft fails (a retryable error)."""
    classify, draft = fake_agent(P)
    drafts = 0

    @activity.defn(name=names.DRAFT_REPLY)
    async def draft_reply(inp: DraftReplyInput) -> Draft:
        nonlocal drafts
        drafts += 1
        if drafts == 1:
            raise ApplicationError("primary overloaded (injected)", type="AgentUnavailable")
        result = await draft(inp)
        assert isinstance(result, Draft)
        return result

    return [classify, draft_reply]


async def test_only_the_fallback_draft_is_asked_again_when_the_primary_classified(
    time_env: WorkflowEnvironment, start_workers: StartWorkers
) -> None:
    await start_workers(time_env, primary_activities=primary_whose_first_draft_fails())
    # One attempt: the failed draft routes to the fallback at once.
    inp = ticket_input(approval_timeout_s=3600, agent_max_attempts=1)
    out = await (await start_ticket(time_env.client, inp)).result()
    assert out.status == TicketStatus.RESOLVED and out.decision and out.decision.auto
    assert out.draft and out.draft.tier == P
    assert calls_of(out) == [
        (names.CLASSIFY, P, True),
        (names.DRAFT_REPLY, P, False),
        (names.DRAFT_REPLY, F, True),
        (names.DRAFT_REPLY, P, True),
    ]
