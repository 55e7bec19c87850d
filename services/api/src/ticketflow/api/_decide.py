"""Deciding a ticket: the `decide` update, its deterministic id, and its two deadlines.

Apart from the rest of `TicketGateway` because it is the one operation with two round trips
(describe, then update or fetch a previous update's result) whose failures mean different things:
a describe that misses its deadline sent nothing; an update that misses its deadline may still be
applied (it waits in the server for a worker).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio.client import (
    RPCTimeoutOrCancelledError,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode
from ticketflow.contracts import DecideInput, DecideResult, names

from .errors import DecisionOutcomeUnknown, DecisionRejected, TicketNotFound, Unavailable

if TYPE_CHECKING:
    from .temporal import TicketGateway

__all__ = ["decision_update_id", "send_decision"]


def decision_update_id(decision: DecideInput) -> str:
    """The `decide` update's id: the same decision by the same approver has the same id."""
    canon = json.dumps(
        [decision.approver, decision.approved, decision.reason], separators=(",", ":")
    )
    return f"decide-{hashlib.sha256(canon.encode()).hexdigest()}"


async def send_decision(
    gateway: TicketGateway,
    handle: WorkflowHandle[Any, Any],
    ticket_id: str,
    decision: DecideInput,
) -> DecideResult:
    """Send the `decide` update. The workflow's validator is the judge of "too late".

    The update id is derived from the decision (`decision_update_id`), and Temporal
    deduplicates updates by id within a workflow run: a client retrying the same decision
    (after a 503, say) gets the first answer again instead of "already decided"; another
    decision (or another approver) has another id and meets the validator. Once the ticket
    is closed, the same decision still gets its first answer (while Temporal retains the run);
    any other is refused as closed.

    The describe (`rpc_timeout_s`) and the update (`decide_timeout_s`: it waits for a worker to
    apply the decision) run under separate deadlines, so a slow describe cannot eat the update's
    budget.
    """
    timeout = gateway.decide_timeout
    desc = await _describe(gateway, handle, ticket_id)
    update_id = decision_update_id(decision)
    closed = desc.status != WorkflowExecutionStatus.RUNNING
    async with _sent(), gateway.errors.translated():
        try:
            async with asyncio.timeout(timeout + 1.0):
                if closed:
                    # No new decision, but the same one again gets its answer while Temporal
                    # retains the run: a retry whose first attempt was applied just before the
                    # ticket finished. An unknown update id is NOT_FOUND: closed.
                    result: DecideResult = await handle.get_update_handle(
                        update_id, result_type=DecideResult
                    ).result(rpc_timeout=timedelta(seconds=timeout))
                else:
                    result = await handle.execute_update(
                        names.DECIDE_UPDATE,
                        decision,
                        id=update_id,
                        result_type=DecideResult,
                        rpc_timeout=timedelta(seconds=timeout),
                    )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            why = getattr(cause, "message", None) or str(cause)
            refusal = _REFUSAL_RESULTS.get(getattr(cause, "type", None) or "", "conflict")
            raise DecisionRejected(f"decision refused: {why}", result=refusal) from exc
        except (TimeoutError, RPCTimeoutOrCancelledError) as exc:
            # Without a worker the update waits in the server and may still be applied later.
            raise DecisionOutcomeUnknown(
                f"no worker confirmed the decision on ticket {ticket_id!r} within "
                f"{timeout:g}s (GET /tickets/{ticket_id} shows whether it was)"
            ) from exc
        except RPCError as exc:
            if gateway.errors.is_not_found(exc):
                # Closed and no such decision was made, or it closed between describe and update.
                raise _closed(ticket_id, desc.status if closed else None) from exc
            raise
    return result


@asynccontextmanager
async def _sent() -> AsyncIterator[None]:
    """The update was sent: a 503 from here on means its outcome is unknown, not "not sent"."""
    try:
        yield
    except DecisionOutcomeUnknown:
        raise
    except Unavailable as exc:
        # Sent, and then the answer did not come: whatever the reason, it may have been applied.
        raise DecisionOutcomeUnknown(exc.message, details=exc.details) from exc


async def _describe(
    gateway: TicketGateway, handle: WorkflowHandle[Any, Any], ticket_id: str
) -> WorkflowExecutionDescription:
    """Describe under its own deadline. Missing it is told apart from Temporal being down."""
    rpc_timeout = gateway.rpc_timeout
    timed_out: Exception
    async with gateway.errors.translated():
        try:
            async with asyncio.timeout(rpc_timeout + 1.0):
                return await handle.describe(rpc_timeout=timedelta(seconds=rpc_timeout))
        except RPCError as exc:
            if gateway.errors.is_not_found(exc):
                raise TicketNotFound(ticket_id) from exc
            if exc.status != RPCStatusCode.DEADLINE_EXCEEDED:
                raise
            timed_out = exc
        except (TimeoutError, RPCTimeoutOrCancelledError) as exc:
            timed_out = exc
    # Slow is not down: one cheap health RPC says which (it raises when Temporal is down).
    await gateway.check_health()
    raise Unavailable(
        f"Temporal at {gateway.address} did not describe ticket {ticket_id!r} within "
        f"{rpc_timeout:g}s; the decision was not sent; retry"
    ) from timed_out


def _closed(ticket_id: str, status: WorkflowExecutionStatus | None) -> DecisionRejected:
    state = f" ({status.name})" if status else ""
    return DecisionRejected(
        f"ticket {ticket_id!r} is closed{state}; no more decisions accepted", result="late"
    )


# The workflow validator's refusals (core worker, workflow.py) as the decisions metric's results.
_REFUSAL_RESULTS = {
    "DecisionNotVouched": "unauthorised",
    "AlreadyDecided": "conflict",
    "NotWaitingApproval": "late",
    "ApprovalWindowClosed": "late",
    "MalformedDecision": "invalid",
}
