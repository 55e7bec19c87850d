"""Fixtures for the api tests: a fake ticket workflow, the app over ASGI, the gRPC server on a real
loopback port, and a fake projection read API (a real gRPC server).

The Temporal dev server is the test kit's session-wide `dev_env`; ports, polling and workers come
from `ticketflow.testkit` too. The fake workflow stays here, registered under the contract names
(`TicketWorkflow`, query `status`, update `decide`): the api is exercised exactly as against the
core worker, without importing it.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import httpx
import pytest
from fastapi import FastAPI
from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner
from ticketflow.api import Settings, create_app
from ticketflow.api.grpc_server import GrpcServer
from ticketflow.api.read_model_client import NoReadModelClient, ReadModelClient
from ticketflow.api.temporal import TicketGateway
from ticketflow.contracts import (
    ActionKind,
    AgentCall,
    Category,
    Classification,
    DecideInput,
    DecideResult,
    Decision,
    Draft,
    ModelTier,
    ReplyKind,
    ReplyReceipt,
    StatusChange,
    TicketFacts,
    TicketInput,
    TicketOutcome,
    TicketState,
    TicketStatus,
    names,
)
from ticketflow.contracts.proto_convert import to_proto
from ticketflow.contracts.search_attributes import TICKET_STATUS
from ticketflow.testkit import TEST_DECISION_KEYS, WorkerFleet
from ticketflow.v1 import readmodel_pb2, readmodel_pb2_grpc, ticket_pb2, ticket_pb2_grpc

APPROVERS = {"alice": "alice-token-0123456789", "bob": "bob-token-9876543210"}
HOLD = "#hold"  # a ticket whose subject says this stays RECEIVED until signalled
RELEASE_SIGNAL = "test_release"
FINISH_SIGNAL = "test_finish"
SLOW_ANSWER = "#slow-answer"  # a decision whose reason says this is applied, then answers on signal
ANSWER_SIGNAL = "test_answer"


@workflow.defn(name=names.TICKET_WORKFLOW)
class FakeTicketWorkflow:
    """RECEIVED -> WAITING_APPROVAL (unless held) -> one decision -> open until `test_finish`.

    It stays open after the decision so that a second decision reaches the validator. Like the
    real workflow, once finished its state carries the outcome it returns.
    """

    @workflow.init
    def __init__(self, inp: TicketInput) -> None:
        self._state = TicketState(
            ticket_id=inp.ticket.ticket_id, status=TicketStatus.RECEIVED, ticket=inp.ticket
        )
        self._released = HOLD not in inp.ticket.subject
        self._finished = False
        self._answer = False

    def _move(self, status: TicketStatus) -> None:
        self._state.status = status
        self._state.history.append(StatusChange(status=status, at=workflow.now()))
        workflow.upsert_search_attributes([TICKET_STATUS.value_set(status.value)])

    @workflow.run
    async def run(self, inp: TicketInput) -> TicketOutcome:
        await workflow.wait_condition(lambda: self._released or self._finished)
        if not self._finished:
            self._state.classification = Classification(
                category=Category.REFUND,
                confidence=0.93,
                action=ActionKind.REFUND,
                refund_cents=inp.ticket.requested_refund_cents,
                model="fake-primary",
                rationale="keyword 'refund'",
            )
            self._state.draft = Draft(text="We are sorry; here is your refund.", model="fake")
            self._state.agent_calls = [
                AgentCall(activity=names.CLASSIFY, tier=ModelTier.PRIMARY, ok=True),
                AgentCall(activity=names.DRAFT_REPLY, tier=ModelTier.PRIMARY, ok=True),
            ]
            self._move(TicketStatus.WAITING_APPROVAL)
            self._state.accepting_decisions = True
        await workflow.wait_condition(lambda: self._finished)
        self._state.accepting_decisions = False
        if self._state.decision is None:
            self._move(TicketStatus.ESCALATED)
        elif self._state.decision.approved:
            self._move(TicketStatus.RESOLVED)
        self._state.reply = ReplyReceipt(
            ticket_id=self._state.ticket_id,
            reply_id=f"reply-{self._state.ticket_id}",
            kind=ReplyKind.RESOLUTION,
            created_at=workflow.now(),
        )
        facts = {name: getattr(self._state, name) for name in TicketFacts.model_fields}
        outcome = TicketOutcome(**facts, finished_at=workflow.now())
        self._state.outcome = outcome
        self._state.side_effects_done = True
        return outcome

    @workflow.query(name=names.STATUS_QUERY)
    def status(self) -> TicketState:
        return self._state

    @workflow.signal(name=RELEASE_SIGNAL)
    def release(self) -> None:
        self._released = True

    @workflow.signal(name=FINISH_SIGNAL)
    def finish(self) -> None:
        self._finished = True

    @workflow.signal(name=ANSWER_SIGNAL)
    def answer(self) -> None:
        self._answer = True

    @workflow.update(name=names.DECIDE_UPDATE)
    async def decide(self, inp: DecideInput) -> DecideResult:
        decision = Decision(
            approved=inp.approved,
            approver=inp.approver,
            reason=inp.reason,
            decided_at=workflow.now(),
        )
        self._state.decision = decision
        self._state.accepting_decisions = False
        self._move(TicketStatus.EXECUTING if inp.approved else TicketStatus.REJECTED)
        if inp.reason and SLOW_ANSWER in inp.reason:
            # Applied, but the answer waits (past the api's deadline) for `test_answer`.
            await workflow.wait_condition(lambda: self._answer)
        return DecideResult(
            ticket_id=self._state.ticket_id, status=self._state.status, decision=decision
        )

    @decide.validator
    def _validate_decide(self, inp: DecideInput) -> None:
        if self._state.decision is not None:
            raise ApplicationError("ticket already decided")
        if not self._state.accepting_decisions:
            raise ApplicationError(
                f"ticket is not waiting for approval (status {self._state.status})"
            )


def fake_workflow_worker(fleet: WorkerFleet, task_queue: str) -> None:
    """Add a worker of `FakeTicketWorkflow` on `task_queue` to `fleet` (start it with the fleet).

    Unsandboxed: the fake workflow is deterministic by construction, and the sandbox would
    re-import the test's modules for every run.
    """
    fleet.add(
        task_queue, workflows=[FakeTicketWorkflow], workflow_runner=UnsandboxedWorkflowRunner()
    )


@asynccontextmanager
async def _running_app(
    settings: Settings,
    read_model_client: ReadModelClient | None,
    real_read_model: bool,
    gateway: TicketGateway | None = None,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    if read_model_client is None and not real_read_model:
        read_model_client = NoReadModelClient()
    app = create_app(settings, gateway=gateway, read_model_client=read_model_client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield app, http


@asynccontextmanager
async def serve_app(
    settings: Settings,
    *,
    read_model_client: ReadModelClient | None = None,
    real_read_model: bool = False,
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, behind an httpx client (no sockets).

    Without `read_model_client` the app has a `NoReadModelClient`: these tests must not depend on
    whatever listens on the default projection address. With `real_read_model` the app makes its
    own, as in production: the gRPC client of `settings.projection_address`.
    """
    async with _running_app(settings, read_model_client, real_read_model) as (_, http):
        yield http


class FakeReadModelService(readmodel_pb2_grpc.ReadModelServiceServicer):
    """The projection's read API with canned outcomes; `hold` makes GetOutcome wait for release."""

    def __init__(self, outcomes: dict[str, TicketOutcome] | None = None) -> None:
        self.outcomes = dict(outcomes or {})
        self.hold = False
        self.asked = asyncio.Event()
        self.release = asyncio.Event()
        self.metadata: list[dict[str, str | bytes]] = []  # each call's invocation metadata

    async def GetOutcome(
        self, request: readmodel_pb2.GetOutcomeRequest, context: grpc.aio.ServicerContext
    ) -> readmodel_pb2.GetOutcomeResponse:
        self.metadata.append(dict(context.invocation_metadata() or ()))
        self.asked.set()
        if self.hold:
            await self.release.wait()
        outcome = self.outcomes.get(request.ticket_id)
        if outcome is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no outcome for {request.ticket_id}")
        response = readmodel_pb2.GetOutcomeResponse(
            outcome=to_proto(outcome, ticket_pb2.TicketOutcome)
        )
        response.recorded_at.FromDatetime(datetime.now(UTC))
        return response


@asynccontextmanager
async def fake_read_model(
    outcomes: dict[str, TicketOutcome] | None = None, *, port: int = 0
) -> AsyncIterator[tuple[str, FakeReadModelService]]:
    """A real `ReadModelService` gRPC server on 127.0.0.1; yields (address, servicer)."""
    server = grpc.aio.server()
    servicer = FakeReadModelService(outcomes)
    readmodel_pb2_grpc.add_ReadModelServiceServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    try:
        yield f"127.0.0.1:{bound}", servicer
    finally:
        servicer.release.set()
        await server.stop(None)


@dataclass
class Both:
    """The api over HTTP (ASGI) and gRPC (a real loopback port), on one service layer."""

    http: httpx.AsyncClient
    grpc: ticket_pb2_grpc.TicketServiceStub
    channel: grpc.aio.Channel
    server: GrpcServer


@asynccontextmanager
async def serve_both(
    settings: Settings,
    *,
    read_model_client: ReadModelClient | None = None,
    real_read_model: bool = False,
    gateway: TicketGateway | None = None,
) -> AsyncIterator[Both]:
    """`serve_app` plus the gRPC server (port 0) sharing the app's `TicketService` (and its
    `gateway`, when given)."""
    async with _running_app(settings, read_model_client, real_read_model, gateway) as (app, http):
        server = GrpcServer(settings.model_copy(update={"grpc_port": 0}), app.state.tickets)
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                yield Both(http, ticket_pb2_grpc.TicketServiceStub(channel), channel, server)
        finally:
            await server.stop(None)


def bearer(name: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {APPROVERS[name]}"}


def submission(**overrides: Any) -> dict[str, Any]:
    """The JSON body of `POST /tickets` (a refund request with a fresh ticket_id); an override of
    None leaves that field out."""
    body: dict[str, Any] = {
        "ticket_id": f"t-{uuid.uuid4().hex}",
        "customer_id": "cust-1",
        "subject": "Refund for a broken kettle",
        "body": "It arrived broken. Please refund.",
        "order_id": "order-1",
        "requested_refund_cents": 2599,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def env_with(**overrides: str) -> dict[str, str]:
    """This environment without any TICKETFLOW_ setting, plus ``TICKETFLOW_<KEY>`` overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_")}
    env.update({f"TICKETFLOW_{k.upper()}": v for k, v in overrides.items()})
    return env


@asynccontextmanager
async def api_process(
    *, nofile: int | None = None, **env: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, str]]:
    """`python -m ticketflow.api` on ephemeral ports; yields (process, http base url, grpc
    address) once it says where it listens, and kills it afterwards if still running.
    `nofile` lowers the process's descriptor limit (RLIMIT_NOFILE, soft and hard)."""

    def limit_descriptors() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ticketflow.api",
        env=env_with(http_port="0", grpc_port="0", **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=limit_descriptors if nofile is not None else None,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            line = (await proc.stdout.readline()).decode()
        match = re.search(
            r"listening on (http://127\.0\.0\.1:\d+) and grpc://(127\.0\.0\.1:\d+)", line
        )
        assert match, line
        yield proc, match.group(1), match.group(2)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# -- fixtures ---------------------------------------------------------------------------------------


class Helpers:
    """What test modules need from here (they cannot import conftest under importlib mode)."""

    APPROVERS = APPROVERS
    HOLD = HOLD
    FINISH_SIGNAL = FINISH_SIGNAL
    SLOW_ANSWER = SLOW_ANSWER
    ANSWER_SIGNAL = ANSWER_SIGNAL
    bearer = staticmethod(bearer)
    submission = staticmethod(submission)
    serve_app = staticmethod(serve_app)
    serve_both = staticmethod(serve_both)
    fake_read_model = staticmethod(fake_read_model)
    fake_workflow_worker = staticmethod(fake_workflow_worker)
    env_with = staticmethod(env_with)
    api_process = staticmethod(api_process)


@pytest.fixture(scope="session")
def helpers() -> type[Helpers]:
    return Helpers


@pytest.fixture(scope="session")
def task_queue() -> str:
    return f"api-test-{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
async def fake_worker(dev_env: WorkflowEnvironment, task_queue: str) -> AsyncIterator[None]:
    """The fake workflow's worker on the session's queue, polling before the first test uses it.

    Session-wide (the test kit's `worker_fleet` is per test), so a fleet of its own.
    """
    async with WorkerFleet(dev_env.client) as fleet:
        fake_workflow_worker(fleet, task_queue)
        await fleet.start()
        yield


@pytest.fixture(scope="session")
def settings(dev_env: WorkflowEnvironment, task_queue: str) -> Settings:
    return Settings(
        temporal_address=dev_env.client.service_client.config.target_host,
        core_queue=task_queue,
        approver_tokens=",".join(f"{n}:{t}" for n, t in APPROVERS.items()),
        decision_keys=TEST_DECISION_KEYS,  # the fake workflow does not verify it
        query_timeout_s=2.0,
        rpc_timeout_s=5.0,
        decide_timeout_s=5.0,
    )


@pytest.fixture
async def api(settings: Settings, fake_worker: None) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(settings) as http:
        yield http
