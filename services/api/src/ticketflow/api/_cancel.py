"""Cancelling a ticket: Temporal's cancel request, which the ticket workflow turns into its end.

The workflow (v3, patch `v3-robust-ends`) handles a cancel request itself: before a decision the
ticket is ESCALATED ("cancelled by an operator while <status>") and the customer gets the
escalation reply; once decided, the decided end is carried out (money a human approved is never
stopped half-way). So the api asks only for what the workflow will honour: a ticket that is not
decided yet. A cancel whose answer was lost may be sent again: a ticket this cancel already
ended answers the same 202 (`already: true`), nothing happens twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from ticketflow.contracts import TicketState, TicketStatus, names

from .errors import CancelRejected, TicketNotFound

if TYPE_CHECKING:
    from .temporal import TicketGateway

__all__ = ["CANCELLED_PREFIX", "cancelled_by_operator", "refuse_cancel", "send_cancel"]

# What the workflow writes as the escalation reason of a cancelled ticket (core worker,
# `_on_cancel`); a contract of behaviour, checked by the cross-service test.
CANCELLED_PREFIX = "cancelled by an operator"


def cancelled_by_operator(state: TicketState) -> bool:
    """Whether the ticket ended because of a cancel request (a re-sent cancel answers 202)."""
    reason = state.escalation_reason or ""
    return state.status == TicketStatus.ESCALATED and reason.startswith(CANCELLED_PREFIX)


def refuse_cancel(state: TicketState) -> None:
    """`CancelRejected` (409) when the workflow would not honour a cancel: decided or finished."""
    if state.status.terminal or state.status == TicketStatus.EXECUTING or state.decision:
        raise CancelRejected(
            f"ticket {state.ticket_id!r} is {state.status.value}: it is decided or finished, "
            "too late to cancel; its end is carried out"
        )


async def send_cancel(gateway: TicketGateway, ticket_id: str) -> None:
    """Request cancellation of the ticket's workflow (Temporal deduplicates repeated requests)."""
    async with gateway._guarded():
        client = await gateway.connect()
        handle = client.get_workflow_handle(names.workflow_id(ticket_id))
        async with gateway.errors.translated(gateway.rpc_timeout):
            try:
                # A closed run answers its query still, and Temporal takes a cancel of it
                # without complaint: say "closed" instead of a 202 that changes nothing.
                desc = await handle.describe(rpc_timeout=timedelta(seconds=gateway.rpc_timeout))
                if desc.status != WorkflowExecutionStatus.RUNNING:
                    raise CancelRejected(f"ticket {ticket_id!r} is closed; too late to cancel")
                await handle.cancel(rpc_timeout=timedelta(seconds=gateway.rpc_timeout))
            except RPCError as exc:
                if gateway.errors.is_not_found(exc):
                    raise TicketNotFound(ticket_id) from exc
                raise
