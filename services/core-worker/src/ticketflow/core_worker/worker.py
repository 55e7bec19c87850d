"""Wiring: Temporal client, the ticket workflow and the ledger activities on `ticketflow`."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from importlib.metadata import version
from socket import gethostname

from temporalio.client import Client
from temporalio.worker import Worker
from ticketflow.contracts import DATA_CONVERTER, names

from .activities import Faults, LedgerActivities
from .ledger import Ledger
from .settings import Settings
from .workflow import TicketWorkflow

log = logging.getLogger("ticketflow.core_worker")
VERSION = version("ticketflow-core-worker")


async def connect(settings: Settings, *, deadline_s: float | None = None) -> Client:
    """Connect to Temporal, retrying with progress until it answers (or the deadline passes)."""
    loop = asyncio.get_running_loop()
    start, attempt = loop.time(), 0
    while True:
        attempt += 1
        try:
            return await Client.connect(
                settings.temporal_address,
                namespace=settings.namespace,
                data_converter=DATA_CONVERTER,
            )
        except Exception as err:
            if deadline_s is not None and loop.time() - start > deadline_s:
                raise SystemExit(
                    f"core-worker: Temporal at {settings.temporal_address} is unreachable ({err}); "
                    "start it (`ticketflow up`) or set TICKETFLOW_TEMPORAL_ADDRESS"
                ) from err
            log.warning(
                "waiting for Temporal at %s (attempt %d): %s",
                settings.temporal_address,
                attempt,
                err,
            )
            await asyncio.sleep(min(5.0, 0.5 * attempt))


def build_worker(client: Client, settings: Settings, executor: ThreadPoolExecutor) -> Worker:
    ledger = Ledger(settings.ledger_path)
    acts = LedgerActivities(
        ledger, Faults(crash_after_refund_commit=settings.fault_crash_after_refund_commit)
    )
    return Worker(
        client,
        task_queue=names.CORE_QUEUE,
        workflows=[TicketWorkflow],
        activities=[acts.issue_refund, acts.send_reply],
        activity_executor=executor,
        max_concurrent_activities=settings.core_max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.core_max_concurrent_workflow_tasks,
        # Eager dispatch would let activities skip the task queue (and its rate limits).
        disable_eager_activity_execution=True,
        identity=f"core-worker-{VERSION}@{gethostname()}",
        graceful_shutdown_timeout=timedelta(seconds=5),
    )
