"""pollers.polling: a fresh queue has no poller; a started worker counts once Temporal lists it,
and only for the queue kinds it serves, its own identity and instants before its last poll."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from ticketflow.runtime import pollers
from ticketflow.testkit import eventually_async


@workflow.defn(name="RuntimePollersProbe")
class Probe:
    @workflow.run
    async def run(self) -> None:
        return None


def fresh_queue() -> str:
    return f"runtime-pollers-{uuid.uuid4().hex[:8]}"


def probe_worker(client: Client, queue: str, identity: str) -> Worker:
    """A workflow-only worker (it polls the workflow side of its queue, never the activity side)."""
    return Worker(
        client,
        task_queue=queue,
        workflows=[Probe],
        identity=identity,
        workflow_runner=UnsandboxedWorkflowRunner(),
    )


async def until_polling(client: Client, queue: str, identity: str) -> None:
    await eventually_async(
        lambda: pollers.polling(client, [(queue, pollers.WORKFLOW)], identity=identity),
        what=f"{identity} polling {queue}",
    )


@pytest.fixture
async def polled(dev_env: WorkflowEnvironment) -> AsyncIterator[tuple[Client, str, str]]:
    """A probe worker on a fresh queue that Temporal lists; yields (client, queue, identity)."""
    client, queue, identity = dev_env.client, fresh_queue(), f"probe-{uuid.uuid4().hex[:8]}"
    async with probe_worker(client, queue, identity):
        await until_polling(client, queue, identity)
        yield client, queue, identity


async def test_a_fresh_queue_has_no_poller(dev_env: WorkflowEnvironment) -> None:
    queue = fresh_queue()
    for kind in (pollers.WORKFLOW, pollers.ACTIVITY):
        assert await pollers.pollers(dev_env.client, queue, kind) == []
        assert not await pollers.polling(dev_env.client, [(queue, kind)])


async def test_false_before_a_worker_polls_and_true_once_it_does(
    dev_env: WorkflowEnvironment,
) -> None:
    client, queue, identity = dev_env.client, fresh_queue(), f"probe-{uuid.uuid4().hex[:8]}"
    worker = probe_worker(client, queue, identity)
    assert not await pollers.polling(client, [(queue, pollers.WORKFLOW)], identity=identity)
    async with worker:
        await until_polling(client, queue, identity)


async def test_a_polling_worker_is_listed_by_identity(polled: tuple[Client, str, str]) -> None:
    client, queue, identity = polled
    assert identity in {p.identity for p in await pollers.pollers(client, queue, pollers.WORKFLOW)}
    assert await pollers.polling(client, [(queue, pollers.WORKFLOW)])
    assert await pollers.polling(client, [(queue, pollers.WORKFLOW)], identity=identity)


async def test_another_identity_does_not_count(polled: tuple[Client, str, str]) -> None:
    client, queue, identity = polled
    assert not await pollers.polling(
        client, [(queue, pollers.WORKFLOW)], identity=f"{identity}-other"
    )


async def test_only_the_kinds_a_worker_serves_count(polled: tuple[Client, str, str]) -> None:
    client, queue, identity = polled
    # A workflow-only worker does not poll the activity side of its queue.
    assert not await pollers.polling(client, [(queue, pollers.ACTIVITY)], identity=identity)
    assert not await pollers.polling(
        client, [(queue, pollers.WORKFLOW), (queue, pollers.ACTIVITY)], identity=identity
    )
    # Every listed queue must be polled, not just one of them.
    assert not await pollers.polling(
        client, [(queue, pollers.WORKFLOW), (fresh_queue(), pollers.WORKFLOW)]
    )


async def test_since_ignores_pollers_last_seen_before_an_instant(
    polled: tuple[Client, str, str],
) -> None:
    client, queue, identity = polled
    queues = [(queue, pollers.WORKFLOW)]
    assert await pollers.polling(client, queues, identity=identity, since_epoch_s=0.0)
    assert not await pollers.polling(
        client, queues, identity=identity, since_epoch_s=time.time() + 3600
    )
