"""Fixtures for core-worker tests: real Temporal servers (no downloads) and fake agent activities."""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from ticketflow.contracts import DATA_CONVERTER, names
from ticketflow.contracts.models import (
    ModelTier,
    NewTicket,
    Policy,
    Ticket,
    TicketInput,
    TicketOutcome,
)
from ticketflow.contracts.search_attributes import TICKET_STATUS
from ticketflow.core_worker.activities import LedgerActivities
from ticketflow.core_worker.ledger import Ledger
from ticketflow.core_worker.testing import fake_agent
from ticketflow.core_worker.workflow import TicketWorkflow
from ticketflow.launcher.devserver import free_port as unused_port
from ticketflow.launcher.devserver import temporal_binary


def binary(name: str) -> str:
    """A binary from the venv (temporal-test-server; the dev server is temporal_binary())."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} binary not found: run `uv sync --all-packages`")
    return found


class Projected:
    def __init__(self) -> None:
        self.outcomes: list[TicketOutcome] = []

        @activity.defn(name=names.RECORD_OUTCOME)
        async def record_outcome(outcome: TicketOutcome) -> bool:
            self.outcomes.append(outcome)
            return True

        self.activity = record_outcome


def make_input(
    refund_cents: int | None = None, subject: str = "cannot login", **policy
) -> TicketInput:
    tid = f"t{uuid.uuid4().hex[:12]}"
    new = NewTicket(
        customer_id="cust-1",
        subject=subject,
        body="please help" if not refund_cents else "I want a refund",
        order_id="order-9" if refund_cents else None,
        requested_refund_cents=refund_cents,
    )
    return TicketInput(ticket=Ticket(ticket_id=tid, **new.model_dump()), policy=Policy(**policy))


async def start_ticket(client: Client, inp: TicketInput):
    return await client.start_workflow(
        names.TICKET_WORKFLOW,
        inp,
        id=names.workflow_id(inp.ticket.ticket_id),
        task_queue=names.CORE_QUEUE,
        result_type=TicketOutcome,
    )


async def register_search_attributes(client: Client, namespace: str = "default") -> None:
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=namespace,
            search_attributes={TICKET_STATUS.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD},
        )
    )


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        port=unused_port(),  # below the ephemeral range: see launcher.devserver.free_port
        data_converter=DATA_CONVERTER,
        dev_server_existing_path=temporal_binary(),
        search_attributes=[TICKET_STATUS],
        dev_server_extra_args=[
            "--dynamic-config-value",
            "matching.numTaskqueueReadPartitions=1",
            "--dynamic-config-value",
            "matching.numTaskqueueWritePartitions=1",
        ],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER, test_server_existing_path=binary("temporal-test-server")
    )
    try:
        await register_search_attributes(env.client)
        yield env
    finally:
        try:
            await env.shutdown()
        except Exception as err:  # the Java test server sometimes exits 139 at shutdown
            print(f"time-skipping server shutdown: {err}")


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger.db")


class Workers:
    """Starts the core worker and any fake workers; stops them all."""

    def __init__(self, client: Client, ledger: Ledger) -> None:
        self.client = client
        self.ledger = ledger
        self.projected = Projected()
        self._workers: list[Worker] = []
        self._pool = ThreadPoolExecutor(max_workers=8)

    async def start(self, *, core=True, primary=True, fallback=True, projection=True) -> None:
        if core:
            acts = LedgerActivities(self.ledger)
            self._add(
                names.CORE_QUEUE,
                workflows=[TicketWorkflow],
                activities=[acts.issue_refund, acts.send_reply],
                activity_executor=self._pool,
            )
        if primary:
            self._add(names.AGENT_QUEUE, activities=fake_agent(ModelTier.PRIMARY))
        if fallback:
            self._add(names.AGENT_FALLBACK_QUEUE, activities=fake_agent(ModelTier.FALLBACK))
        if projection:
            self._add(names.PROJECTION_QUEUE, activities=[self.projected.activity])
        for w in self._workers:
            await w.__aenter__()

    def _add(self, queue: str, **kw) -> None:
        self._workers.append(
            Worker(self.client, task_queue=queue, disable_eager_activity_execution=True, **kw)
        )

    async def stop(self) -> None:
        for w in self._workers:
            await w.__aexit__(None, None, None)
        self._pool.shutdown()


@pytest.fixture
async def workers_factory(ledger: Ledger):
    made: list[Workers] = []

    async def make(client: Client, **kw) -> Workers:
        w = Workers(client, ledger)
        await w.start(**kw)
        made.append(w)
        return w

    yield make
    for w in made:
        await w.stop()
