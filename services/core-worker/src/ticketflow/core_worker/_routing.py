"""Agent calls of the ticket workflow: the primary model, then the fallback (docs/architecture.md,
"Agent calls: timeouts, rate limit, fallback"), and what an activity failure means.

Workflow code, imported by workflow.py inside the sandbox: deterministic, no I/O. Every command it
emits (activities, patch markers) is part of the workflow's history, in this order: a change here
must keep the replay corpus (tests/replay) passing.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, NamedTuple, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, TimeoutType
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

with workflow.unsafe.imports_passed_through():
    from ticketflow.contracts import names
    from ticketflow.contracts.models import AgentCall, ModelTier, Policy

from ._metrics import fallback_routed
from .patches import PATCH_ROBUST_ENDS

__all__ = [
    "AGENT_NON_RETRYABLE",
    "Budget",
    "ask_primary",
    "budget",
    "call_agent",
    "describe_failure",
    "is_cancel",
    "refused_input",
]

T = TypeVar("T")

# Transient trouble in one attempt is Temporal's to retry; the workflow decides routing.
AGENT_NON_RETRYABLE = ["InvalidAgentInput"]
TIERS = (ModelTier.PRIMARY, ModelTier.FALLBACK)


class Budget(NamedTuple):
    """Where one tier's calls go, and how long and how often they may take."""

    task_queue: str
    schedule_to_start_s: float
    start_to_close_s: float
    max_attempts: int


def budget(tier: ModelTier, policy: Policy) -> Budget:
    if tier == ModelTier.PRIMARY:
        return Budget(
            names.AGENT_QUEUE,
            policy.agent_schedule_to_start_s,
            policy.agent_start_to_close_s,
            policy.agent_max_attempts,
        )
    return Budget(
        names.AGENT_FALLBACK_QUEUE,
        policy.fallback_schedule_to_start_s,
        policy.fallback_start_to_close_s,
        policy.fallback_max_attempts,
    )


def is_cancel(err: BaseException) -> bool:
    """A cancel request reached the workflow (directly, or through the activity it awaited)."""
    if isinstance(err, asyncio.CancelledError):
        return True
    return isinstance(err, ActivityError) and isinstance(err.cause, CancelledError)


def refused_input(err: ActivityError) -> bool:
    """The model refused the input itself (non-retryable): another model would refuse it too."""
    cause = err.cause
    return isinstance(cause, ApplicationError) and (
        cause.non_retryable or cause.type in AGENT_NON_RETRYABLE
    )


def describe_failure(err: ActivityError) -> str:
    """``timeout:<TYPE>`` or ``error:<type>: <message>``: what agent_calls and escalation reasons
    record (read by people and by tests; keep the format)."""
    cause = err.cause
    if isinstance(cause, TemporalTimeoutError):
        return f"timeout:{cause.type.name if cause.type else 'UNKNOWN'}"
    if isinstance(cause, ApplicationError):
        return f"error:{cause.type or 'ApplicationError'}: {cause.message}"
    return f"error:{type(cause).__name__ if cause else 'unknown'}: {err.message}"


async def _execute(
    activity: str,
    arg: Any,
    result_type: type[T],
    limits: Budget,
    policy: Policy,
) -> T:
    result: T = await workflow.execute_activity(
        activity,
        arg,
        task_queue=limits.task_queue,
        result_type=result_type,
        schedule_to_start_timeout=timedelta(seconds=limits.schedule_to_start_s),
        start_to_close_timeout=timedelta(seconds=limits.start_to_close_s),
        heartbeat_timeout=timedelta(seconds=policy.agent_heartbeat_timeout_s),
        retry_policy=RetryPolicy(
            initial_interval=timedelta(seconds=1),
            maximum_interval=timedelta(seconds=10),
            maximum_attempts=limits.max_attempts,
            non_retryable_error_types=AGENT_NON_RETRYABLE,
        ),
    )
    return result


def _failed(activity: str, tier: ModelTier, err: ActivityError, calls: list[AgentCall]) -> str:
    reason = describe_failure(err)
    workflow.logger.warning("agent %s on %s failed: %s", activity, tier.value, reason)
    calls.append(AgentCall(activity=activity, tier=tier, ok=False, error=reason))
    return reason


async def call_agent(
    activity: str,
    arg: Any,
    result_type: type[T],
    *,
    first_tier: ModelTier,
    policy: Policy,
    calls: list[AgentCall],
) -> T | None:
    """Primary, then fallback (from ``first_tier`` on); None when neither answered within its
    budget. Every call is appended to ``calls``.

    A schedule-to-start timeout on the primary means no primary worker took the call in time
    (overloaded or absent): that is the routing signal. Temporal never retries it, so the
    workflow owns the decision. Exhausted retries of transient errors route the same way.
    """
    for tier in TIERS[TIERS.index(first_tier) :]:
        try:
            result = await _execute(activity, arg, result_type, budget(tier, policy), policy)
        except ActivityError as err:
            if is_cancel(err):
                raise
            _failed(activity, tier, err, calls)
            busy = (
                isinstance(err.cause, TemporalTimeoutError)
                and err.cause.type == TimeoutType.SCHEDULE_TO_START
            )
            if tier == ModelTier.PRIMARY and busy:
                workflow.logger.info("routing %s to the fallback model", activity)
            # Only asked when the input was refused, so the patch marker lands where it always did.
            if refused_input(err) and workflow.patched(PATCH_ROBUST_ENDS):
                return None
            if tier == ModelTier.PRIMARY:
                # No primary worker took it in time (busy), or its attempts ran out (failed).
                fallback_routed(activity, "primary_busy" if busy else "primary_failed")
            continue
        calls.append(AgentCall(activity=activity, tier=tier, ok=True))
        return result
    return None


async def ask_primary(
    activity: str,
    arg: Any,
    result_type: type[T],
    *,
    schedule_to_start_s: float,
    policy: Policy,
    calls: list[AgentCall],
) -> T | None:
    """The primary alone, with its own schedule-to-start budget; None when it did not answer
    (no fallback: the caller already holds the fallback's answer). Recorded in ``calls``."""
    limits = budget(ModelTier.PRIMARY, policy)._replace(schedule_to_start_s=schedule_to_start_s)
    try:
        result = await _execute(activity, arg, result_type, limits, policy)
    except ActivityError as err:
        if is_cancel(err):
            raise
        _failed(activity, ModelTier.PRIMARY, err, calls)
        return None
    calls.append(AgentCall(activity=activity, tier=ModelTier.PRIMARY, ok=True))
    return result
