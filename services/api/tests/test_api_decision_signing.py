"""The api vouches for every decision it sends: the `decide` update carries an HMAC-SHA256 over the
ticket id and the decision, with the first key of TICKETFLOW_DECISION_KEYS (the core worker
refuses any other; docs/architecture.md, "The ticket workflow")."""

from __future__ import annotations

import base64
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowExecutionStatus
from ticketflow.api import Settings
from ticketflow.api.errors import DecisionsNotConfigured
from ticketflow.api.temporal import TicketGateway, decision_update_id
from ticketflow.contracts import DecideInput, names
from ticketflow.contracts.decision_signing import DecisionKey, DecisionVerifier
from ticketflow.runtime.settings import settings_problems

NEW = DecisionKey("k2", b"n" * 32)
OLD = DecisionKey("k1", b"o" * 32)
DECISION = DecideInput(approved=True, approver="alice", reason="ok")


def entry(key: DecisionKey) -> str:
    return f"{key.key_id}:{base64.b64encode(key.secret).decode()}"


class Handle:
    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []

    async def describe(self, **_: Any) -> Any:
        return SimpleNamespace(status=WorkflowExecutionStatus.RUNNING)

    async def execute_update(self, name: str, arg: Any, **kwargs: Any) -> Any:
        self.updates.append({"name": name, "arg": arg, **kwargs})
        return "decided"


class Client:
    def __init__(self) -> None:
        self.handle = Handle()

    def get_workflow_handle(self, workflow_id: str) -> Handle:
        assert workflow_id == names.workflow_id("t1")
        return self.handle


async def sent(settings: Settings) -> dict[str, Any]:
    client = Client()
    gateway = TicketGateway(settings, client=client)  # type: ignore[arg-type]
    assert await gateway.decide("t1", DECISION) == "decided"
    (update,) = client.handle.updates
    assert update["name"] == names.DECIDE_UPDATE
    return update


async def test_the_decision_is_signed_with_the_first_key() -> None:
    update = await sent(Settings(decision_keys=f"{entry(NEW)},{entry(OLD)}"))
    arg = update["arg"]
    assert arg.key_id == "k2" and arg.signature
    assert (arg.approved, arg.approver, arg.reason) == (True, "alice", "ok")
    assert DecisionVerifier([NEW]).problem("t1", arg) is None
    assert DecisionVerifier([NEW]).problem("t2", arg) is not None  # bound to the ticket
    # The update id (Temporal's dedup of a retried decision) does not depend on the key.
    assert update["id"] == decision_update_id(DECISION)


async def test_without_keys_nothing_is_sent_and_the_answer_names_the_setting() -> None:
    client = Client()
    gateway = TicketGateway(Settings(), client=client)  # type: ignore[arg-type]
    with pytest.raises(DecisionsNotConfigured) as refused:
        await gateway.decide("t1", DECISION)
    assert refused.value.status == 503
    assert "TICKETFLOW_DECISION_KEYS" in str(refused.value)
    assert client.handle.updates == []  # fails closed: nothing reached Temporal
    # What a worker would say to an unsigned decision, had one been sent anyway.
    unsigned = DECISION.model_copy()
    assert (
        DecisionVerifier([NEW]).problem("t1", unsigned) == "the decision is not signed by the api"
    )


def test_keys_from_the_environment_and_a_bad_one_named_not_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKETFLOW_DECISION_KEYS", entry(NEW))
    assert [k.key_id for k in Settings().keys_for_decisions] == ["k2"]
    monkeypatch.setenv("TICKETFLOW_DECISION_KEYS", "k2:c2hvcnQ=")
    with pytest.raises(ValidationError) as err:
        Settings()
    # What load_settings prints (exit code 2): the variable named, the value never.
    problems = "\n".join(settings_problems(err.value))
    assert "TICKETFLOW_DECISION_KEYS is malformed" in problems
    assert "c2hvcnQ=" not in problems
