"""WorkerFleet: start() returns once Temporal lists each worker as a poller of what it serves; the
workers run workflows and (sync) activities; stop() shuts every one down."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from ticketflow.runtime import pollers
from ticketflow.testkit import WorkerFleet, wait_polling

MakeFleet = Callable[[Client], Awaitable[WorkerFleet]]


@activity.defn(name="TestkitShout")
def shout(text: str) -> str:
    """Sync on purpose: the fleet must give sync activities its thread pool."""
    return text.upper()


@workflow.defn(name="TestkitFleetProbe")
class Shouter:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(
            shout, text, start_to_close_timeout=timedelta(seconds=30)
        )


def fresh_queue() -> str:
    return f"testkit-fleet-{uuid.uuid4().hex[:8]}"


def identity(worker: Worker) -> str:
    value = worker.config().get("identity")
    assert isinstance(value, str)
    return value


async def polls(client: Client, worker: Worker, kind: pollers.QueueKind) -> bool:
    return await pollers.polling(client, [(worker.task_queue, kind)], identity=identity(worker))


def add_workflow_worker(fleet: WorkerFleet, queue: str) -> Worker:
    return fleet.add(queue, workflows=[Shouter], workflow_runner=UnsandboxedWorkflowRunner())


async def test_start_returns_once_temporal_lists_each_worker(
    dev_env: WorkflowEnvironment, worker_fleet: MakeFleet
) -> None:
    client = dev_env.client
    fleet = await worker_fleet(client)
    flows = add_workflow_worker(fleet, fresh_queue())
    acts = fleet.add(fresh_queue(), activities=[shout])
    assert not await polls(client, flows, pollers.WORKFLOW)
    assert not await polls(client, acts, pollers.ACTIVITY)

    await fleet.start()

    # No waiting here: start() has done it.
    assert await polls(client, flows, pollers.WORKFLOW)
    assert await polls(client, acts, pollers.ACTIVITY)
    # Each worker has an identity of its own, which is how start() told them apart.
    assert identity(flows).startswith(f"testkit-{flows.task_queue}-")
    assert identity(flows) != identity(acts)


async def test_workers_run_workflows_and_sync_activities(
    dev_env: WorkflowEnvironment, worker_fleet: MakeFleet
) -> None:
    client = dev_env.client
    fleet = await worker_fleet(client)
    queue = fresh_queue()
    fleet.add(
        queue,
        workflows=[Shouter],
        activities=[shout],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    await fleet.start()
    result = await client.execute_workflow(Shouter.run, "hello", id=f"wf-{queue}", task_queue=queue)
    assert result == "HELLO"


async def test_start_again_starts_only_the_workers_added_since(
    dev_env: WorkflowEnvironment, worker_fleet: MakeFleet
) -> None:
    client = dev_env.client
    fleet = await worker_fleet(client)
    first = add_workflow_worker(fleet, fresh_queue())
    await fleet.start()
    second = add_workflow_worker(fleet, fresh_queue())
    await fleet.start()  # would fail if it entered ``first`` a second time
    assert first.is_running and second.is_running
    assert await polls(client, second, pollers.WORKFLOW)


async def test_stop_shuts_every_worker_down(dev_env: WorkflowEnvironment) -> None:
    fleet = WorkerFleet(dev_env.client)
    workers = [add_workflow_worker(fleet, fresh_queue()) for _ in range(2)]
    async with fleet:
        assert all(w.is_running for w in workers)
        assert await polls(dev_env.client, workers[0], pollers.WORKFLOW)
    assert all(w.is_shutdown and not w.is_running for w in workers)


async def test_wait_polling_names_the_worker_when_it_never_polls(
    dev_env: WorkflowEnvironment,
) -> None:
    fleet = WorkerFleet(dev_env.client)
    idle = add_workflow_worker(fleet, fresh_queue())  # added, never started
    with pytest.raises(AssertionError, match=f"worker {identity(idle)} polling {idle.task_queue}"):
        await wait_polling(dev_env.client, idle, timeout=0.5)
    await fleet.stop()
