"""Wiring: open the ledger store (its schema current), connect to Temporal, then run the ticket
workflow and the side-effect activities on the core task queue until a stop is requested."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from socket import gethostname

from temporalio.client import Client
from temporalio.worker import Worker
from ticketflow.contracts import names
from ticketflow.contracts.decision_signing import DecisionVerifier
from ticketflow.runtime import connect, package_version

from ._open import open_for_worker
from ._store import LedgerStore
from .activities import Faults, SideEffectActivities
from .decision_auth import DecisionAuth
from .ledger import RefundLedger
from .outbox import ReplyOutbox
from .settings import Settings
from .workflow import TicketWorkflow

__all__ = [
    "DIST_NAME",
    "GRACEFUL_SHUTDOWN_TIMEOUT",
    "IDENTITY_PREFIX",
    "VERSION",
    "build_worker",
    "serve",
]

DIST_NAME = "ticketflow-core-worker"
VERSION = package_version(DIST_NAME)
# How Temporal lists this worker among pollers: the prefix, then "@<host name>".
IDENTITY_PREFIX = "core-worker-"
# Running activities get this long after SIGTERM; ledger and outbox writes take milliseconds.
GRACEFUL_SHUTDOWN_TIMEOUT = timedelta(seconds=5)


def build_worker(
    client: Client, settings: Settings, executor: ThreadPoolExecutor, store: LedgerStore
) -> Worker:
    acts = SideEffectActivities(
        RefundLedger(store),  # one engine (one pool) for both
        ReplyOutbox(store),
        Faults(crash_after_refund_commit=settings.fault_crash_after_refund_commit),
    )
    return Worker(
        client,
        task_queue=names.CORE_QUEUE,
        workflows=[TicketWorkflow],
        activities=[acts.issue_refund, acts.send_reply, acts.check_intake],
        # The `decide` validator accepts only decisions signed with one of these keys.
        interceptors=[DecisionAuth(DecisionVerifier(settings.keys_for_decisions))],
        activity_executor=executor,
        max_concurrent_activities=settings.core_max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.core_max_concurrent_workflow_tasks,
        # Eager dispatch would let activities skip the task queue (and its rate limits).
        disable_eager_activity_execution=True,
        identity=f"{IDENTITY_PREFIX}{VERSION}@{gethostname()}",
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN_TIMEOUT,
    )


def _progress(line: str) -> None:
    print(
        f"{DIST_NAME}: {line}; start it (`ticketflow up`) or set TICKETFLOW_TEMPORAL_ADDRESS",
        flush=True,
    )


def _announce_keys(settings: Settings) -> None:
    kids = [k.key_id for k in settings.keys_for_decisions]  # ids only, never a secret
    if kids:
        print(f"{DIST_NAME}: decisions verified with key ids {', '.join(kids)}", flush=True)
    else:
        print(
            f"{DIST_NAME}: WARNING: no decision keys (TICKETFLOW_DECISION_KEYS or "
            "TICKETFLOW_DECISION_KEYS_FILE): every human decision will be refused",
            flush=True,
        )


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Wait for Temporal (a stop ends the wait at once), then poll until ``stop`` is set.

    Raises ``ServiceError`` when the ledger store is unreachable or its schema behind, and the
    worker's failure (say, an unknown namespace) after shutting it down.
    """
    store, schema = await asyncio.to_thread(open_for_worker, settings)
    print(f"{DIST_NAME}: {schema}", flush=True)
    try:
        await _serve(settings, stop, store)
    finally:
        store.close()


async def _serve(settings: Settings, stop: asyncio.Event, store: LedgerStore) -> None:
    client = await connect(
        settings.temporal_address, settings.namespace, stop=stop, progress=_progress
    )
    if client is None:
        print(f"{DIST_NAME}: stopped before Temporal answered", flush=True)
        return
    with ThreadPoolExecutor(max_workers=settings.core_max_concurrent_activities) as executor:
        worker = build_worker(client, settings, executor, store)
        print(
            f"{DIST_NAME} {VERSION}: polling task queue {names.CORE_QUEUE!r} on "
            f"{settings.temporal_address} (namespace {settings.namespace}); "
            f"ledger {store.shown}",
            flush=True,
        )
        _announce_keys(settings)
        running = asyncio.create_task(worker.run(), name="core-worker")
        stopping = asyncio.create_task(stop.wait(), name="stop-requested")
        try:
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not running.done():
                print(f"{DIST_NAME}: shutting down", flush=True)
                await worker.shutdown()
        await running
