"""The real `ticketflow-agent-worker` process: it stops on SIGTERM while Temporal is down, drains
in-flight calls on the first signal, and stops without waiting on a second one."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from ticketflow.agent_worker.worker import DIST_NAME, worker_identity
from ticketflow.contracts import ModelTier, names
from ticketflow.runtime import EXIT_INTERRUPTED
from ticketflow.runtime.pollers import ACTIVITY
from ticketflow.testkit import (
    WorkerFleet,
    eventually,
    eventually_async,
    free_port,
    wait_until_polling,
)

from ._probe import TICKET, ProbeInput, start_probe, start_probe_worker

BINARY = str(Path(sys.executable).parent / DIST_NAME)


class AgentWorkerProcess:
    """The console script in its own process group, its output in a log file."""

    def __init__(self, log: Path, args: list[str], env: Mapping[str, str]) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [BINARY, *args],
                env={
                    **{k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_")},
                    **env,
                },
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text()

    def wait_for_output(self, text: str) -> None:
        def printed() -> bool:
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.output()}"
            return text in self.output()

        eventually(printed, timeout=30, what=f"{text!r} in the output")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


StartProcess = Callable[[list[str], Mapping[str, str]], AgentWorkerProcess]


@pytest.fixture
def start_process(tmp_path: Path) -> Iterator[StartProcess]:
    """``start_process(args, env)``; every process started is killed if still running."""
    started: list[AgentWorkerProcess] = []

    def start(args: list[str], env: Mapping[str, str]) -> AgentWorkerProcess:
        process = AgentWorkerProcess(tmp_path / f"agent-{len(started)}.log", args, env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


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
