"""Real Temporal servers for tests: DevServer starts, serves, keeps its db across a restart and
leaves no process behind; both SDK environments know ticketflow's search attributes."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from ticketflow.contracts import search_attributes
from ticketflow.runtime.net import port_is_open
from ticketflow.testkit import (
    DevServer,
    eventually_async,
    free_port,
    stop_env,
    time_skipping_server_binary,
)

STATUS = search_attributes.TICKET_STATUS


@workflow.defn(name="TestkitStatusProbe")
class StatusProbe:
    """Upserts TicketStatus as the ticket workflow does (an unknown attribute would hang it)."""

    @workflow.run
    async def run(self, status: str) -> str:
        workflow.upsert_search_attributes([STATUS.value_set(status)])
        return workflow.info().typed_search_attributes.get(STATUS) or ""


def status_open() -> TypedSearchAttributes:
    return TypedSearchAttributes([SearchAttributePair(STATUS, "open")])


def probe_worker(client: Client, queue: str) -> Worker:
    return Worker(
        client,
        task_queue=queue,
        workflows=[StatusProbe],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_dev_server_starts_serves_and_stops(tmp_path: Path) -> None:
    server = DevServer(db_filename=tmp_path / "temporal.db")
    await asyncio.to_thread(server.start)
    try:
        assert server.process is not None and server.process.poll() is None
        assert server.address == f"127.0.0.1:{server.port}"
        client = await Client.connect(server.address)
        assert await client.service_client.check_health()
    finally:
        code = await asyncio.to_thread(server.stop)
    assert code is not None and server.process.poll() == code
    assert not group_alive(server.process.pid)
    assert not port_is_open("127.0.0.1", server.port)
    assert (tmp_path / "temporal.db").is_file()
    assert (tmp_path / "temporal.db.log").is_file()


async def test_dev_server_keeps_its_workflows_across_a_restart(tmp_path: Path) -> None:
    server = DevServer(db_filename=tmp_path / "temporal.db")
    await asyncio.to_thread(server.start)
    try:
        client = await Client.connect(server.address)
        # No worker: the workflow stays running, stored in the db file.
        handle = await client.start_workflow(
            "Unserved", id=f"wf-{uuid.uuid4().hex[:8]}", task_queue="testkit-unserved"
        )
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(server.start)
        client = await Client.connect(server.address)
        described = await client.get_workflow_handle(handle.id).describe()
        assert described.run_id == handle.result_run_id
        assert described.status == WorkflowExecutionStatus.RUNNING
    finally:
        await asyncio.to_thread(server.stop)


async def test_dev_server_refuses_a_second_start(tmp_path: Path) -> None:
    server = DevServer(log_path=tmp_path / "temporal.log")  # in memory
    await asyncio.to_thread(server.start)
    try:
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
    finally:
        await asyncio.to_thread(server.stop)


async def test_a_failed_start_says_why_and_leaves_nothing_running(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", free_port()))
        squatter.listen()
        port = squatter.getsockname()[1]
        server = DevServer(port=port, log_path=tmp_path / "temporal.log")
        with pytest.raises(RuntimeError, match="dev server did not start") as raised:
            await asyncio.to_thread(server.start)
    assert "address already in use" in str(raised.value)  # the log's tail
    assert server.process is not None and server.process.poll() is not None
    assert not group_alive(server.process.pid)


async def test_dev_env_lists_by_ticket_status(dev_env: WorkflowEnvironment) -> None:
    client, queue = dev_env.client, f"testkit-sa-{uuid.uuid4().hex[:8]}"
    async with probe_worker(client, queue):
        status = await client.execute_workflow(
            StatusProbe.run,
            f"status-{queue}",
            id=f"wf-{queue}",
            task_queue=queue,
            search_attributes=status_open(),
        )
    assert status == f"status-{queue}"

    async def listed() -> list[str]:
        return [w.id async for w in client.list_workflows(f"TicketStatus = '{status}'")]

    assert await eventually_async(listed, what="the workflow listed by TicketStatus") == [
        f"wf-{queue}"
    ]


async def test_time_skipping_env_knows_ticket_status(time_env: WorkflowEnvironment) -> None:
    # The Java test server implements no list queries (ListWorkflowExecutions is unimplemented):
    # what the registration buys there is a start with, and an upsert of, TicketStatus.
    client, queue = time_env.client, f"testkit-sa-{uuid.uuid4().hex[:8]}"
    async with probe_worker(client, queue):
        handle = await client.start_workflow(
            StatusProbe.run,
            "resolved",
            id=f"wf-{queue}",
            task_queue=queue,
            search_attributes=status_open(),
        )
        assert await handle.result() == "resolved"
    described = await handle.describe()
    assert described.typed_search_attributes.get(STATUS) == "resolved"


async def test_a_bare_time_skipping_server_does_not_know_ticket_status() -> None:
    """What start_time_skipping_env adds: without it the same start is refused."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=time_skipping_server_binary()
    )
    try:
        with pytest.raises(RPCError, match="TicketStatus is not defined"):
            await env.client.start_workflow(
                "TestkitStatusProbe",
                "resolved",
                id=f"wf-{uuid.uuid4().hex[:8]}",
                task_queue="testkit-unserved",
                search_attributes=status_open(),
            )
    finally:
        await stop_env(env)


async def test_stop_env_reports_a_failed_shutdown_without_raising(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class CrashingOnExit:
        async def shutdown(self) -> None:
            raise RuntimeError("exit code 139")

    await stop_env(CrashingOnExit())  # type: ignore[arg-type]  # a stand-in with only shutdown()
    assert "test server shutdown: exit code 139" in capsys.readouterr().out
