"""The floor: a plain Temporal workflow of the ticket workflow's shape as of 2026-11, no-op activities.

A fixed yardstick: it keeps this shape when ticketflow's own workflow changes, so "ticketflow / floor"
compares today's ticketflow with what a Temporal workflow of the old shape costs on the same server.
Per ticket: TicketStatus upserted at RECEIVED, CLASSIFYING, DRAFTING, EXECUTING and RESOLVED; the
classification upserted into the memo; classify and draft on the agent queue, the refund (refund
tickets) and the reply on the core queue, the outcome record on the projection queue; each
activity a workflow-task round trip. The worker process runs the three queues, as ticketflow's
core-worker, agent-worker and projection do between them.

    python bench/_floor.py <temporal address>     # the worker; bench/run.py starts it
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import SearchAttributeKey

CORE, AGENT, PROJECTION = "floor-core", "floor-agent", "floor-projection"
STATUS = SearchAttributeKey.for_keyword("TicketStatus")
WORKFLOW = "BenchFloorTicket"


@activity.defn(name="floor_classify")
async def classify(refund: bool) -> dict[str, Any]:
    return {"category": "refund" if refund else "account", "confidence": 0.95}


@activity.defn(name="floor_draft")
async def draft(refund: bool) -> str:
    return "draft"


@activity.defn(name="floor_refund")
async def refund(ticket: str) -> str:
    return f"refund-{ticket}"


@activity.defn(name="floor_reply")
async def reply(ticket: str) -> str:
    return f"reply-{ticket}"


@activity.defn(name="floor_record")
async def record(ticket: str) -> bool:
    return True


@workflow.defn(name=WORKFLOW)
class FloorTicket:
    @workflow.run
    async def run(self, refund_ticket: bool) -> dict[str, float]:
        ticket = workflow.info().workflow_id
        timeout = timedelta(seconds=30)
        self._status("RECEIVED")
        self._status("CLASSIFYING")
        classification = await workflow.execute_activity(
            classify, refund_ticket, task_queue=AGENT, start_to_close_timeout=timeout
        )
        workflow.upsert_memo({"classification": classification})
        self._status("DRAFTING")
        await workflow.execute_activity(
            draft, refund_ticket, task_queue=AGENT, start_to_close_timeout=timeout
        )
        self._status("EXECUTING")
        if refund_ticket:
            await workflow.execute_activity(
                refund, ticket, task_queue=CORE, start_to_close_timeout=timeout
            )
        await workflow.execute_activity(
            reply, ticket, task_queue=CORE, start_to_close_timeout=timeout
        )
        self._status("RESOLVED")
        await workflow.execute_activity(
            record, ticket, task_queue=PROJECTION, start_to_close_timeout=timeout
        )
        return {
            "started": workflow.info().start_time.timestamp(),
            "finished": workflow.now().timestamp(),
        }

    def _status(self, status: str) -> None:
        workflow.upsert_search_attributes([STATUS.value_set(status)])


async def serve(address: str) -> None:
    from temporalio.client import Client
    from temporalio.worker import Worker

    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    workers = [
        Worker(client, task_queue=CORE, workflows=[FloorTicket], activities=[refund, reply]),
        Worker(client, task_queue=AGENT, activities=[classify, draft]),
        Worker(client, task_queue=PROJECTION, activities=[record]),
    ]
    async with contextlib.AsyncExitStack() as running:
        for worker in workers:
            await running.enter_async_context(worker)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
