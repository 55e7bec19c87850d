"""Rebuild against a real Temporal dev server that runs no TicketWorkflow code.

Rebuild from real ticket histories (core-worker's workflow) is cross-service and lives in the root
tests/test_projection_rebuild.py; here, Temporal only knows the workflow by name.
"""

from __future__ import annotations

from pathlib import Path

from temporalio.client import WorkflowExecutionStatus
from ticketflow import testkit
from ticketflow.contracts import names
from ticketflow.contracts.models import Ticket, TicketInput
from ticketflow.projection.rebuild import NOT_IN_TEMPORAL, rebuild
from ticketflow.projection.store import ReadModelStore


async def test_a_running_ticket_is_neither_rebuilt_nor_dropped(tmp_path: Path) -> None:
    """The core-worker was killed right after record_outcome: the ticket's outcome is recorded,
    its workflow is still running (no worker polls its queue) and no run of it is closed. Temporal
    still has it, so --drop-unretained keeps its row and reports it as running, not as gone. A
    ticket that Temporal really no longer has is still dropped."""
    # A server of its own: rebuild reads every closed ticket of the namespace.
    env = await testkit.start_dev_env()
    try:
        view = ReadModelStore(tmp_path / "readmodel.db")
        tid = testkit.fresh_id("running-")
        ticket = Ticket(ticket_id=tid, customer_id="cust-1", subject="cannot login", body="help")
        handle = await env.client.start_workflow(
            names.TICKET_WORKFLOW,
            TicketInput(ticket=ticket),
            id=names.workflow_id(tid),
            task_queue=names.CORE_QUEUE,
        )
        recorded = testkit.outcome(tid)
        assert view.record(recorded, run_id=handle.result_run_id or "")
        view.record(testkit.outcome("ghost-3"), run_id="gone")

        report = await rebuild(env.client, view.path, drop_unretained=True)
        row = view.get(tid)
        assert row is not None and row.outcome == recorded
        assert view.get("ghost-3") is None
        assert report.rebuilt == [] and report.running == [tid]
        assert report.failed == {"ghost-3": NOT_IN_TEMPORAL} and report.kept == []
        assert any(tid in line and "running" in line for line in report.lines())
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    finally:
        await testkit.stop_env(env)
