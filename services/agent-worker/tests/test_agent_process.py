"""The real `ticketflow-agent-worker` process: it stops on SIGTERM while Temporal is down, drains
in-flight calls on the first signal, and stops without waiting on a second one."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence

import pytest
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from ticketflow.agent_worker.worker import DIST_NAME, worker_identity
from ticketflow.contracts import ModelTier, names
from ticketflow.runtime import EXIT_INTERRUPTED
from ticketflow.runtime.pollers import ACTIVITY
from ticketflow.testkit import (
    ServiceProcess,
    WorkerFleet,
    console_script,
    eventually_async,
    free_port,
    wait_until_polling,
)

from ._probe import TICKET, ProbeInput, start_probe, start_probe_worker

BINARY = console_script(DIST_NAME)


StartProcess = Callable[[list[str], Mapping[str, str]], ServiceProcess]


@pytest.fixture
def start_process(
    service_process: Callable[[Sequence[str], Mapping[str, str]], ServiceProcess],
) -> StartProcess:
    """``start_process(args, env)``: the console script with those arguments and variables."""

    def start(args: list[str], env: Mapping[str, str]) -> ServiceProcess:
        return service_process([BINARY, *args], env)

    return start


def test_sigterm_while_waiting_for_temporal_exits_cleanly(start_process: StartProcess) -> None:
    agent = start_process([], {"TICKETFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"})
    agent.wait_for_output("waiting for Temporal")
    agent.proc.send_signal(signal.SIGTERM)
    # A liveness bound, not a speed threshold: it must not wait for Temporal any longer.
    assert agent.proc.wait(timeout=30) == 0, agent.output()
    assert "stopped before Temporal answered" in agent.output()


async def test_a_second_signal_stops_without_waiting_for_in_flight_calls(
    dev_env: WorkflowEnvironment,
    worker_fleet: Callable[[Client], Awaitable[WorkerFleet]],
    start_process: StartProcess,
) -> None:
    client = dev_env.client
    # A model call that outlives the test: the first SIGTERM would wait GRACEFUL_SHUTDOWN_TIMEOUT
    # for it, then cancel it and exit 0; only the second signal makes it exit at once, with 130.
    agent = start_process(
        ["--queue", "primary"],
        {
            "TICKETFLOW_TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "TICKETFLOW_MOCK_LATENCY_MS": "600000",
        },
    )
    identity = worker_identity(ModelTier.PRIMARY, pid=agent.proc.pid)

    def alive() -> None:
        assert agent.proc.poll() is None, agent.output()

    await wait_until_polling(
        client, [(names.AGENT_QUEUE, ACTIVITY)], identity=identity, alive=alive
    )
    probe_queue = await start_probe_worker(worker_fleet, client)
    handle = await start_probe(
        client,
        probe_queue,
        ProbeInput(task_queue=names.AGENT_QUEUE, ticket=TICKET, start_to_close_s=3600),
    )
    try:

        async def call_in_flight() -> bool:
            pending = (await handle.describe()).raw_description.pending_activities
            return any(
                a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED for a in pending
            )

        await eventually_async(call_in_flight, timeout=30, what="the classify call in flight")
        agent.proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(agent.wait_for_output, "shutting down gracefully")
        agent.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(agent.proc.wait, 30)
    finally:
        await handle.terminate("test over")
    assert code == EXIT_INTERRUPTED, agent.output()
    assert "SIGTERM again" in agent.output()
