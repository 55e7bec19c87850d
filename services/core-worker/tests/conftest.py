"""Fixtures of core-worker's tests: the refund ledger and reply outbox in a temp ``ledger.db`` (or,
for modules that ask with ``BOTH_BACKENDS``, also in a fresh database of a real PostgreSQL on
127.0.0.1), and the ticket workflow's workers (real core worker, fake agent and projection) on a
Temporal server.

The servers (``dev_env``, ``time_env``) and ``worker_fleet`` come from the testkit's plugin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from ticketflow.contracts import names
from ticketflow.contracts.decision_signing import DecisionKey, DecisionVerifier
from ticketflow.contracts.models import ModelTier
from ticketflow.core_worker._store import LedgerStore
from ticketflow.core_worker.activities import SideEffectActivities
from ticketflow.core_worker.decision_auth import DecisionAuth
from ticketflow.core_worker.ledger import RefundLedger
from ticketflow.core_worker.outbox import ReplyOutbox
from ticketflow.core_worker.workflow import TicketWorkflow
from ticketflow.storage import StoreUrl, parse_store_url
from ticketflow.testkit import RecordedOutcomes, WorkerFleet, backend_database_url, fake_agent

from ._tickets import TEST_KEYS, StartWorkers


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def ledger_url(request: pytest.FixtureRequest, ledger_path: Path) -> StoreUrl:
    """The ledger store's URL: ``ledger_path`` unless the module runs on ``BOTH_BACKENDS``."""
    url = backend_database_url(request, ledger_path)
    return parse_store_url(url, data_dir=ledger_path.parent)


@pytest.fixture
def ledger_store(ledger_url: StoreUrl) -> Iterator[LedgerStore]:
    """The store migrated to head, its engine shared by the ledger and the outbox (as in the
    worker)."""
    store = LedgerStore(ledger_url)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def refund_ledger(ledger_store: LedgerStore) -> RefundLedger:
    return RefundLedger(ledger_store)


@pytest.fixture
def outbox(ledger_store: LedgerStore) -> ReplyOutbox:
    return ReplyOutbox(ledger_store)


@pytest.fixture
def side_effects(refund_ledger: RefundLedger, outbox: ReplyOutbox) -> SideEffectActivities:
    return SideEffectActivities(refund_ledger, outbox)


@pytest.fixture
async def start_workers(
    worker_fleet: Callable[[Client], Awaitable[WorkerFleet]],
    side_effects: SideEffectActivities,
) -> AsyncIterator[StartWorkers]:
    """``await start_workers(env, ...)``: the workflow's queues are contracts names, so each test
    runs its own workers (stopped after it) with whatever it leaves out or replaces. The core
    worker verifies decisions with ``decision_keys`` (``_tickets.signed`` signs them). Returns the
    projection stand-in, which keeps every outcome it is given."""

    async def start(
        env: WorkflowEnvironment,
        *,
        core: bool = True,
        primary: bool = True,
        fallback: bool = True,
        projection: bool = True,
        core_activities: Sequence[Callable[..., Any]] | None = None,
        primary_activities: Sequence[Callable[..., Any]] | None = None,
        decision_keys: Sequence[DecisionKey] | None = TEST_KEYS,
    ) -> RecordedOutcomes:
        fleet = await worker_fleet(env.client)
        projected = RecordedOutcomes()
        if core:
            fleet.add(
                names.CORE_QUEUE,
                workflows=[TicketWorkflow],
                activities=core_activities
                or [side_effects.issue_refund, side_effects.send_reply, side_effects.check_intake],
                # None: a worker built without the interceptor (it must fail closed too).
                interceptors=[]
                if decision_keys is None
                else [DecisionAuth(DecisionVerifier(decision_keys))],
            )
        if primary:
            fleet.add(
                names.AGENT_QUEUE,
                activities=primary_activities or fake_agent(ModelTier.PRIMARY),
            )
        if fallback:
            fleet.add(names.AGENT_FALLBACK_QUEUE, activities=fake_agent(ModelTier.FALLBACK))
        if projection:
            fleet.add(names.PROJECTION_QUEUE, activities=[projected.activity])
        # Returns once Temporal lists every worker as a poller (on the time-skipping server,
        # which cannot list pollers, once each worker runs).
        await fleet.start()
        return projected

    yield start
