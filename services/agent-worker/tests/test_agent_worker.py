"""The worker wiring against a real Temporal dev server: activities found by name on each queue."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pydantic import BaseModel
from temporalio import workflow
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from ticketflow.agent_worker import Settings
from ticketflow.agent_worker.worker import QueueChoice, connect, serve
from ticketflow.contracts import (
    DATA_CONVERTER,
    ActionKind,
    Category,
    Classification,
    ClassifyInput,
    Draft,
    DraftReplyInput,
    ModelTier,
    Ticket,
    names,
)
from ticketflow.launcher.devserver import free_port as unused_port
from ticketflow.launcher.devserver import temporal_binary


class ProbeInput(BaseModel):
    task_queue: str
    ticket: Ticket
    max_attempts: int = 3


class ProbeResult(BaseModel):
    classification: Classification
    draft: Draft


@workflow.defn(name="AgentWorkerProbe")
class ProbeWorkflow:
    """Calls the agent activities by name, as the core workflow does."""

    @workflow.run
    async def run(self, inp: ProbeInput) -> ProbeResult:
        options = {
            "task_queue": inp.task_queue,
            "start_to_close_timeout": timedelta(seconds=30),
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


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_local(
        port=unused_port(),  # below the ephemeral range: see launcher.devserver.free_port
        dev_server_existing_path=temporal_binary(),
        ip="127.0.0.1",
        data_converter=DATA_CONVERTER,
        dev_server_log_level="error",
    )
    try:
        yield environment
    finally:
        await environment.shutdown()


TICKET = Ticket(
    ticket_id="t-probe",
    customer_id="c-1",
    subject="Refund",
    body="Please give me my money back",
    requested_refund_cents=4321,
)


async def probe(env: WorkflowEnvironment, inp: ProbeInput) -> ProbeResult:
    queue = f"probe-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[ProbeWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        return await env.client.execute_workflow(
            ProbeWorkflow.run,
            inp,
            id=f"probe-{uuid.uuid4()}",
            task_queue=queue,
            result_type=ProbeResult,
        )


async def test_serve_answers_on_both_queues_and_stops_gracefully(env: WorkflowEnvironment) -> None:
    queues = {tier: f"agent-{tier.value}-{uuid.uuid4()}" for tier in ModelTier}
    settings = Settings(mock_latency_ms=0, agent_rate_per_s=50)
    stop = asyncio.Event()
    lines: list[str] = []
    serving = asyncio.create_task(
        serve(
            settings,
            QueueChoice.BOTH,
            stop=stop,
            task_queues=queues,
            client=env.client,
            echo=lines.append,
        )
    )
    try:
        primary = await probe(env, ProbeInput(task_queue=queues[ModelTier.PRIMARY], ticket=TICKET))
        fallback = await probe(
            env, ProbeInput(task_queue=queues[ModelTier.FALLBACK], ticket=TICKET)
        )
    finally:
        stop.set()
        await serving
    assert primary.classification.category is Category.REFUND
    assert primary.classification.action is ActionKind.REFUND
    assert primary.classification.refund_cents == 4321
    assert (primary.classification.model, primary.draft.tier) == (
        "mock-primary-1",
        ModelTier.PRIMARY,
    )
    assert "$43.21" in primary.draft.text
    assert fallback.classification.category is Category.REFUND
    assert fallback.classification.confidence < 0.5
    assert fallback.draft.model == "mock-fallback-1"
    assert len(lines) == 1
    assert queues[ModelTier.PRIMARY] in lines[0] and queues[ModelTier.FALLBACK] in lines[0]
    assert "50/s" in lines[0]


async def test_transient_failures_reach_the_workflow_as_retryable_errors(
    env: WorkflowEnvironment,
) -> None:
    queue = f"agent-primary-{uuid.uuid4()}"
    settings = Settings(mock_latency_ms=0, mock_failure_rate=1.0)
    stop = asyncio.Event()
    serving = asyncio.create_task(
        serve(
            settings,
            QueueChoice.PRIMARY,
            stop=stop,
            task_queues={ModelTier.PRIMARY: queue},
            client=env.client,
            echo=lambda _: None,
        )
    )
    try:
        with pytest.raises(WorkflowFailureError) as failed:
            await probe(env, ProbeInput(task_queue=queue, ticket=TICKET, max_attempts=2))
    finally:
        stop.set()
        await serving
    activity_error = failed.value.cause
    assert isinstance(activity_error, ActivityError)
    assert activity_error.retry_state is not None and activity_error.retry_state.name == (
        "MAXIMUM_ATTEMPTS_REACHED"
    )
    cause = activity_error.cause
    assert isinstance(cause, ApplicationError) and cause.type == "TransientModelError"
    assert "attempt 2" in cause.message


async def test_connect_reports_progress_and_gives_up_when_asked() -> None:
    stop = asyncio.Event()
    stop.set()
    lines: list[str] = []
    client = await connect(Settings(temporal_address="127.0.0.1:1"), stop=stop, echo=lines.append)
    assert client is None
    assert lines and lines[0].startswith("waiting for Temporal at 127.0.0.1:1 (attempt 1")
