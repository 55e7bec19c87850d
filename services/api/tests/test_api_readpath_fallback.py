"""The two read paths of `GET /tickets/{id}` and `GetTicket`: the live query, then the read model.

The read model here is a real `ReadModelService` gRPC server on 127.0.0.1 with canned outcomes,
reached through the api's own client (`GrpcReadModelClient`, made by `create_app` from
`projection_address`, as in production).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from ticketflow.api import Settings
from ticketflow.api.errors import ReadModelUnavailable
from ticketflow.api.grpc_server import ERROR_CODE_KEY
from ticketflow.api.read_model_client import GrpcReadModelClient
from ticketflow.contracts import (
    Classification,
    Decision,
    Ticket,
    TicketOutcome,
    TicketStatus,
    names,
)
from ticketflow.testkit import eventually_async, free_port
from ticketflow.v1 import ticket_pb2

Code = grpc.StatusCode


def outcome_for(ticket_id: str, helpers: Any) -> TicketOutcome:
    now = datetime.now(UTC)
    return TicketOutcome(
        ticket_id=ticket_id,
        status=TicketStatus.RESOLVED,
        ticket=Ticket(**helpers.submission(ticket_id=ticket_id), submitted_at=now),
        classification=Classification(category="refund", confidence=0.95, model="mock-primary"),
        decision=Decision(approved=True, approver="policy", auto=True, decided_at=now),
        finished_at=now,
    )


def temporal_down(settings: Settings, **update: Any) -> Settings:
    """`settings` pointing at a closed Temporal port."""
    return settings.model_copy(
        update={
            "temporal_address": f"127.0.0.1:{free_port()}",
            "health_timeout_s": 0.5,
            "query_timeout_s": 1.0,
            **update,
        }
    )


def get(ticket_id: str) -> ticket_pb2.GetTicketRequest:
    return ticket_pb2.GetTicketRequest(ticket_id=ticket_id)


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def error_code(err: grpc.aio.AioRpcError) -> str | None:
    return dict(err.trailing_metadata() or ()).get(ERROR_CODE_KEY)  # type: ignore[arg-type]


def without_source(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k != "source"}


# -- the read model answers ------------------------------------------------------------------------


async def test_readpath_not_found_in_temporal_falls_back_to_the_read_model(
    settings, fake_worker, helpers
) -> None:
    ticket_id = f"archived-{uuid.uuid4().hex}"
    outcome = outcome_for(ticket_id, helpers)
    async with helpers.fake_read_model({ticket_id: outcome}) as (address, _):
        with_rm = settings.model_copy(update={"projection_address": address})
        async with helpers.serve_both(with_rm, real_read_model=True) as both:
            got = await both.http.get(f"/tickets/{ticket_id}")
            assert got.status_code == 200, got.text
            view = got.json()
            assert view["source"] == "read_model"
            assert view["status"] == "RESOLVED"
            assert view["accepting_decisions"] is False and view["side_effects_done"] is True
            assert TicketOutcome.model_validate(view["outcome"]) == outcome
            assert view["classification"]["confidence"] == 0.95

            answer = await both.grpc.GetTicket(get(ticket_id))
            assert answer.source == ticket_pb2.SOURCE_READ_MODEL
            assert answer.status == ticket_pb2.TICKET_STATUS_RESOLVED
            assert answer.outcome.ticket_id == ticket_id
            assert answer.side_effects_done is True

            # Unknown to both: 404 / NOT_FOUND.
            unknown = f"unknown-{uuid.uuid4().hex}"
            missing = await both.http.get(f"/tickets/{unknown}")
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "ticket_not_found"
            err = await rpc_error(both.grpc.GetTicket(get(unknown)))
            assert err.code() == Code.NOT_FOUND

            # A decision on a finished ticket is refused as such, not as unknown.
            late = await both.http.post(
                f"/tickets/{ticket_id}/decision", json={"approved": True}, headers=helpers.bearer()
            )
            assert late.status_code == 409
            assert "finished" in late.json()["error"]["message"]


async def test_readpath_temporal_unreachable_falls_back_to_the_read_model(
    settings, helpers
) -> None:
    ticket_id = f"archived-{uuid.uuid4().hex}"
    async with helpers.fake_read_model({ticket_id: outcome_for(ticket_id, helpers)}) as (
        address,
        _,
    ):
        down = temporal_down(settings, projection_address=address)
        async with helpers.serve_both(down, real_read_model=True) as both:
            got = await both.http.get(f"/tickets/{ticket_id}")
            assert got.status_code == 200, got.text
            assert got.json()["source"] == "read_model"
            answer = await both.grpc.GetTicket(get(ticket_id))
            assert answer.source == ticket_pb2.SOURCE_READ_MODEL

            # Not in the read model and Temporal cannot say: 503, never a guessed 404.
            unknown = await both.http.get("/tickets/not-recorded")
            assert unknown.status_code == 503, unknown.text
            assert unknown.json()["error"]["code"] == "temporal_unavailable"
            err = await rpc_error(both.grpc.GetTicket(get("not-recorded")))
            assert err.code() == Code.UNAVAILABLE
            assert error_code(err) == "temporal_unavailable"


# -- neither answers -------------------------------------------------------------------------------


async def test_readpath_both_down_is_503_with_both_reasons(settings, helpers) -> None:
    rm_address = f"127.0.0.1:{free_port()}"
    down = temporal_down(settings, projection_address=rm_address)
    async with helpers.serve_both(down, real_read_model=True) as both:
        got = await both.http.get("/tickets/anything")
        assert got.status_code == 503, got.text
        error = got.json()["error"]
        assert error["code"] == "temporal_unavailable"
        assert f"Temporal at {down.temporal_address} is unreachable" in error["message"]
        assert f"read model at {rm_address} is unreachable" in error["message"]
        assert {"read_model"} <= {k for d in error["details"] for k in d}

        err = await rpc_error(both.grpc.GetTicket(get("anything")))
        assert err.code() == Code.UNAVAILABLE
        assert f"read model at {rm_address}" in (err.details() or "")


async def test_readpath_unknown_to_temporal_with_the_read_model_down_is_503(
    settings, fake_worker, helpers
) -> None:
    rm_address = f"127.0.0.1:{free_port()}"
    with_rm = settings.model_copy(update={"projection_address": rm_address})
    async with helpers.serve_both(with_rm, real_read_model=True) as both:
        ticket_id = f"maybe-archived-{uuid.uuid4().hex}"
        got = await both.http.get(f"/tickets/{ticket_id}")
        assert got.status_code == 503, got.text
        error = got.json()["error"]
        assert error["code"] == "read_model_unavailable"
        assert "not in Temporal" in error["message"] and "try later" in error["message"].lower()
        err = await rpc_error(both.grpc.GetTicket(get(ticket_id)))
        assert err.code() == Code.UNAVAILABLE
        assert error_code(err) == "read_model_unavailable"


async def test_readpath_running_ticket_without_a_worker_is_503_try_later(settings, helpers) -> None:
    async with helpers.fake_read_model() as (address, read_model):
        lonely = settings.model_copy(
            update={
                "core_queue": f"nobody-{uuid.uuid4().hex}",
                "query_timeout_s": 0.5,
                "projection_address": address,
            }
        )
        async with helpers.serve_both(lonely, real_read_model=True) as both:
            ticket = helpers.submission()
            assert (await both.http.post("/tickets", json=ticket)).status_code == 202
            got = await both.http.get(f"/tickets/{ticket['ticket_id']}")
            assert got.status_code == 503, got.text
            error = got.json()["error"]
            assert error["code"] == "no_live_answer"
            assert "no worker answered" in error["message"] and "try later" in error["message"]
            assert read_model.asked.is_set(), "the read model must have been asked first"

            err = await rpc_error(both.grpc.GetTicket(get(ticket["ticket_id"])))
            assert err.code() == Code.UNAVAILABLE
            assert error_code(err) == "no_live_answer"


# -- a finished ticket answers the same from both sources ------------------------------------------


async def test_readpath_finished_ticket_is_the_same_live_and_from_the_read_model(
    settings, dev_env, worker_fleet, helpers
) -> None:
    queue = f"readpath-{uuid.uuid4().hex}"
    own = settings.model_copy(update={"core_queue": queue, "query_timeout_s": 1.0})
    ticket = helpers.submission()
    ticket_id = ticket["ticket_id"]
    handle = dev_env.client.get_workflow_handle(
        names.workflow_id(ticket_id), result_type=TicketOutcome
    )

    async with helpers.serve_both(own) as both:
        fleet = await worker_fleet(dev_env.client)
        helpers.fake_workflow_worker(fleet, queue)
        async with fleet:
            assert (await both.http.post("/tickets", json=ticket)).status_code == 202

            async def waiting() -> bool:
                got = await both.http.get(f"/tickets/{ticket_id}")
                assert got.json()["status"] == "WAITING_APPROVAL", got.text
                return True

            await eventually_async(waiting, what="the ticket waiting for approval")
            decided = await both.http.post(
                f"/tickets/{ticket_id}/decision",
                json={"approved": True, "reason": "ok"},
                headers=helpers.bearer(),
            )
            assert decided.status_code == 200, decided.text
            await handle.signal(helpers.FINISH_SIGNAL)
            outcome = await handle.result()

            live = (await both.http.get(f"/tickets/{ticket_id}")).json()
            live_grpc = await both.grpc.GetTicket(get(ticket_id))
        # The worker is gone now: the closed workflow cannot be replayed to answer a query.

        assert live["source"] == "live" and live["status"] == "RESOLVED"
        assert live["outcome"] is not None and live["decision"]["approver"] == "alice"
        assert live_grpc.source == ticket_pb2.SOURCE_LIVE

    async with helpers.fake_read_model({ticket_id: outcome}) as (address, _):
        # Worker down: NoLiveAnswer, then the read model.
        worker_down = own.model_copy(update={"projection_address": address})
        # Temporal unreachable: the read model directly.
        temporal_gone = temporal_down(settings, projection_address=address)
        for case in (worker_down, temporal_gone):
            async with helpers.serve_both(case, real_read_model=True) as both:
                recorded = await both.http.get(f"/tickets/{ticket_id}")
                assert recorded.status_code == 200, recorded.text
                assert recorded.json()["source"] == "read_model"
                assert without_source(recorded.json()) == without_source(live)

                recorded_grpc = await both.grpc.GetTicket(get(ticket_id))
                assert recorded_grpc.source == ticket_pb2.SOURCE_READ_MODEL
                recorded_grpc.ClearField("source")
                live_grpc.ClearField("source")
                assert recorded_grpc == live_grpc


# -- the read model client -------------------------------------------------------------------------


async def test_readpath_client_answers_none_unavailable_and_recovers(helpers) -> None:
    port = free_port()
    ticket_id = f"t-{uuid.uuid4().hex}"
    client = GrpcReadModelClient(f"127.0.0.1:{port}", timeout_s=1.0)
    try:
        with pytest.raises(ReadModelUnavailable) as info:
            await client.get_outcome(ticket_id)
        assert f"127.0.0.1:{port} is unreachable" in info.value.message

        outcome = outcome_for(ticket_id, helpers)
        async with helpers.fake_read_model({ticket_id: outcome}, port=port):

            async def answers() -> bool:
                try:
                    assert await client.get_outcome(ticket_id) == outcome
                except ReadModelUnavailable as exc:
                    raise AssertionError(exc.message) from exc
                return True

            # The channel reconnects by itself, with a short backoff.
            await eventually_async(answers, what="the read model answering again")
            assert await client.get_outcome("not-there") is None
    finally:
        await client.aclose()


async def test_readpath_client_treats_a_refusal_as_unavailable(helpers) -> None:
    server = grpc.aio.server()  # serves nothing: every call is UNIMPLEMENTED
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    client = GrpcReadModelClient(f"127.0.0.1:{port}", timeout_s=1.0)
    try:
        with pytest.raises(ReadModelUnavailable) as info:
            await client.get_outcome("some-ticket")
        assert "UNIMPLEMENTED" in str(info.value.details)
    finally:
        await client.aclose()
        await server.stop(None)
