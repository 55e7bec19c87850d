"""A probe workflow that calls the agent activities by name on a given queue, as the core workflow
does, and the helpers to run it on a Temporal server from the testkit."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.common import RetryPolicy
from temporalio.worker import UnsandboxedWorkflowRunner
from ticketflow.contracts import (
    Classification,
    ClassifyInput,
    Draft,
    DraftReplyInput,
    Ticket,
    names,
)
from ticketflow.testkit import WorkerFleet


class ProbeInput(BaseModel):
    task_queue: str
    ticket: Ticket
    max_attempts: int = 3
    start_to_close_s: float = 30.0


class ProbeResult(BaseModel):
    classification: Classification
    draft: Draft


@workflow.defn(name="AgentWorkerProbe")
class ProbeWorkflow:
    """Calls the agent activities by name, as the core workflow does."""

    @workflow.run
    async def run(self, inp: ProbeInput) -> ProbeResult:
        options: dict[str, Any] = {
            "task_queue": inp.task_queue,
            "start_to_close_timeout": timedelta(seconds=inp.start_to_close_s),
            "heartbeat_timeout": timedelta(seconds=5),
            "retry_policy": RetryPolicy(
                initial_interval=timedelta(milliseconds=10), maximum_attempts=inp.max_attempts
            ),
        }
        classification = await workflow.execute_activity(
            names.CLASSIFY, ClassifyInput(ticket=inp.ticket), result_type=Classification, **options
        )
        draft = await workflow.execute_activity(
            names.DRAFT_REPLY,
            DraftReplyInput(ticket=inp.ticket, classification=classification),
            result_type=Draft,
            **options,
        )
        return ProbeResult(classification=classification, draft=draft)


TICKET = Ticket(
    ticket_id="t-probe",
    customer_id="c-1",
    subject="Refund",
    body="Please give me my money back",
    requested_refund_cents=4321,
)

ProbeHandle = WorkflowHandle[Any, ProbeResult]


async def start_probe_worker(
    worker_fleet: Callable[[Client], Awaitable[WorkerFleet]], client: Client
) -> str:
    """A worker for the probe workflow on a fresh queue, polling once this returns."""
    queue = f"probe-{uuid.uuid4()}"
    fleet = await worker_fleet(client)
    fleet.add(queue, workflows=[ProbeWorkflow], workflow_runner=UnsandboxedWorkflowRunner())
    await fleet.start()
    return queue


async def start_probe(client: Client, probe_queue: str, inp: ProbeInput) -> ProbeHandle:
    return await client.start_workflow(
        ProbeWorkflow.run,
        inp,
        id=f"probe-{uuid.uuid4()}",
        task_queue=probe_queue,
        result_type=ProbeResult,
    )
