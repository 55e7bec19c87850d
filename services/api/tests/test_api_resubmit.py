"""Re-submitting a ticket_id whose workflow Temporal no longer has (retention, `workflow delete`).

Temporal's REJECT_DUPLICATE only covers workflows it still retains; a forgotten one would be started
a second time. So a client-chosen ticket_id is first looked up in the read model: same content
answers the recorded ticket (200 / created=false), other content is a conflict (409 /
ALREADY_EXISTS). With the read model unreachable, a ticket Temporal retains is answered by
Temporal, and any other is accepted (202) with `intake_check` set: its workflow asks the core
worker's ledger first (docs/architecture.md, "Intake: accepted without the read model").
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from ticketflow.api.grpc_server import ERROR_CODE_KEY
from ticketflow.contracts import (
    DATA_CONVERTER,
    Ticket,
    TicketInput,
    TicketOutcome,
    TicketStatus,
    names,
)
from ticketflow.testkit import free_port
from ticketflow.v1 import ticket_pb2

Code = grpc.StatusCode


def as_proto(ticket: dict[str, Any]) -> ticket_pb2.SubmitTicketRequest:
    return ticket_pb2.SubmitTicketRequest(**ticket)


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def error_code(err: grpc.aio.AioRpcError) -> str | None:
    return dict(err.trailing_metadata() or ()).get(ERROR_CODE_KEY)  # type: ignore[arg-type]


async def assert_not_in_temporal(client: Client, ticket_id: str) -> None:
    """Temporal has no workflow of this ticket: nothing was (re)started."""
    with pytest.raises(RPCError) as info:
        await client.get_workflow_handle(names.workflow_id(ticket_id)).describe()
    assert info.value.status == RPCStatusCode.NOT_FOUND


async def started_input(client: Client, ticket_id: str) -> TicketInput:
    """The input the ticket's workflow was started with, as Temporal recorded it."""
    history = await client.get_workflow_handle(names.workflow_id(ticket_id)).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [inp] = await DATA_CONVERTER.decode(started.input.payloads, [TicketInput])
    assert isinstance(inp, TicketInput)
    return inp


async def test_resubmit_of_a_ticket_only_the_read_model_knows(
    settings, fake_worker, dev_env, helpers
) -> None:
    # What a ticket looks like after `temporal workflow delete` or retention: recorded by the
    # projection, unknown to Temporal. (A real delete takes the dev server about 30 s.)
    ticket = helpers.submission()
    ticket_id = ticket["ticket_id"]
    recorded = TicketOutcome(
        ticket_id=ticket_id,
        status=TicketStatus.REJECTED,
        ticket=Ticket(**ticket, submitted_at=datetime.now(UTC)),
        finished_at=datetime.now(UTC),
    )
    other = {**ticket, "body": "Something else entirely."}
    async with helpers.fake_read_model({ticket_id: recorded}) as (address, _):
        with_rm = settings.model_copy(update={"projection_address": address})
        async with helpers.serve_both(with_rm, real_read_model=True) as both:
            same = await both.http.post("/tickets", json=ticket)
            assert same.status_code == 200, same.text
            assert same.json() == {
                "ticket_id": ticket_id,
                "workflow_id": names.workflow_id(ticket_id),
                "status": "REJECTED",
            }
            assert same.headers["location"] == f"/tickets/{ticket_id}"
            conflict = await both.http.post("/tickets", json=other)
            assert conflict.status_code == 409, conflict.text
            assert conflict.json()["error"]["code"] == "ticket_conflict"

            again = await both.grpc.SubmitTicket(as_proto(ticket))
            assert again.created is False
            assert again.status == ticket_pb2.TICKET_STATUS_REJECTED
            err = await rpc_error(both.grpc.SubmitTicket(as_proto(other)))
            assert err.code() == Code.ALREADY_EXISTS
            assert error_code(err) == "ticket_conflict"

    await assert_not_in_temporal(dev_env.client, ticket_id)


async def test_resubmit_with_the_read_model_down(settings, fake_worker, dev_env, helpers) -> None:
    rm_address = f"127.0.0.1:{free_port()}"
    rm_down = settings.model_copy(update={"projection_address": rm_address})

    # A ticket Temporal retains: started while the read model was there (here: none at all).
    retained = helpers.submission()
    async with helpers.serve_app(settings) as api:
        assert (await api.post("/tickets", json=retained)).status_code == 202

    async with helpers.serve_both(rm_down, real_read_model=True) as both:
        # A new client-chosen ticket_id: it might have finished and been forgotten. Accepted
        # all the same (before: 503 read_model_unavailable), with the check owed by the
        # workflow: its input says so, and the core worker asks its own ledger first.
        fresh = helpers.submission()
        accepted = await both.http.post("/tickets", json=fresh)
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["status"] == "RECEIVED"
        assert (await started_input(dev_env.client, fresh["ticket_id"])).intake_check is True
        by_grpc = helpers.submission()
        reply = await both.grpc.SubmitTicket(as_proto(by_grpc))
        assert reply.created is True
        assert (await started_input(dev_env.client, by_grpc["ticket_id"])).intake_check is True

        # A generated ticket_id is new by construction: no lookup needed.
        anonymous = {k: v for k, v in helpers.submission().items() if k != "ticket_id"}
        assert (await both.http.post("/tickets", json=anonymous)).status_code == 202

        # A ticket Temporal still retains is answered by Temporal.
        again = await both.http.post("/tickets", json=retained)
        assert again.status_code == 200, again.text
        assert again.json()["ticket_id"] == retained["ticket_id"]
        other = await both.http.post("/tickets", json={**retained, "body": "Other content."})
        assert other.status_code == 409, other.text
        assert (await both.grpc.SubmitTicket(as_proto(retained))).created is False


async def test_resubmit_with_read_model_and_temporal_down_names_both(settings, helpers) -> None:
    rm_address = f"127.0.0.1:{free_port()}"
    down = settings.model_copy(
        update={
            "temporal_address": f"127.0.0.1:{free_port()}",
            "projection_address": rm_address,
            "health_timeout_s": 0.5,
        }
    )
    async with helpers.serve_both(down, real_read_model=True) as both:
        got = await both.http.post("/tickets", json=helpers.submission())
        assert got.status_code == 503, got.text
        error = got.json()["error"]
        assert error["code"] == "temporal_unavailable"
        assert f"read model at {rm_address} is unreachable" in error["message"]


async def test_a_new_ticket_id_asks_the_read_model_and_starts(
    settings, fake_worker, dev_env, helpers
) -> None:
    async with helpers.fake_read_model() as (address, projection):
        with_rm = settings.model_copy(update={"projection_address": address})
        async with helpers.serve_app(with_rm, real_read_model=True) as api:
            ticket = helpers.submission(ticket_id=f"new-{uuid.uuid4().hex}")
            assert (await api.post("/tickets", json=ticket)).status_code == 202
            assert projection.asked.is_set()
            # The read model answered "none": nothing is owed, no extra step in the workflow.
            assert (await started_input(dev_env.client, ticket["ticket_id"])).intake_check is False
            # Retained by Temporal (not yet in the read model): Temporal's answer.
            assert (await api.post("/tickets", json=ticket)).status_code == 200
