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


async def connect(settings: Settings, stop: asyncio.Event | None = None) -> Client | None:
    """Connect to Temporal, retrying with progress until it answers; None once ``stop`` is set.

    Stopping must work while Temporal is unreachable: a SIGTERM during the wait ends the process
    at once instead of after a supervisor's kill timeout.
    """
    stop = stop or asyncio.Event()
    attempt = 0
    while not stop.is_set():
        attempt += 1
        connecting = asyncio.ensure_future(
            Client.connect(
                settings.temporal_address,
                namespace=settings.namespace,
                data_converter=DATA_CONVERTER,
            )
        )
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if stop.is_set():
            connecting.cancel()
            break
        try:
            return connecting.result()
        except Exception as err:  # any connection failure is retried
            log.warning(
                "waiting for Temporal at %s (attempt %d): %s; start it (`ticketflow up`) or set "
                "TICKETFLOW_TEMPORAL_ADDRESS",
                settings.temporal_address,
                attempt,
                err,
            )
        try:
            await asyncio.wait_for(stop.wait(), timeout=min(5.0, 0.5 * attempt))
        except TimeoutError:
            pass
    return None


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
