"""Fixtures for the projection tests: outcomes, a store, the gRPC read API on a real port, real
Temporal dev servers running the real TicketWorkflow, and the shared helpers (the `helpers`
fixture: tests are imported with --import-mode=importlib, so they cannot import one another).

Tests may import ticketflow.core_worker (the workflow and its ledger activities) to produce real
histories; the projection's own code never does. The agent activities are fakes registered under
the contract names (the approach of services/core-worker/tests/conftest.py, copied, not imported).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from ticketflow.contracts import DATA_CONVERTER, names
from ticketflow.contracts.models import (
    ActionKind,
    Category,
    Classification,
    DecideInput,
    DecideResult,
    Decision,
    ModelTier,
    Policy,
    ReplyKind,
    ReplyReceipt,
    Ticket,
    TicketInput,
    TicketOutcome,
    TicketState,
    TicketStatus,
)
from ticketflow.contracts.search_attributes import TICKET_STATUS
from ticketflow.core_worker.activities import LedgerActivities
from ticketflow.core_worker.ledger import Ledger
from ticketflow.core_worker.testing import fake_agent
from ticketflow.core_worker.workflow import TicketWorkflow
from ticketflow.launcher.devserver import free_port as unused_port
from ticketflow.launcher.devserver import temporal_binary
from ticketflow.projection.activities import ProjectionActivities
from ticketflow.projection.grpc_api import ReadApiServer
from ticketflow.projection.store import ReadModel
from ticketflow.v1 import readmodel_pb2_grpc

T = TypeVar("T")

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_outcome(
    ticket_id: str = "t-1",
    *,
    status: TicketStatus = TicketStatus.RESOLVED,
    category: Category | None = Category.ACCOUNT,
    finished_at: datetime = BASE,
    customer_id: str = "cust-1",
    **extra: Any,
) -> TicketOutcome:
    ticket = Ticket(
        ticket_id=ticket_id,
        customer_id=customer_id,
        subject="cannot login",
        body="please help",
        submitted_at=finished_at - timedelta(minutes=5),
    )
    classification = (
        Classification(
            category=category,
            confidence=0.95,
            action=ActionKind.REPLY_ONLY,
            model="fake-primary",
        )
        if category
        else None
    )
    return TicketOutcome(
        ticket_id=ticket_id,
        status=status,
        ticket=ticket,
        classification=classification,
        decision=Decision(approved=True, approver="auto", auto=True, decided_at=finished_at),
        reply=ReplyReceipt(
            ticket_id=ticket_id,
            reply_id=f"rp_{ticket_id}",
            kind=ReplyKind.RESOLUTION,
            created_at=finished_at,
        ),
        finished_at=finished_at,
        **extra,
    )


async def eventually(
    check: Callable[[], Awaitable[T]], *, within: float = 30.0, interval: float = 0.05
) -> T:
    """Poll ``check`` until it returns without AssertionError, or fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            return await check()
        except AssertionError:
            if loop.time() >= deadline:
                raise
        await asyncio.sleep(interval)


def table(store: ReadModel) -> dict[str, tuple]:
    """The view's content by ticket, without the bookkeeping columns (recorded_at, seq)."""
    return {
        r.ticket_id: (
            r.run_id,
            r.finished_us,
            r.status,
            r.category,
            r.customer_id,
            r.outcome_json,
        )
        for r in store.rows()
    }


# ---- real Temporal, real TicketWorkflow --------------------------------------------------------


async def start_dev_server(*, fast_delete: bool = False) -> WorkflowEnvironment:
    """The Temporal CLI dev server on 127.0.0.1 (an ephemeral port), in memory; no download.

    ``fast_delete``: DeleteWorkflowExecution of a closed run takes effect at once instead of
    after about 35 s (the server otherwise first waits to see the close task acknowledged).
    """
    extra = (
        ["--dynamic-config-value", "history.transferProcessorEnsureCloseBeforeDelete=false"]
        if fast_delete
        else []
    )
    return await WorkflowEnvironment.start_local(
        port=unused_port(),  # below the ephemeral range: see launcher.devserver.free_port
        data_converter=DATA_CONVERTER,
        dev_server_existing_path=temporal_binary(),
        search_attributes=[TICKET_STATUS],
        ip="127.0.0.1",
        dev_server_extra_args=extra,
    )


class Fleet:
    """Workers for real tickets: TicketWorkflow and the ledger (core-worker's code), fake agents,
    and, unless ``projection_db`` is None, the projection's real record_outcome into that file."""

    def __init__(self, client: Client, ledger_path: Path, projection_db: Path | None) -> None:
        self.client = client
        self._pool = ThreadPoolExecutor(max_workers=8)
        ledger = LedgerActivities(Ledger(ledger_path))
        self.workers = [
            Worker(
                client,
                task_queue=names.CORE_QUEUE,
                workflows=[TicketWorkflow],
                activities=[ledger.issue_refund, ledger.send_reply],
                activity_executor=self._pool,
                disable_eager_activity_execution=True,
            ),
            Worker(client, task_queue=names.AGENT_QUEUE, activities=fake_agent(ModelTier.PRIMARY)),
            Worker(
                client,
                task_queue=names.AGENT_FALLBACK_QUEUE,
                activities=fake_agent(ModelTier.FALLBACK),
            ),
        ]
        if projection_db is not None:
            self.store = ReadModel(projection_db)
            self.workers.append(
                Worker(
                    client,
                    task_queue=names.PROJECTION_QUEUE,
                    activities=[ProjectionActivities(self.store).record_outcome],
                    activity_executor=self._pool,
                    max_concurrent_activities=4,
                )
            )

    async def __aenter__(self) -> Fleet:
        for w in self.workers:
            await w.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for w in reversed(self.workers):
            await w.__aexit__(None, None, None)
        self._pool.shutdown()

    async def start(
        self, *, subject: str = "cannot login", refund_cents: int | None = None, **policy: Any
    ) -> WorkflowHandle:
        tid = f"t{uuid.uuid4().hex[:12]}"
        ticket = Ticket(
            ticket_id=tid,
            customer_id="cust-1",
            subject=subject,
            body="I want a refund" if refund_cents else "please help",
            order_id="order-9" if refund_cents else None,
            requested_refund_cents=refund_cents,
        )
        return await self.client.start_workflow(
            names.TICKET_WORKFLOW,
            TicketInput(ticket=ticket, policy=Policy(**policy)),
            id=names.workflow_id(tid),
            task_queue=names.CORE_QUEUE,
            result_type=TicketOutcome,
        )

    async def decide(self, handle: WorkflowHandle, approved: bool) -> None:
        async def waiting() -> None:
            state = await handle.query(names.STATUS_QUERY, result_type=TicketState)
            assert state.status == TicketStatus.WAITING_APPROVAL and state.accepting_decisions

        await eventually(waiting)
        await handle.execute_update(
            names.DECIDE_UPDATE,
            DecideInput(approved=approved, approver="alice"),
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


class Helpers:
    BASE = BASE
    make_outcome = staticmethod(make_outcome)
    eventually = staticmethod(eventually)
    table = staticmethod(table)
    start_dev_server = staticmethod(start_dev_server)
    Fleet = Fleet


@pytest.fixture(scope="session")
def helpers() -> type[Helpers]:
    return Helpers


@pytest.fixture
def store(tmp_path: Path) -> ReadModel:
    return ReadModel(tmp_path / "readmodel.db")


class ReadApi:
    def __init__(self, server: ReadApiServer, channel: grpc.aio.Channel) -> None:
        self.server = server
        self.channel = channel
        self.stub = readmodel_pb2_grpc.ReadModelServiceStub(channel)


@pytest.fixture
async def read_api(store: ReadModel) -> AsyncIterator[ReadApi]:
    """The real read API on 127.0.0.1, an ephemeral port, over a real grpc.aio channel."""
    server = ReadApiServer(store, "127.0.0.1:0")
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield ReadApi(server, channel)
    finally:
        await channel.close()
        await server.stop(0)
