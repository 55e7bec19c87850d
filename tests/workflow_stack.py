"""Real tickets for the projection's cross-service tests: the real TicketWorkflow and side-effect
activities (core-worker's code), the fake agent, and optionally the projection's real
record_outcome, as in-process workers on a Temporal dev server started by the test.

Also the read-model helpers those tests share (copy, delete, compare a view).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from ticketflow import testkit
from ticketflow.contracts import names
from ticketflow.contracts.decision_signing import DecisionKey, DecisionVerifier, sign_decision
from ticketflow.contracts.models import (
    DecideInput,
    DecideResult,
    ModelTier,
    TicketOutcome,
    TicketState,
    TicketStatus,
)
from ticketflow.core_worker.activities import SideEffectActivities
from ticketflow.core_worker.decision_auth import DecisionAuth
from ticketflow.core_worker.ledger import RefundLedger
from ticketflow.core_worker.outbox import ReplyOutbox
from ticketflow.core_worker.workflow import TicketWorkflow
from ticketflow.projection.activities import ProjectionActivities
from ticketflow.projection.rebuild import CLOSED_TICKETS_QUERY
from ticketflow.projection.store import ReadModelStore, StoredOutcome

# Decisions are signed as the api signs them; the core worker verifies with this key.
DECISION_KEY = DecisionKey("stack", b"ticketflow-workflow-stack-key!!!")

__all__ = [
    "TicketStack",
    "copy_db",
    "delete_db",
    "start_server",
    "table",
    "visible",
]


async def start_server(*, fast_delete: bool = False) -> WorkflowEnvironment:
    """A dev server of the test's own (rebuild reads every ticket of the namespace).

    ``fast_delete``: DeleteWorkflowExecution of a closed run takes effect at once instead of
    after about 35 s (the server otherwise first waits to see the close task acknowledged).
    """
    config = {"history.transferProcessorEnsureCloseBeforeDelete": False} if fast_delete else {}
    return await testkit.start_dev_env(dynamic_config=config)


class TicketStack:
    """Workers for real tickets: TicketWorkflow with its refund ledger and reply outbox, the fake
    agent on both agent queues, and, unless ``projection_db`` is None, the projection's real
    record_outcome into that file. ``async with`` returns once Temporal sees every worker poll."""

    def __init__(self, client: Client, data_dir: Path, projection_db: Path | None) -> None:
        self.client = client
        self.fleet = testkit.WorkerFleet(client)
        side_effects = SideEffectActivities(
            RefundLedger(data_dir / "ledger.db"), ReplyOutbox(data_dir / "ledger.db")
        )
        self.fleet.add(
            names.CORE_QUEUE,
            workflows=[TicketWorkflow],
            activities=[
                side_effects.issue_refund,
                side_effects.send_reply,
                side_effects.check_intake,
            ],
            interceptors=[DecisionAuth(DecisionVerifier([DECISION_KEY]))],
        )
        self.fleet.add(names.AGENT_QUEUE, activities=testkit.fake_agent(ModelTier.PRIMARY))
        self.fleet.add(
            names.AGENT_FALLBACK_QUEUE, activities=testkit.fake_agent(ModelTier.FALLBACK)
        )
        self.store: ReadModelStore | None = None
        if projection_db is not None:
            self.store = ReadModelStore(projection_db)
            self.fleet.add(
                names.PROJECTION_QUEUE,
                activities=[ProjectionActivities(self.store).record_outcome],
                max_concurrent_activities=4,
            )

    @property
    def view(self) -> ReadModelStore:
        """The view the projection's worker records into."""
        assert self.store is not None, "this stack runs no projection worker"
        return self.store

    async def __aenter__(self) -> TicketStack:
        await self.fleet.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.fleet.stop()

    async def start(
        self, *, subject: str = "cannot login", refund_cents: int | None = None, **policy: Any
    ) -> WorkflowHandle[Any, TicketOutcome]:
        inp = testkit.ticket_input(refund_cents, subject, **policy)
        return await self.client.start_workflow(
            names.TICKET_WORKFLOW,
            inp,
            id=names.workflow_id(inp.ticket.ticket_id),
            task_queue=names.CORE_QUEUE,
            result_type=TicketOutcome,
        )

    async def decide(self, handle: WorkflowHandle[Any, TicketOutcome], approved: bool) -> None:
        async def waiting() -> bool:
            state = await handle.query(names.STATUS_QUERY, result_type=TicketState)
            return state.status == TicketStatus.WAITING_APPROVAL and state.accepting_decisions

        await testkit.eventually_async(waiting, what=f"{handle.id} waiting for approval")
        ticket_id = names.ticket_id_from_workflow_id(handle.id)
        assert ticket_id is not None
        await handle.execute_update(
            names.DECIDE_UPDATE,
            sign_decision(
                ticket_id, DecideInput(approved=approved, approver="alice"), DECISION_KEY
            ),
            result_type=DecideResult,
        )

    async def mixed_tickets(self) -> dict[str, TicketOutcome]:
        """Five tickets that end every way: auto-resolved, auto-refunded, rejected, approved by a
        human, escalated on the approval timeout. Their outcomes by ticket id."""
        auto = await self.start()
        refund = await self.start(refund_cents=2_000)
        rejected = await self.start(refund_cents=9_000)
        approved = await self.start(subject="unclear question")
        escalated = await self.start(subject="unclear again", approval_timeout_s=0.5)
        await self.decide(rejected, approved=False)
        await self.decide(approved, approved=True)
        handles = [auto, refund, rejected, approved, escalated]
        outcomes = {h.id.removeprefix("ticket-"): await h.result() for h in handles}
        assert [o.status for o in outcomes.values()] == [
            TicketStatus.RESOLVED,
            TicketStatus.RESOLVED,
            TicketStatus.REJECTED,
            TicketStatus.RESOLVED,
            TicketStatus.ESCALATED,
        ]
        return outcomes


async def visible(client: Client, ticket_ids: Iterable[str]) -> None:
    """Visibility is updated asynchronously: wait until the listing shows every ticket closed."""
    wanted = {names.workflow_id(t) for t in ticket_ids}

    async def listed() -> bool:
        seen = {wf.id async for wf in client.list_workflows(CLOSED_TICKETS_QUERY)}
        return wanted <= seen

    await testkit.eventually_async(listed, what="every ticket listed as closed")


def table(store: ReadModelStore) -> dict[str, StoredOutcome]:
    """The view's rows by ticket, without the bookkeeping columns (recorded_at, seq): two views
    with the same content compare equal however and whenever they were written."""
    return {r.ticket_id: dataclasses.replace(r, recorded_at="", seq=0) for r in store.rows()}


def copy_db(src: ReadModelStore, dest: Path) -> ReadModelStore:
    """A consistent copy (SQLite's backup API: includes what is still in the WAL)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    a, b = sqlite3.connect(src.path), sqlite3.connect(dest)
    try:
        a.backup(b)
    finally:
        a.close()
        b.close()
    return ReadModelStore(dest)


def delete_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def clear(store: ReadModelStore) -> None:
    """Lose the whole view: delete the SQLite file, or empty the PostgreSQL table."""
    if store.sqlite:
        delete_db(store.path)
    else:
        with store.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {store.table}"))


def leftovers(store: ReadModelStore) -> list[str]:
    """Rebuild's work files (SQLite) or work tables (PostgreSQL) next to the view."""
    if store.sqlite:
        return sorted(p.name for p in store.path.parent.iterdir() if ".rebuild-" in p.name)
    return sorted(t for t in inspect(store.engine).get_table_names() if "_rebuild_" in t)
