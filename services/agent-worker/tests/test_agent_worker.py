"""The worker wiring against a real Temporal dev server: activities found by name on each queue."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from ticketflow.agent_worker import Settings
from ticketflow.agent_worker.worker import DIST_NAME, QueueChoice, serve
from ticketflow.contracts import ActionKind, Category, ModelTier
from ticketflow.runtime.pollers import ACTIVITY
from ticketflow.testkit import WorkerFleet, free_port, wait_until_polling

from ._probe import TICKET, ProbeInput, ProbeResult, start_probe, start_probe_worker

Fleet = Callable[[Client], Awaitable[WorkerFleet]]


@pytest.fixture
async def probe_queue(dev_env: WorkflowEnvironment, worker_fleet: Fleet) -> str:
    return await start_probe_worker(worker_fleet, dev_env.client)


async def probe(env: WorkflowEnvironment, probe_queue: str, inp: ProbeInput) -> ProbeResult:
    return await (await start_probe(env.client, probe_queue, inp)).result()


async def until_polling(client: Client, serving: asyncio.Task[None], queues: list[str]) -> None:
    """Until Temporal lists a poller of each agent queue ``serve`` runs (it must not have died)."""

    def alive() -> None:
        assert not serving.done(), f"serve ended early: {serving}"

    await wait_until_polling(client, [(q, ACTIVITY) for q in queues], alive=alive)


def start_serving(
    env: WorkflowEnvironment,
    settings: Settings,
    queue: QueueChoice,
    task_queues: Mapping[ModelTier, str],
    stop: asyncio.Event,
    lines: list[str],
) -> asyncio.Task[None]:
    return asyncio.create_task(
        serve(
            settings,
            queue,
            stop=stop,
            task_queues=task_queues,
            client=env.client,
            echo=lines.append,
        )
    )


async def test_serve_answers_on_both_queues_and_stops_gracefully(
    dev_env: WorkflowEnvironment, probe_queue: str
) -> None:
    queues = {tier: f"agent-{tier.value}-{uuid.uuid4()}" for tier in ModelTier}
    settings = Settings(mock_latency_ms=0, agent_rate_per_s=50)
    stop = asyncio.Event()
    lines: list[str] = []
    serving = start_serving(dev_env, settings, QueueChoice.BOTH, queues, stop, lines)
    try:
        await until_polling(dev_env.client, serving, list(queues.values()))
        primary = await probe(
            dev_env, probe_queue, ProbeInput(task_queue=queues[ModelTier.PRIMARY], ticket=TICKET)
        )
        fallback = await probe(
            dev_env, probe_queue, ProbeInput(task_queue=queues[ModelTier.FALLBACK], ticket=TICKET)
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
    dev_env: WorkflowEnvironment, probe_queue: str
) -> None:
    queue = f"agent-primary-{uuid.uuid4()}"
    settings = Settings(mock_latency_ms=0, mock_failure_rate=1.0)
    stop = asyncio.Event()
    serving = start_serving(
        dev_env, settings, QueueChoice.PRIMARY, {ModelTier.PRIMARY: queue}, stop, []
    )
    try:
        await until_polling(dev_env.client, serving, [queue])
        with pytest.raises(WorkflowFailureError) as failed:
            await probe(
                dev_env, probe_queue, ProbeInput(task_queue=queue, ticket=TICKET, max_attempts=2)
            )
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


async def test_serve_says_it_waits_for_temporal_and_a_stop_ends_the_wait() -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    stop = asyncio.Event()
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        stop.set()  # as a SIGTERM would, once the first attempt has failed

    # A liveness bound, not a speed threshold: without the stop it would wait forever.
    await asyncio.wait_for(
        serve(Settings(temporal_address=address), QueueChoice.BOTH, stop=stop, echo=echo), 30
    )
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{DIST_NAME}: waiting for Temporal at {address} (attempt 1")
    assert "TICKETFLOW_TEMPORAL_ADDRESS" in lines[0]
    assert lines[1] == f"{DIST_NAME}: stopped before Temporal answered"
