"""POST /tickets/{id}/cancel: an approver asks an undecided ticket's workflow to stop (issue 12).

The fake workflow does not handle the cancel request (the core worker's turns it into ESCALATED;
tests/test_e2e_cli.py checks that end to end): here the api's rules are checked.
"""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import WorkflowExecutionStatus
from ticketflow.contracts import names
from ticketflow.testkit import eventually_async

from .test_api_tickets import assert_error, submit_waiting


async def test_cancel_an_undecided_ticket(api, helpers, dev_env) -> None:
    ticket_id = await submit_waiting(api, helpers)
    got = await api.post(f"/tickets/{ticket_id}/cancel", headers=helpers.bearer("bob"))
    assert got.status_code == 202, got.text
    assert got.json() == {"ticket_id": ticket_id, "status": "WAITING_APPROVAL", "already": False}
    handle = dev_env.client.get_workflow_handle(names.workflow_id(ticket_id))

    async def cancelled() -> bool:
        desc = await handle.describe()
        assert desc.status == WorkflowExecutionStatus.CANCELED, desc.status
        return True

    await eventually_async(cancelled, what="the workflow cancelled")
    again = await api.post(f"/tickets/{ticket_id}/cancel", headers=helpers.bearer())
    assert_error(again, 409, "cancel_rejected")


async def test_cancel_needs_an_approver_token(api, helpers) -> None:
    ticket_id = await submit_waiting(api, helpers)
    url = f"/tickets/{ticket_id}/cancel"
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        assert_error(await api.post(url, headers=headers), 401, "unauthorized")
    view = (await api.get(f"/tickets/{ticket_id}")).json()
    assert view["status"] == "WAITING_APPROVAL"


async def test_cancel_a_decided_ticket_is_409(api, helpers) -> None:
    ticket_id = await submit_waiting(api, helpers)
    decided = await api.post(
        f"/tickets/{ticket_id}/decision", json={"approved": True}, headers=helpers.bearer()
    )
    assert decided.status_code == 200
    got = await api.post(f"/tickets/{ticket_id}/cancel", headers=helpers.bearer())
    error = assert_error(got, 409, "cancel_rejected")
    assert "too late to cancel" in error["message"]


async def test_cancel_unknown_or_invalid(api, helpers: Any) -> None:
    unknown = await api.post(f"/tickets/nope-{uuid.uuid4().hex}/cancel", headers=helpers.bearer())
    assert_error(unknown, 404, "ticket_not_found")
    invalid = await api.post("/tickets/bad%20id/cancel", headers=helpers.bearer())
    assert_error(invalid, 422)
