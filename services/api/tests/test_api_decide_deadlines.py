"""The decision's two Temporal calls, describe and update, each under its own deadline.

A Temporal client stand-in whose calls never answer (they wait on an event nobody sets) lets each
deadline expire on its own; what matters is what the caller is told: an update that found no
worker in time may have been applied (`decision_outcome_unknown`: retry the same request), a
describe that did not answer sent nothing (`unavailable`, Temporal up but slow), and only a failed
health check says "unreachable".
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from ticketflow.api import Settings
from ticketflow.api.errors import DecisionOutcomeUnknown, TemporalUnavailable, Unavailable
from ticketflow.api.temporal import TicketGateway
from ticketflow.contracts import DecideInput, names
from ticketflow.testkit import TEST_DECISION_KEYS

DECISION = DecideInput(approved=True, approver="alice", reason="ok")


class Handle:
    def __init__(
        self,
        *,
        describe_answers: bool,
        update_answers: bool,
        update_raises: Exception | None = None,
    ) -> None:
        self.describe_answers = describe_answers
        self.update_answers = update_answers
        self.update_raises = update_raises
        self.updates: list[dict[str, Any]] = []

    async def describe(self, **_: Any) -> Any:
        if not self.describe_answers:
            await asyncio.Event().wait()
        return SimpleNamespace(status=WorkflowExecutionStatus.RUNNING)

    async def execute_update(self, name: str, arg: Any, **kwargs: Any) -> Any:
        self.updates.append({"name": name, "arg": arg, **kwargs})
        if self.update_raises is not None:
            raise self.update_raises
        if not self.update_answers:
            await asyncio.Event().wait()
        return "decided"


class Client:
    def __init__(self, handle: Handle, *, serving: bool = True) -> None:
        self.handle = handle
        self.serving = serving
        self.service_client = SimpleNamespace(check_health=self.check_health)

    async def check_health(self, **_: Any) -> bool:
        return self.serving

    def get_workflow_handle(self, workflow_id: str) -> Handle:
        assert workflow_id == names.workflow_id("t1")
        return self.handle


def gateway(client: Client) -> TicketGateway:
    settings = Settings(
        rpc_timeout_s=0.05,
        decide_timeout_s=0.05,
        health_timeout_s=0.5,
        decision_keys=TEST_DECISION_KEYS,
    )
    return TicketGateway(settings, client=client)  # type: ignore[arg-type]


async def test_an_update_without_a_worker_may_still_be_applied() -> None:
    client = Client(Handle(describe_answers=True, update_answers=False))
    with pytest.raises(DecisionOutcomeUnknown) as info:
        await gateway(client).decide("t1", DECISION)
    assert info.value.code == "decision_outcome_unknown"
    assert "may have been applied; retry the same request" in info.value.message
    assert info.value.headers["Retry-After"] == "1"
    (update,) = client.handle.updates
    assert update["name"] == names.DECIDE_UPDATE
    assert update["arg"].model_dump(exclude={"key_id", "signature"}) == DECISION.model_dump(
        exclude={"key_id", "signature"}
    )
    assert update["arg"].signature  # signed by the api
    assert update["id"].startswith("decide-")


async def test_a_slow_describe_is_not_reported_as_temporal_unreachable() -> None:
    client = Client(Handle(describe_answers=False, update_answers=True))
    with pytest.raises(Unavailable) as info:
        await gateway(client).decide("t1", DECISION)
    assert not isinstance(info.value, TemporalUnavailable)
    assert info.value.code == "unavailable"
    assert "did not describe ticket 't1'" in info.value.message
    assert "not sent" in info.value.message
    assert client.handle.updates == []


async def test_temporal_going_away_during_the_update_is_outcome_unknown() -> None:
    gone = RPCError("connection reset", RPCStatusCode.UNAVAILABLE, b"")
    client = Client(Handle(describe_answers=True, update_answers=True, update_raises=gone))
    with pytest.raises(DecisionOutcomeUnknown) as info:
        await gateway(client).decide("t1", DECISION)
    assert "may have been applied" in info.value.message
    assert "unreachable" in info.value.message


async def test_a_describe_that_fails_with_temporal_down_is_unreachable() -> None:
    client = Client(Handle(describe_answers=False, update_answers=True), serving=False)
    with pytest.raises(TemporalUnavailable):
        await gateway(client).decide("t1", DECISION)


async def test_the_update_answers() -> None:
    client = Client(Handle(describe_answers=True, update_answers=True))
    assert await gateway(client).decide("t1", DECISION) == "decided"
