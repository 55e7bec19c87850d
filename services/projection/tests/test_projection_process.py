"""The real `ticketflow-projection` process: serve (with and without Temporal), SIGTERM, and
rebuild's exit status when Temporal is unreachable.

Temporal here runs no TicketWorkflow (that is core-worker's): a stand-in workflow calls
record_outcome on the projection's queue, as the ticket workflow's last step does. The real
workflow recording into the real process is tested in the root tests/test_projection_serve.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner
from ticketflow import testkit
from ticketflow.contracts import names
from ticketflow.contracts.models import TicketOutcome
from ticketflow.contracts.proto_convert import from_proto
from ticketflow.projection._rebuild_guard import exclusive_rebuild
from ticketflow.projection.store import ReadModelStore
from ticketflow.v1 import readmodel_pb2, readmodel_pb2_grpc

from ._views import leftovers, table

LISTENING = re.compile(r"gRPC read API on (127\.0\.0\.1:\d+)")


@pytest.fixture
def dead_temporal() -> Iterator[str]:
    """An address on 127.0.0.1 where nothing listens: the port is bound (so nobody else gets it)
    but not listening, so every connection is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def env_for(data_dir: Path, temporal: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_")}
    return {
        **base,
        "TICKETFLOW_DATA_DIR": str(data_dir),
        "TICKETFLOW_TEMPORAL_ADDRESS": temporal,
        "TICKETFLOW_PROJECTION_ADDRESS": "127.0.0.1:0",
        "PYTHONUNBUFFERED": "1",
    }


async def run_to_exit(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`python -m ticketflow.projection *args` run to its end: exit status, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ticketflow.projection",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class Serving:
    def __init__(self, proc: asyncio.subprocess.Process, address: str, log: Path) -> None:
        self.proc = proc
        self.address = address
        self.log = log
        self.channel = grpc.aio.insecure_channel(address)
        self.stub = readmodel_pb2_grpc.ReadModelServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    async def terminate(self) -> tuple[int, str]:
        """SIGTERM, then the exit status and the rest of stdout."""
        assert self.proc.stdout is not None
        self.proc.send_signal(signal.SIGTERM)
        out = await asyncio.wait_for(self.proc.stdout.read(), timeout=30)
        return await self.proc.wait(), out.decode()


@pytest.fixture
async def serve_process(tmp_path: Path) -> AsyncIterator[Callable[[str], Awaitable[Serving]]]:
    """Starts `python -m ticketflow.projection serve` against a Temporal address (with extra
    environment variables); returns once it printed where its read API listens. Every process is
    killed after the test."""
    started: list[Serving] = []

    async def start(temporal: str, **env: str) -> Serving:
        log = tmp_path / f"projection-{len(started)}.log"
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "ticketflow.projection",
                "serve",
                env={**env_for(tmp_path / "var", temporal), **env},
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
        match = LISTENING.search(first.decode())
        if not match:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"unexpected first line {first!r}; log: {log.read_text()}")
        s = Serving(proc, match.group(1), log)
        started.append(s)
        return s

    yield start
    for s in started:
        await s.channel.close()
        if s.proc.returncode is None:
            s.proc.kill()
            await s.proc.wait()


async def test_read_api_serves_while_temporal_is_unreachable_and_sigterm_stops_it(
    tmp_path: Path, dead_temporal: str, serve_process
) -> None:
    outcome = testkit.outcome("t-offline")
    ReadModelStore(tmp_path / "var" / "readmodel.db").record(outcome, run_id="r")

    s = await serve_process(dead_temporal)
    resp = await s.stub.GetOutcome(readmodel_pb2.GetOutcomeRequest(ticket_id="t-offline"))
    assert from_proto(resp.outcome, TicketOutcome) == outcome
    check = await s.health.Check(health_pb2.HealthCheckRequest(service=""))
    assert check.status == health_pb2.HealthCheckResponse.SERVING

    async def worker_retrying() -> bool:
        return "waiting for Temporal" in s.log.read_text()

    await testkit.eventually_async(worker_retrying, what="the worker retrying its connection")

    code, out = await s.terminate()
    assert code == 0, s.log.read_text()
    assert "projection: stopped" in out


async def test_read_api_needs_the_read_model_token_when_set(
    tmp_path: Path, dead_temporal: str, serve_process
) -> None:
    token = "rm-process-token-0123456789abcdef"
    ReadModelStore(tmp_path / "var" / "readmodel.db").record(testkit.outcome("t-1"), run_id="r")
    s = await serve_process(dead_temporal, TICKETFLOW_READMODEL_TOKEN=token)
    request = readmodel_pb2.GetOutcomeRequest(ticket_id="t-1")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.GetOutcome(request)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    resp = await s.stub.GetOutcome(request, metadata=(("authorization", f"Bearer {token}"),))
    assert resp.outcome.ticket_id == "t-1"
    check = await s.health.Check(health_pb2.HealthCheckRequest(service=""))
    assert check.status == health_pb2.HealthCheckResponse.SERVING  # probes need no token
    code, out = await s.terminate()
    assert code == 0, s.log.read_text()
    assert "read API needs the read-model token" in out
    assert token not in out and token not in s.log.read_text()


@workflow.defn(name="RecordOutcomeStandIn")
class RecordOutcomeStandIn:
    """The ticket workflow's last step alone: record_outcome on the projection's queue."""

    @workflow.run
    async def run(self, outcome: TicketOutcome) -> bool:
        changed: bool = await workflow.execute_activity(
            names.RECORD_OUTCOME,
            outcome,
            task_queue=names.PROJECTION_QUEUE,
            start_to_close_timeout=timedelta(seconds=10),
            result_type=bool,
        )
        return changed


async def test_serve_records_outcomes_sent_to_its_queue(
    tmp_path: Path, dev_env: WorkflowEnvironment, worker_fleet, serve_process
) -> None:
    s = await serve_process(dev_env.client.service_client.config.target_host)
    queue = f"stand-in-{testkit.fresh_id()}"
    fleet = await worker_fleet(dev_env.client)
    # Unsandboxed: the sandbox would re-import this test module by name.
    fleet.add(queue, workflows=[RecordOutcomeStandIn], workflow_runner=UnsandboxedWorkflowRunner())
    await fleet.start()
    outcome = testkit.outcome(testkit.fresh_id())
    handle = await dev_env.client.start_workflow(
        RecordOutcomeStandIn.run, outcome, id=f"stand-in-{outcome.ticket_id}", task_queue=queue
    )
    assert await handle.result() is True  # returns after record_outcome succeeded

    resp = await s.stub.GetOutcome(readmodel_pb2.GetOutcomeRequest(ticket_id=outcome.ticket_id))
    assert from_proto(resp.outcome, TicketOutcome) == outcome
    row = ReadModelStore(tmp_path / "var" / "readmodel.db").get(outcome.ticket_id)
    assert row is not None and row.run_id == handle.result_run_id
    code, out = await s.terminate()
    assert code == 0, s.log.read_text()
    assert "worker polling 'ticketflow-projection'" in out


async def test_rebuild_exits_non_zero_when_temporal_is_unreachable(
    tmp_path: Path, dead_temporal: str, store: ReadModelStore
) -> None:
    store.record(testkit.outcome("t-keep"), run_id="r")
    before = table(store)
    url = store.url.sqlalchemy_url.render_as_string(hide_password=False)
    code, _, err = await run_to_exit(
        "rebuild",
        "--connect-timeout",
        "2",
        env={**env_for(tmp_path / "var", dead_temporal), "TICKETFLOW_READMODEL_URL": url},
    )
    assert code == 1
    assert "unreachable" in err and dead_temporal in err
    assert "nothing was changed" in err
    assert table(store) == before
    assert leftovers(store) == []


async def test_a_second_rebuild_exits_non_zero_and_changes_nothing(
    tmp_path: Path, dev_env: WorkflowEnvironment, store: ReadModelStore
) -> None:
    """While a rebuild holds the view's rebuild lock (here: this test, from its own file handle
    or database session), the real `rebuild` process refuses at once, saying why."""
    store.record(testkit.outcome("t-keep"), run_id="r")
    before = table(store)
    url = store.url.sqlalchemy_url.render_as_string(hide_password=False)
    address = dev_env.client.service_client.config.target_host
    with exclusive_rebuild(store):
        code, _, err = await run_to_exit(
            "rebuild",
            env={**env_for(tmp_path / "var", address), "TICKETFLOW_READMODEL_URL": url},
        )
    assert code == 1
    assert "another rebuild of" in err and "is running" in err
    assert "nothing was changed" in err
    assert "Traceback" not in err
    assert table(store) == before


@pytest.mark.parametrize(
    ("env", "args", "says"),
    [
        ({"TICKETFLOW_LOG_LEVEL": "loud"}, ["serve"], "TICKETFLOW_LOG_LEVEL"),
        ({}, ["rebuild", "--concurrency", "0"], "--concurrency"),
        ({"TICKETFLOW_READMODEL_URL": "mysql://h/db"}, ["migrate"], "TICKETFLOW_READMODEL_URL"),
        ({"TICKETFLOW_MIGRATE_ON_START": "maybe"}, ["serve"], "TICKETFLOW_MIGRATE_ON_START"),
    ],
)
async def test_bad_settings_or_arguments_exit_2_and_say_which(
    tmp_path: Path, env: dict[str, str], args: list[str], says: str
) -> None:
    code, _, err = await run_to_exit(
        *args, env={**env_for(tmp_path / "var", "127.0.0.1:7233"), **env}
    )
    assert code == 2
    assert says in err


async def test_a_database_it_cannot_use_stops_it_and_says_rebuild(
    tmp_path: Path, dead_temporal: str
) -> None:
    db = tmp_path / "var" / "readmodel.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a database" * 100)
    code, _, err = await run_to_exit("serve", env=env_for(tmp_path / "var", dead_temporal))
    assert code == 1
    assert str(db) in err and "ticketflow-projection rebuild" in err


async def test_cli_help_names_the_subcommands() -> None:
    code, text, _ = await run_to_exit("--help")
    assert code == 0
    assert "serve" in text and "rebuild" in text and "TICKETFLOW_PROJECTION_ADDRESS" in text
    assert "TICKETFLOW_LOG_LEVEL" in text


# ---- the read model's store: migrate, TICKETFLOW_READMODEL_URL, TICKETFLOW_MIGRATE_ON_START ----


async def test_migrate_creates_the_sqlite_schema_once(tmp_path: Path, dead_temporal: str) -> None:
    env = env_for(tmp_path / "var", dead_temporal)
    code, out, err = await run_to_exit("migrate", env=env)
    assert code == 0, err
    assert "readmodel.db" in out and "upgraded none -> 0001" in out
    code, out, _ = await run_to_exit("migrate", env=env)
    assert code == 0 and "already at revision 0001" in out


def _with_password(url: str) -> str:
    # The suite's server trusts local connections: a password is accepted and never sent.
    return url.replace("postgresql://postgres@", "postgresql://postgres:s3cret-pw@")


async def test_postgresql_needs_migrate_before_serve_and_then_serves(
    tmp_path: Path, dead_temporal: str, postgres_url: str, serve_process
) -> None:
    url = _with_password(postgres_url)
    env = {**env_for(tmp_path / "var", dead_temporal), "TICKETFLOW_READMODEL_URL": url}
    code, out, err = await run_to_exit("serve", env=env)
    assert code == 1
    assert "ticketflow-projection migrate" in err and "TICKETFLOW_MIGRATE_ON_START=true" in err
    assert "s3cret-pw" not in out + err
    code, out, err = await run_to_exit("migrate", env=env)
    assert code == 0, err
    assert "upgraded none -> 0001" in out and "***" in out and "s3cret-pw" not in out + err
    serving = await serve_process(dead_temporal, TICKETFLOW_READMODEL_URL=url)
    response = await serving.stub.ListOutcomes(readmodel_pb2.ListOutcomesRequest(), timeout=30)
    assert list(response.outcomes) == []
    code, out = await serving.terminate()
    assert code == 0 and "s3cret-pw" not in out


async def test_migrate_on_start_true_migrates_postgresql(
    tmp_path: Path, dead_temporal: str, postgres_url: str, serve_process
) -> None:
    serving = await serve_process(
        dead_temporal, TICKETFLOW_READMODEL_URL=postgres_url, TICKETFLOW_MIGRATE_ON_START="true"
    )
    response = await serving.stub.ListOutcomes(readmodel_pb2.ListOutcomesRequest(), timeout=30)
    assert list(response.outcomes) == []


async def test_migrate_says_what_to_do_when_the_database_is_unreachable(
    tmp_path: Path, dead_temporal: str
) -> None:
    port = dead_temporal.rsplit(":", 1)[1]  # nothing listens there either
    env = {
        **env_for(tmp_path / "var", dead_temporal),
        "TICKETFLOW_READMODEL_URL": f"postgresql://u:s3cret-pw@127.0.0.1:{port}/readmodel",
    }
    code, out, err = await run_to_exit("migrate", env=env)
    assert code == 1
    assert "cannot be reached" in err and "TICKETFLOW_READMODEL_URL" in err
    assert "s3cret-pw" not in out + err


async def test_listens_on_host_and_port_not_on_the_address_others_reach(
    tmp_path: Path, dead_temporal: str, serve_process
) -> None:
    # In a container: bind TICKETFLOW_PROJECTION_HOST:PORT, while TICKETFLOW_PROJECTION_ADDRESS
    # is the name the api dials (which need not resolve here).
    port = testkit.free_port()
    s = await serve_process(
        dead_temporal,
        TICKETFLOW_PROJECTION_ADDRESS="projection.invalid:1",
        TICKETFLOW_PROJECTION_HOST="127.0.0.1",
        TICKETFLOW_PROJECTION_PORT=str(port),
    )
    assert s.address == f"127.0.0.1:{port}"
    resp = await s.health.Check(health_pb2.HealthCheckRequest(service=""))
    assert resp.status == health_pb2.HealthCheckResponse.SERVING
    code, _ = await s.terminate()
    assert code == 0
