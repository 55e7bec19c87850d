"""Intake without the read model, across real processes (docs/architecture.md, "Intake: accepted
without the read model"): with the projection down, a client-chosen ticket_id is still accepted
(202; before: 503), and a re-submission of a ticket whose history Temporal has deleted ends as a
duplicate: no second refund, no second reply, and GET keeps showing the original outcome."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from ticketflow.contracts import DATA_CONVERTER, TicketOutcome, names

from .harness import Stack, eventually, wait_status

# A whole stack; the projection is stopped and started again while tickets run.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def body(ticket_id: str, **over: Any) -> dict[str, Any]:
    return {
        "ticket_id": ticket_id,
        "customer_id": "cust-7",
        "subject": "Refund",
        "body": "please refund my order",
        "order_id": "o-7",
        "requested_refund_cents": 1200,
        **over,
    }


async def _client(stack: Stack) -> Client:
    return await Client.connect(
        stack.env["TICKETFLOW_TEMPORAL_ADDRESS"], data_converter=DATA_CONVERTER
    )


def delete_history(stack: Stack, ticket_id: str) -> None:
    """`temporal workflow delete`, through the WorkflowService RPC; returns once it is gone."""

    async def run() -> None:
        client = await _client(stack)
        await client.workflow_service.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=names.workflow_id(ticket_id)),
            )
        )

    asyncio.run(run())

    def gone() -> bool:
        async def describe() -> bool:
            client = await _client(stack)
            try:
                await client.get_workflow_handle(names.workflow_id(ticket_id)).describe()
            except RPCError as err:
                return err.status == RPCStatusCode.NOT_FOUND
            return False

        return asyncio.run(describe())

    eventually(gone, timeout=60, what=f"ticket {ticket_id}'s history deleted")


def closed_result(stack: Stack, ticket_id: str) -> TicketOutcome | None:
    async def run() -> TicketOutcome | None:
        client = await _client(stack)
        handle = client.get_workflow_handle(names.workflow_id(ticket_id), result_type=TicketOutcome)
        if (await handle.describe()).status != WorkflowExecutionStatus.COMPLETED:
            return None
        return await handle.result()

    return asyncio.run(run())


def effects(stack: Stack, ticket_id: str) -> dict[str, int]:
    """Rows of the ledger and the reply outbox for one ticket: every attempt counts."""
    return {
        table: stack.sql("ledger.db", f"SELECT count(*) FROM {table} WHERE ticket_id=?", ticket_id)[
            0
        ][0]
        for table in ("refunds", "refund_attempts", "replies", "reply_attempts")
    }


def in_read_model(stack: Stack, ticket_id: str) -> bool:
    rows = stack.sql("readmodel.db", "SELECT count(*) FROM outcomes WHERE ticket_id=?", ticket_id)
    return bool(rows and rows[0][0])


def test_resubmission_after_delete_with_the_projection_down_ends_as_a_duplicate(
    stack_factory,
) -> None:
    stack: Stack = stack_factory()
    stack.start_all()
    api = stack.start_api()
    run = uuid.uuid4().hex[:8]
    same_id, other_id = f"intake-same-{run}", f"intake-other-{run}"
    originals = {}
    for tid in (same_id, other_id):
        assert api.post("/tickets", json=body(tid)).status_code == 202
    for tid in (same_id, other_id):
        originals[tid] = wait_status(api, tid, "RESOLVED")
        eventually(lambda t=tid: in_read_model(stack, t), what=f"{tid} in the read model")
        assert effects(stack, tid) == {
            "refunds": 1,
            "refund_attempts": 1,
            "replies": 1,
            "reply_attempts": 1,
        }
        delete_history(stack, tid)

    # The projection up: the synchronous answer, as before (nothing started).
    assert api.post("/tickets", json=body(same_id)).status_code == 200
    assert api.post("/tickets", json=body(other_id, body="other")).status_code == 409

    stack.stop("ticketflow-projection")
    # The projection down: accepted (before this change: 503 read_model_unavailable).
    accepted = api.post("/tickets", json=body(same_id))
    assert accepted.status_code == 202, accepted.text
    other = api.post("/tickets", json=body(other_id, body="Other content, same id."))
    assert other.status_code == 202, other.text

    for tid, same in ((same_id, True), (other_id, False)):
        result = eventually(lambda t=tid: closed_result(stack, t), what=f"{tid}'s second run done")
        assert result.duplicate_of is not None, result
        assert result.duplicate_of.same_content is same
        assert result.duplicate_of.status.value == "RESOLVED"
        assert result.duplicate_of.reply_id == originals[tid]["reply"]["reply_id"]
        # Nothing paid or sent again: not even an attempt.
        assert effects(stack, tid) == {
            "refunds": 1,
            "refund_attempts": 1,
            "replies": 1,
            "reply_attempts": 1,
        }
        # GET will not show the duplicate's empty run: the original is in the read model, down.
        down = api.get(f"/tickets/{tid}")
        assert down.status_code == 503, down.text
        assert "ended RESOLVED in an earlier run" in down.json()["error"]["message"]

    stack.start("ticketflow-projection")
    for tid in (same_id, other_id):
        view = eventually(
            lambda t=tid: (r := api.get(f"/tickets/{t}")).status_code == 200 and r.json(),
            what=f"{tid} answered again",
        )
        assert view["source"] == "read_model"
        assert {k: v for k, v in view.items() if k != "source"} == {
            k: v for k, v in originals[tid].items() if k != "source"
        }
    # And a re-submission now gets the synchronous answer from the read model again.
    assert api.post("/tickets", json=body(same_id)).status_code == 200
    assert api.post("/tickets", json=body(other_id, body="other")).status_code == 409
    api.close()


def test_new_client_chosen_ids_with_the_projection_down_are_accepted(stack_factory) -> None:
    """The issue's figure: N new client-chosen ids while the projection is down (before: all 503)."""
    stack: Stack = stack_factory()
    stack.start_all()
    stack.stop("ticketflow-projection")
    api = stack.start_api()
    n = 20
    codes = [
        api.post(
            "/tickets",
            json=body(f"down-{uuid.uuid4().hex[:10]}", subject="Cannot login", body="password"),
        ).status_code
        for _ in range(n)
    ]
    assert codes.count(503) == 0 and codes.count(202) == n, f"{n} submissions: {codes}"
    api.close()
