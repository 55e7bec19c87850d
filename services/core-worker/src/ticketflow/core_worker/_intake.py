"""The intake check of the ticket workflow (docs/architecture.md, "Intake: accepted without the
read model"): has this ticket_id already reached its end in an earlier run?

The api asks the projection's read model before it starts a client-chosen ticket_id; when that is
unreachable it starts the workflow anyway with ``TicketInput.intake_check`` set, and the workflow
asks here, first thing, before any agent call or side effect. The answer comes from the core
worker's own reply outbox (activity ``check_intake``): every end sends exactly one reply, so a
reply row is a finished run; the outbox needs no other service, and is the very store a second
run would write its second reply into.

Workflow code, imported by workflow.py inside the sandbox: deterministic, no I/O.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from ticketflow.contracts import names
    from ticketflow.contracts.models import (
        EarlierRun,
        IntakeCheck,
        IntakeCheckInput,
        Policy,
        Ticket,
    )

__all__ = ["earlier_run"]


async def earlier_run(ticket: Ticket, policy: Policy) -> EarlierRun | None:
    """The earlier run of ``ticket``'s id that reached its end, or None. Retried by Temporal
    until the core worker answers (no attempt limit): a guess could double the ticket."""
    check: IntakeCheck = await workflow.execute_activity(
        names.CHECK_INTAKE,
        IntakeCheckInput(ticket_id=ticket.ticket_id, content_sha256=ticket.content_sha256()),
        task_queue=names.CORE_QUEUE,
        result_type=IntakeCheck,
        start_to_close_timeout=timedelta(seconds=policy.side_effect_start_to_close_s),
        retry_policy=RetryPolicy(
            initial_interval=timedelta(seconds=1),
            maximum_interval=timedelta(seconds=30),
            maximum_attempts=0,
        ),
    )
    return check.earlier_run
