"""`GET /tickets` pages: the approval queue oldest first, every ticket once, a total, and page
tokens that cannot be turned into another query.

230 tickets waiting for approval would be slow to make through the ticket workflow, so a tiny
workflow under the contract's name (`TicketWorkflow`, id `ticket-<id>`) just upserts
`TicketStatus=WAITING_APPROVAL` and waits, in a fresh namespace of the session's dev server: the
only tickets there are this test's, whatever the other tests leave running.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio import workflow
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner
from ticketflow.api import Settings
from ticketflow.contracts import DATA_CONVERTER, names
from ticketflow.contracts.search_attributes import ALL, TICKET_STATUS
from ticketflow.testkit import WorkerFleet, eventually_async

WAITING = 230
QUEUE_QUERY = (
    f'WorkflowType="{names.TICKET_WORKFLOW}" AND {names.TICKET_STATUS_SA}="WAITING_APPROVAL" '
    'AND ExecutionStatus="Running"'
)


@workflow.defn(name=names.TICKET_WORKFLOW)
class WaitingTicketWorkflow:
    """A ticket that waits for approval forever: one workflow task, one upsert."""

    @workflow.run
    async def run(self, _: str) -> None:
        workflow.upsert_search_attributes([TICKET_STATUS.value_set("WAITING_APPROVAL")])
        await workflow.wait_condition(lambda: False)


async def _fresh_namespace(dev_env: WorkflowEnvironment) -> Client:
    namespace = f"paging-{uuid.uuid4().hex[:12]}"
    await dev_env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    await dev_env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type.value) for key in ALL
            },
        )
    )
    return await Client.connect(
        dev_env.client.service_client.config.target_host,
        namespace=namespace,
        data_converter=DATA_CONVERTER,
    )


@pytest.fixture(scope="module")
async def queue(dev_env: WorkflowEnvironment) -> AsyncIterator[tuple[Client, list[str]]]:
    """A namespace with WAITING tickets waiting for approval; yields its client and their
    workflow ids in the order they started (ids are random, so not in that order)."""
    client = await _fresh_namespace(dev_env)
    task_queue = f"paging-{uuid.uuid4().hex}"
    async with WorkerFleet(client) as fleet:
        fleet.add(
            task_queue,
            workflows=[WaitingTicketWorkflow],
            workflow_runner=UnsandboxedWorkflowRunner(),
        )
        await fleet.start()
        started = []
        for _ in range(WAITING):  # one by one: each starts after the one before
            wf_id = names.workflow_id(f"q-{uuid.uuid4().hex}")
            await client.start_workflow(names.TICKET_WORKFLOW, "", id=wf_id, task_queue=task_queue)
            started.append(wf_id)

        async def all_waiting() -> bool:
            count = (await client.count_workflows(QUEUE_QUERY)).count
            assert count == WAITING, f"{count} of {WAITING} waiting in visibility"
            return True

        await eventually_async(all_waiting, what="every ticket waiting in visibility")
        yield client, started


async def _pages(http: httpx.AsyncClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    token = None
    while True:
        got = await http.get(
            "/tickets", params={**params, **({"page_token": token} if token else {})}
        )
        assert got.status_code == 200, got.text
        pages.append(got.json())
        token = pages[-1]["next_page_token"]
        if token is None:
            return pages
        assert len(pages) < 10, "the pages do not end"


@pytest.mark.timeout(120)  # 230 workflows started one by one, then visibility catching up
async def test_the_approval_queue_pages_oldest_first_with_a_total(
    queue: tuple[Client, list[str]], settings: Settings, helpers: Any
) -> None:
    client, started = queue
    async with helpers.serve_app(settings.model_copy(update={"namespace": client.namespace})) as h:
        pages = await _pages(h, {"status": "WAITING_APPROVAL", "limit": 100})
        assert [len(p["tickets"]) for p in pages] == [100, 100, 30]
        assert all(p["total"] == WAITING for p in pages)
        shown = [t["workflow_id"] for p in pages for t in p["tickets"]]
        assert shown == started  # each once, oldest first
        assert all(t["status"] == "WAITING_APPROVAL" for p in pages for t in p["tickets"])

        # Every other list: newest first, with Temporal's own token; every ticket once too.
        pages = await _pages(h, {"limit": 100})
        shown = [t["workflow_id"] for p in pages for t in p["tickets"]]
        assert sorted(shown) == sorted(started) and len(shown) == WAITING
        assert [p["total"] for p in pages] == [WAITING] * len(pages)
        times = [t["started_at"] for p in pages for t in p["tickets"]]
        assert times == sorted(times, reverse=True)


async def test_a_page_token_is_only_good_unchanged_for_its_status(
    queue: tuple[Client, list[str]], settings: Settings, helpers: Any
) -> None:
    client, _ = queue
    async with helpers.serve_app(settings.model_copy(update={"namespace": client.namespace})) as h:
        first = await h.get("/tickets", params={"status": "WAITING_APPROVAL", "limit": 100})
        queue_token = first.json()["next_page_token"]
        newest = await h.get("/tickets", params={"limit": 100})
        newest_token = newest.json()["next_page_token"]
        assert queue_token and newest_token

        flipped = queue_token[:-3] + ("A" if queue_token[-3] != "A" else "B") + queue_token[-2:]
        tampered = {
            "flipped": ("WAITING_APPROVAL", flipped),
            "garbage": ("WAITING_APPROVAL", "!!not-base64!!"),
            "json-not-ours": ("WAITING_APPROVAL", base64.urlsafe_b64encode(b'{"a":1}').decode()),
            "other-status": ("RECEIVED", queue_token),
            "no-status": (None, queue_token),
            "to-the-queue": ("WAITING_APPROVAL", newest_token),
            "status-rewritten": ("RESOLVED", _rewritten(queue_token, s="RESOLVED")),
            "position-forged": (None, _rewritten(newest_token, t=base64.b64encode(b"x").decode())),
            "too-long": ("WAITING_APPROVAL", "A" * 5000),
        }
        for case, (status, token) in tampered.items():
            params = {"limit": 100, "page_token": token}
            if status is not None:
                params["status"] = status
            got = await h.get("/tickets", params=params)
            assert got.status_code in (400, 422), (case, got.status_code, got.text)
            error = got.json()["error"]
            assert "page_token" in error["message"], (case, error)


def _rewritten(token: str, **changes: Any) -> str:
    """The token with fields changed, its MAC kept."""
    fields = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    fields.update(changes)
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        ["2020-01-01T00:00:00+00:00", 'ticket-x" OR "1"="1'],
        ["2020-01-01T00:00:00", "ticket-x"],
        ["yesterday", "ticket-x"],
        ["2020-01-01T00:00:00+00:00", "not-a-ticket"],
        "ticket-x",
    ],
)
def test_a_cursor_even_with_a_valid_mac_is_only_a_time_and_a_ticket(cursor: Any) -> None:
    from ticketflow.api._paging import InvalidPageToken, PageTokens, _cursor

    tokens = PageTokens()
    fields = tokens.decode(tokens.encode(None, {"c": cursor}), None)
    with pytest.raises(InvalidPageToken, match="page_token"):
        _cursor(fields)


def test_tokens_hold_across_api_processes_sharing_a_decision_key() -> None:
    from ticketflow.api._paging import InvalidPageToken, PageTokens
    from ticketflow.contracts.decision_signing import DecisionKey

    key = DecisionKey("k1", b"0123456789abcdef0123")
    token = PageTokens([key]).encode(None, {"t": "eA=="})
    assert PageTokens([key]).decode(token, None)["t"] == "eA=="
    with pytest.raises(InvalidPageToken):
        PageTokens([DecisionKey("k2", b"another-secret-0123")]).decode(token, None)
    with pytest.raises(InvalidPageToken):
        PageTokens().decode(token, None)
