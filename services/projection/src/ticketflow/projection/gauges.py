"""Gauges of the tickets in flight, from Temporal visibility: the approval queue and stuck tickets.

A workflow cannot say "I am still waiting" as a metric (it records nothing while idle, and
nothing twice on replay), so the projection, which watches every ticket's end anyway, asks
visibility every ``TICKETFLOW_GAUGE_INTERVAL_S`` (15 s) and publishes:
- ``ticketflow_approvals_waiting``: running tickets whose ``TicketStatus`` is WAITING_APPROVAL;
- ``ticketflow_approval_oldest_wait_seconds``: the age (since submission) of the oldest of them;
- ``ticketflow_tickets_stuck``: running tickets not waiting for a human, submitted more than
  15 minutes ago (an unattended ticket takes seconds: something is wrong with it).
Every replica publishes the same values: dashboards take ``max``. While Temporal does not answer,
the last values stay (a failed round is logged at DEBUG; the worker's own logs say Temporal is
down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from temporalio.client import Client
from ticketflow.contracts import names
from ticketflow.runtime import metrics
from ticketflow.runtime.telemetry import temporal_runtime

__all__ = ["STUCK_AFTER", "publish_ticket_gauges", "read_ticket_gauges"]

log = logging.getLogger(__name__)

STUCK_AFTER = timedelta(minutes=15)
# Reading the queue to find its oldest entry stops here (it is a human-sized queue).
_MAX_SCANNED = 10_000
_RUNNING = f'WorkflowType="{names.TICKET_WORKFLOW}" AND ExecutionStatus="Running"'


async def read_ticket_gauges(client: Client, now: datetime) -> tuple[int, float, int]:
    """(approvals waiting, oldest wait in seconds, stuck tickets) from visibility."""
    waiting_q = f'{_RUNNING} AND TicketStatus="WAITING_APPROVAL"'
    waiting = (await client.count_workflows(waiting_q)).count
    oldest = now
    scanned = 0
    if waiting:
        async for wf in client.list_workflows(waiting_q, page_size=1000):
            oldest = min(oldest, wf.start_time)
            scanned += 1
            if scanned >= _MAX_SCANNED:
                break
    cutoff = (now - STUCK_AFTER).isoformat().replace("+00:00", "Z")
    stuck_q = f'{_RUNNING} AND TicketStatus!="WAITING_APPROVAL" AND StartTime<"{cutoff}"'
    stuck = (await client.count_workflows(stuck_q)).count
    return waiting, (now - oldest).total_seconds(), stuck


async def publish_ticket_gauges(client: Client, stop: asyncio.Event, interval_s: float) -> None:
    """Publish the gauges every ``interval_s`` until ``stop``."""
    meter = temporal_runtime().metric_meter
    while not stop.is_set():
        try:
            waiting, oldest_s, stuck = await read_ticket_gauges(client, datetime.now(UTC))
        except Exception as err:  # Temporal down or slow: keep the last values, try again
            log.debug("ticket gauges not refreshed: %s", err)
        else:
            metrics.set_gauge(meter, metrics.APPROVALS_WAITING, waiting)
            metrics.set_gauge(meter, metrics.APPROVAL_OLDEST_WAIT, oldest_s)
            metrics.set_gauge(meter, metrics.TICKETS_IN_PROGRESS_STUCK, stuck)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
