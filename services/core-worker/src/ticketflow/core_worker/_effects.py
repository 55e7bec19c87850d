"""The ticket workflow's side effects: the core worker's refund and reply, and the projection's
record of the outcome (docs/architecture.md, "Side effects: effectively once").

Workflow code, imported by workflow.py inside the sandbox: deterministic, no I/O. Every command it
emits is part of the workflow's history: a change here must keep the replay corpus passing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, FailureError

with workflow.unsafe.imports_passed_through():
    from ticketflow.contracts import names
    from ticketflow.contracts.models import Policy, TicketOutcome

__all__ = ["SIDE_EFFECT_NON_RETRYABLE", "record_outcome", "side_effect"]

T = TypeVar("T")

# The ledger's and the outbox's answers that no retry changes: the ticket escalates.
SIDE_EFFECT_NON_RETRYABLE = ["LedgerConflict", "InvalidSideEffectInput"]


def _forever(non_retryable: list[str] | None = None) -> RetryPolicy:
    """Retry until it works, backing off to 30 s: the effects are idempotent by ticket_id."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=0,
        non_retryable_error_types=non_retryable,
    )


async def side_effect(
    activity: str, arg: Any, result_type: type[T], *, policy: Policy, local: bool
) -> T:
    """A ledger or outbox effect: idempotent by ticket_id, so retrying forever is safe.

    ``local`` (v6) runs it as a local activity: on the core worker that runs this workflow task,
    its result recorded as a marker, no activity task and no workflow-task round trip. The
    guarantees stay: a worker killed after the ledger commit but before the marker is recorded
    leaves the task to time out, the next worker replays and runs the activity again, and the
    ledger answers with the first receipt (keyed by ticket_id). Retries back off to 30 s, under
    the SDK's local-retry threshold, so they stay local, and the SDK keeps the workflow task alive
    meanwhile. Before v6 it was an activity task on the core queue.
    """
    timeout = timedelta(seconds=policy.side_effect_start_to_close_s)
    retry = _forever(SIDE_EFFECT_NON_RETRYABLE)
    if not local:
        result: T = await workflow.execute_activity(
            activity,
            arg,
            task_queue=names.CORE_QUEUE,
            result_type=result_type,
            start_to_close_timeout=timeout,
            retry_policy=retry,
        )
        return result
    try:
        done: T = await workflow.execute_local_activity(
            activity,
            arg,
            result_type=result_type,
            start_to_close_timeout=timeout,
            retry_policy=retry,
        )
    except FailureError as err:
        if isinstance(err, ActivityError):
            raise
        # A local activity's failure reaches the workflow bare (the ApplicationError, timeout or
        # cancel itself); wrap it as an activity task's is, so the callers' handling
        # (non-retryable ledger errors escalate, cancels re-run) is the same.
        raise ActivityError(
            "local activity failed",
            scheduled_event_id=0,
            started_event_id=0,
            identity="",
            activity_type=activity,
            activity_id="",
            retry_state=None,
        ) from err
    return done


async def record_outcome(outcome: TicketOutcome, policy: Policy) -> None:
    """Every end is projected to the read model; the projection worker owns that store."""
    await workflow.execute_activity(
        names.RECORD_OUTCOME,
        outcome,
        task_queue=names.PROJECTION_QUEUE,
        start_to_close_timeout=timedelta(seconds=policy.side_effect_start_to_close_s),
        retry_policy=_forever(),
    )
