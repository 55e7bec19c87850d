"""The HTTP API against a real Temporal dev server and the fake ticket workflow."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from ticketflow.contracts import Ticket, TicketOutcome, TicketStatus, names
from ticketflow.testkit import eventually_async


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


async def submit_waiting(api: httpx.AsyncClient, helpers: Any, **overrides: Any) -> str:
    """Submit a ticket and wait until the fake workflow waits for approval."""
    ticket = helpers.submission(**overrides)
    assert (await api.post("/tickets", json=ticket)).status_code == 202

    async def waiting() -> bool:
        got = await api.get(f"/tickets/{ticket['ticket_id']}")
        assert got.json()["status"] == "WAITING_APPROVAL", got.text
        return True

    await eventually_async(waiting, what="the ticket waiting for approval")
    return ticket["ticket_id"]


async def test_submit_is_idempotent_on_ticket_id_and_content(api, helpers) -> None:
    ticket = helpers.submission()
    first = await api.post("/tickets", json=ticket)
    assert first.status_code == 202, first.text
    assert first.json() == {
        "ticket_id": ticket["ticket_id"],
        "workflow_id": names.workflow_id(ticket["ticket_id"]),
        "status": "RECEIVED",
    }
    assert first.headers["location"] == f"/tickets/{ticket['ticket_id']}"

    again = await api.post("/tickets", json=ticket)
    assert again.status_code == 200, again.text
    assert again.json()["ticket_id"] == ticket["ticket_id"]
    assert again.json()["workflow_id"] == names.workflow_id(ticket["ticket_id"])
    assert again.json()["status"] in {s.value for s in TicketStatus}

    other = await api.post("/tickets", json={**ticket, "body": "Something else entirely."})
    error = assert_error(other, 409, "ticket_conflict")
    assert ticket["ticket_id"] in error["message"]


async def test_same_content_without_optional_fields_is_still_the_same_ticket(api, helpers) -> None:
    ticket = helpers.submission(order_id=None, requested_refund_cents=None)
    assert (await api.post("/tickets", json=ticket)).status_code == 202
    assert (await api.post("/tickets", json=ticket)).status_code == 200
    changed = await api.post("/tickets", json={**ticket, "requested_refund_cents": 1})
    assert_error(changed, 409, "ticket_conflict")


async def test_ticket_id_is_generated_when_absent(api, helpers) -> None:
    ticket = helpers.submission()
    del ticket["ticket_id"]
    one = await api.post("/tickets", json=ticket)
    two = await api.post("/tickets", json=ticket)
    assert one.status_code == two.status_code == 202
    assert re.fullmatch(r"[0-9a-f]{32}", one.json()["ticket_id"])
    assert one.json()["ticket_id"] != two.json()["ticket_id"]


async def test_get_answers_live_state(api, helpers) -> None:
    ticket_id = await submit_waiting(api, helpers)
    view = (await api.get(f"/tickets/{ticket_id}")).json()
    assert view["source"] == "live"
    assert view["ticket_id"] == ticket_id
    assert view["status"] == "WAITING_APPROVAL"
    assert view["accepting_decisions"] is True
    assert view["ticket"]["subject"] == "Refund for a broken kettle"
    assert view["ticket"]["requested_refund_cents"] == 2599
    for key in ("classification", "draft", "decision", "outcome"):
        assert key in view
    assert [h["status"] for h in view["history"]] == ["WAITING_APPROVAL"]


async def test_get_unknown_ticket_is_404(api) -> None:
    assert_error(await api.get(f"/tickets/nope-{uuid.uuid4().hex}"), 404, "ticket_not_found")


async def test_list_by_status_from_visibility(api, helpers) -> None:
    waiting_id = await submit_waiting(api, helpers)
    held = helpers.submission(subject=f"Still thinking {helpers.HOLD}")
    assert (await api.post("/tickets", json=held)).status_code == 202

    async def listed(status: str, ticket_id: str) -> dict[str, Any]:
        got = await api.get("/tickets", params={"status": status, "limit": 200})
        assert got.status_code == 200, got.text
        rows = {t["ticket_id"]: t for t in got.json()["tickets"]}
        assert ticket_id in rows, f"{ticket_id} not yet listed as {status}"
        assert all(t["status"] == status for t in rows.values())
        return rows[ticket_id]

    row = await eventually_async(lambda: listed("WAITING_APPROVAL", waiting_id))
    assert row["workflow_id"] == names.workflow_id(waiting_id)
    assert row["workflow_status"] == "RUNNING"
    assert row["started_at"] and row["closed_at"] is None
    await eventually_async(lambda: listed("RECEIVED", held["ticket_id"]))

    limited = await api.get("/tickets", params={"limit": 1})
    assert limited.status_code == 200
    assert len(limited.json()["tickets"]) == 1


async def test_decision_requires_a_valid_token(api, helpers) -> None:
    ticket_id = await submit_waiting(api, helpers)
    url = f"/tickets/{ticket_id}/decision"
    for headers in (
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Bearer {helpers.APPROVERS['alice']}x"},
        {"Authorization": f"Bearer {helpers.APPROVERS['alice'][:-1]}"},
        {"Authorization": f"Basic {helpers.APPROVERS['alice']}"},
        {"Authorization": "Bearer "},
    ):
        refused = await api.post(url, json={"approved": True}, headers=headers)
        assert_error(refused, 401, "unauthorized")
        assert refused.headers["www-authenticate"].startswith("Bearer")
    still = (await api.get(f"/tickets/{ticket_id}")).json()
    assert still["status"] == "WAITING_APPROVAL" and still["decision"] is None


async def test_decision_records_the_approver_and_refuses_a_second(api, helpers) -> None:
    ticket_id = await submit_waiting(api, helpers)
    url = f"/tickets/{ticket_id}/decision"
    ok = await api.post(
        url, json={"approved": True, "reason": "within policy"}, headers=helpers.bearer("bob")
    )
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["ticket_id"] == ticket_id
    assert body["status"] == "EXECUTING"
    assert body["decision"]["approver"] == "bob"
    assert body["decision"]["reason"] == "within policy"

    view = (await api.get(f"/tickets/{ticket_id}")).json()
    assert view["decision"]["approver"] == "bob" and view["decision"]["approved"] is True
    assert view["accepting_decisions"] is False

    duplicate = await api.post(url, json={"approved": False}, headers=helpers.bearer("alice"))
    error = assert_error(duplicate, 409, "decision_rejected")
    assert "already decided" in error["message"]


async def test_rejection_is_recorded(api, helpers) -> None:
    ticket_id = await submit_waiting(api, helpers)
    got = await api.post(
        f"/tickets/{ticket_id}/decision", json={"approved": False}, headers=helpers.bearer()
    )
    assert got.status_code == 200, got.text
    assert got.json()["status"] == "REJECTED"
    decision = got.json()["decision"]
    assert decision["approved"] is False
    assert decision["approver"] == "alice" and decision["reason"] is None


async def test_decision_on_a_ticket_not_waiting_is_409(api, helpers) -> None:
    held = helpers.submission(subject=f"Not yet {helpers.HOLD}")
    assert (await api.post("/tickets", json=held)).status_code == 202
    got = await api.post(
        f"/tickets/{held['ticket_id']}/decision", json={"approved": True}, headers=helpers.bearer()
    )
    error = assert_error(got, 409, "decision_rejected")
    assert "not waiting" in error["message"]


async def test_decision_on_a_closed_ticket_is_409(api, helpers, dev_env) -> None:
    ticket_id = await submit_waiting(api, helpers)
    handle = dev_env.client.get_workflow_handle(names.workflow_id(ticket_id))
    await handle.signal(helpers.FINISH_SIGNAL)
    await handle.result()
    got = await api.post(
        f"/tickets/{ticket_id}/decision", json={"approved": True}, headers=helpers.bearer()
    )
    error = assert_error(got, 409, "decision_rejected")
    assert "closed" in error["message"]
    # A closed workflow still answers its query while a worker can replay it.
    view = (await api.get(f"/tickets/{ticket_id}")).json()
    assert view["source"] == "live" and view["status"] == "ESCALATED"


async def test_decision_on_an_unknown_ticket_is_404(api, helpers) -> None:
    got = await api.post(
        f"/tickets/nope-{uuid.uuid4().hex}/decision",
        json={"approved": True},
        headers=helpers.bearer(),
    )
    assert_error(got, 404, "ticket_not_found")


async def test_no_worker_answering_is_503_not_500(settings, helpers, dev_env) -> None:
    lonely = settings.model_copy(
        update={"core_queue": f"nobody-{uuid.uuid4().hex}", "query_timeout_s": 0.5}
    )
    async with helpers.serve_app(lonely) as api:
        ticket = helpers.submission()
        assert (await api.post("/tickets", json=ticket)).status_code == 202
        error = assert_error(
            await api.get(f"/tickets/{ticket['ticket_id']}"), 503, "no_live_answer"
        )
        assert "worker" in error["message"]
        assert (await api.get("/readyz")).status_code == 200


class FakeReadModelClient:
    def __init__(self, outcomes: dict[str, TicketOutcome]) -> None:
        self.outcomes = outcomes

    async def get_outcome(self, ticket_id: str) -> TicketOutcome | None:
        return self.outcomes.get(ticket_id)

    async def aclose(self) -> None:
        return None


async def test_read_model_answers_what_temporal_no_longer_knows(
    settings, helpers, fake_worker
) -> None:
    ticket_id = f"archived-{uuid.uuid4().hex}"
    fields = helpers.submission(ticket_id=ticket_id)
    outcome = TicketOutcome(
        ticket_id=ticket_id,
        status=TicketStatus.RESOLVED,
        ticket=Ticket(**fields),
        finished_at=datetime.now(UTC),
    )
    async with helpers.serve_app(
        settings, read_model_client=FakeReadModelClient({ticket_id: outcome})
    ) as api:
        view = await api.get(f"/tickets/{ticket_id}")
        assert view.status_code == 200, view.text
        assert view.json()["source"] == "read_model"
        assert view.json()["status"] == "RESOLVED"
        assert view.json()["outcome"]["ticket_id"] == ticket_id
        late = await api.post(
            f"/tickets/{ticket_id}/decision", json={"approved": True}, headers=helpers.bearer()
        )
        assert_error(late, 409, "decision_rejected")
        assert_error(await api.get("/tickets/unknown-too"), 404, "ticket_not_found")


async def test_health_and_readiness(api) -> None:
    health = await api.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok" and health.json()["version"]
    ready = await api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"


async def test_concurrent_submits_start_exactly_one_workflow(api, helpers) -> None:
    first = helpers.submission()
    second = {**first, "body": "Other content, same ticket_id."}
    bodies = [first, second] * 5
    answers = await asyncio.gather(*(api.post("/tickets", json=b) for b in bodies))
    created = [i for i, r in enumerate(answers) if r.status_code == 202]
    assert len(created) == 1, [r.status_code for r in answers]
    winner = bodies[created[0]]
    for body, answer in zip(bodies, answers, strict=True):
        if answer.status_code == 202:
            continue
        expected = 200 if body is winner else 409
        assert answer.status_code == expected, answer.text


async def visibility_shows(
    client: Any, helpers: Any, ticket_id: str, execution_status: str
) -> None:
    """Wait until Temporal visibility has caught up with the workflow's execution status."""

    async def caught_up() -> bool:
        rows = [
            wf async for wf in client.list_workflows(f'WorkflowId="{names.workflow_id(ticket_id)}"')
        ]
        assert [wf.status.name for wf in rows] == [execution_status], rows
        return True

    await eventually_async(caught_up, what=f"visibility showing {execution_status}")


async def test_list_by_a_waiting_status_leaves_out_dead_workflows(api, helpers, dev_env) -> None:
    dead = await submit_waiting(api, helpers)
    alive = await submit_waiting(api, helpers)
    finished = await submit_waiting(api, helpers)
    client = dev_env.client
    await client.get_workflow_handle(names.workflow_id(dead)).terminate("test")
    await client.get_workflow_handle(names.workflow_id(finished)).signal(helpers.FINISH_SIGNAL)
    await visibility_shows(client, helpers, dead, "TERMINATED")
    await visibility_shows(client, helpers, alive, "RUNNING")
    await visibility_shows(client, helpers, finished, "COMPLETED")

    async def rows(status: str | None) -> dict[str, dict[str, Any]]:
        params: dict[str, Any] = {"limit": 200}
        if status is not None:
            params["status"] = status
        got = await api.get("/tickets", params=params)
        assert got.status_code == 200, got.text
        return {t["ticket_id"]: t for t in got.json()["tickets"]}

    waiting = await rows("WAITING_APPROVAL")
    assert alive in waiting
    # Terminated while waiting: it keeps TicketStatus=WAITING_APPROVAL, but waits for nothing.
    assert dead not in waiting
    # Unfiltered, it is still there, saying how it ended.
    everything = await rows(None)
    assert everything[dead]["status"] == "WAITING_APPROVAL"
    assert everything[dead]["workflow_status"] == "TERMINATED"
    # A terminal status lists the tickets that reached it, closed or not.
    escalated = await rows("ESCALATED")
    assert escalated[finished]["workflow_status"] == "COMPLETED"


async def test_the_same_decision_sent_twice_is_one_decision(api, helpers, dev_env) -> None:
    """A client retrying its decision (say after a 503) gets the first answer again."""
    ticket_id = await submit_waiting(api, helpers)
    url = f"/tickets/{ticket_id}/decision"
    decision = {"approved": True, "reason": "within policy"}
    first = await api.post(url, json=decision, headers=helpers.bearer("alice"))
    assert first.status_code == 200, first.text
    retried = await api.post(url, json=decision, headers=helpers.bearer("alice"))
    assert retried.status_code == 200, retried.text
    assert retried.json() == first.json()  # the same decision, decided_at included

    # Another decision, or the same one by another approver, meets the validator.
    for other, who in (
        ({"approved": False, "reason": "within policy"}, "alice"),
        ({"approved": True}, "alice"),
        (decision, "bob"),
    ):
        refused = await api.post(url, json=other, headers=helpers.bearer(who))
        error = assert_error(refused, 409, "decision_rejected")
        assert "already decided" in error["message"]
    view = (await api.get(f"/tickets/{ticket_id}")).json()
    assert view["decision"] == first.json()["decision"]

    # The ticket finishes; a retry whose first attempt got through still gets its answer.
    handle = dev_env.client.get_workflow_handle(names.workflow_id(ticket_id))
    await handle.signal(helpers.FINISH_SIGNAL)
    await handle.result()
    late_retry = await api.post(url, json=decision, headers=helpers.bearer("alice"))
    assert late_retry.status_code == 200, late_retry.text
    assert late_retry.json() == first.json()
    other = await api.post(url, json={"approved": False}, headers=helpers.bearer("alice"))
    assert "closed" in assert_error(other, 409, "decision_rejected")["message"]


def test_decision_update_ids_tell_decisions_apart() -> None:
    from ticketflow.api.temporal import decision_update_id
    from ticketflow.contracts import DecideInput

    def uid(**fields: Any) -> str:
        return decision_update_id(DecideInput(**{"approved": True, "approver": "a", **fields}))

    assert uid() == uid(reason=None)
    ids = {uid(), uid(reason=""), uid(reason="None"), uid(approved=False), uid(approver="b")}
    assert len(ids) == 5
    assert all(i.startswith("decide-") for i in ids)
