"""Read paths across real processes: live query, then the projection's read model when Temporal
cannot answer (no worker, history deleted, server down), gRPC submission, and rebuild."""

from __future__ import annotations

import subprocess
import time

import grpc
import httpx
import pytest
from ticketflow.runtime.devserver import temporal_binary
from ticketflow.v1 import ticket_pb2, ticket_pb2_grpc

from .harness import BIN, Stack, eventually, submit, wait_status

# Each test starts a whole stack and stops parts of it (Temporal included) while tickets finish.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def start_all(stack: Stack) -> httpx.Client:
    stack.start_all()
    return stack.start_api()


def finish_tickets(api) -> list[dict]:
    ids = [
        submit(api, subject="Cannot login", body="password")["ticket_id"],
        submit(api, subject="refund", body="refund", requested_refund_cents=1200)["ticket_id"],
    ]
    return [wait_status(api, tid, "RESOLVED") for tid in ids]


def from_read_model(api, ticket_id: str) -> dict | None:
    r = api.get(f"/tickets/{ticket_id}")
    return r.json() if r.status_code == 200 and r.json()["source"] == "read_model" else None


def without_source(view: dict) -> dict:
    return {k: v for k, v in view.items() if k != "source"}


def test_finished_ticket_answers_from_read_model_without_worker_and_after_delete(
    stack_factory,
) -> None:
    stack = stack_factory()
    api = start_all(stack)
    live = finish_tickets(api)
    assert all(v["source"] == "live" for v in live)

    # No core worker: nobody can replay the workflow for a query; the read model answers.
    stack.stop("ticketflow-core-worker")
    for before in live:
        after = eventually(
            lambda b=before: from_read_model(api, b["ticket_id"]), what="a read-model answer"
        )
        assert without_source(after) == without_source(before)

    # History deleted from Temporal: NOT_FOUND there, the read model still answers.
    stack.start("ticketflow-core-worker")
    tid = live[0]["ticket_id"]
    deleted = subprocess.run(
        [
            temporal_binary(),
            "workflow",
            "delete",
            "--yes",
            "--workflow-id",
            f"ticket-{tid}",
            "--address",
            stack.env["TICKETFLOW_TEMPORAL_ADDRESS"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    gone = eventually(
        lambda: from_read_model(api, tid), what="the deleted ticket from the read model"
    )
    assert without_source(gone) == without_source(live[0])
    api.close()


def test_with_temporal_down_finished_tickets_still_answer_and_readyz_is_503(stack_factory) -> None:
    stack = stack_factory()
    api = start_all(stack)
    live = finish_tickets(api)
    stack.stop("temporal")
    eventually(lambda: api.get("/readyz").status_code == 503, what="readyz 503")
    for before in live:
        r = api.get(f"/tickets/{before['ticket_id']}")
        assert r.status_code == 200, r.text
        assert r.json()["source"] == "read_model"
        assert without_source(r.json()) == without_source(before)
    unknown = api.get("/tickets/never-submitted")
    assert unknown.status_code in (404, 503), unknown.text
    assert unknown.json()["error"]["message"]
    api.close()


def test_grpc_submit_and_get_share_tickets_with_http(stack_factory) -> None:
    stack = stack_factory()
    api = start_all(stack)
    with grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}") as channel:
        stub = ticket_pb2_grpc.TicketServiceStub(channel)
        req = ticket_pb2.SubmitTicketRequest(
            ticket_id="grpc-e2e-1", customer_id="c1", subject="Cannot login", body="password"
        )
        resp = stub.SubmitTicket(req, timeout=30)
        assert resp.created and resp.workflow_id == "ticket-grpc-e2e-1"
        again = stub.SubmitTicket(req, timeout=30)
        assert again.ticket_id == "grpc-e2e-1" and not again.created

        with pytest.raises(grpc.RpcError) as exc:
            stub.SubmitTicket(
                ticket_pb2.SubmitTicketRequest(
                    ticket_id="grpc-e2e-1", customer_id="c1", subject="other", body="other"
                ),
                timeout=30,
            )
        assert exc.value.code() == grpc.StatusCode.ALREADY_EXISTS

        for bad in [
            ticket_pb2.SubmitTicketRequest(customer_id="", subject="s", body="b"),
            ticket_pb2.SubmitTicketRequest(
                ticket_id="bad id!", customer_id="c", subject="s", body="b"
            ),
            ticket_pb2.SubmitTicketRequest(
                customer_id="c", subject="s", body="b", requested_refund_cents=-5
            ),
        ]:
            with pytest.raises(grpc.RpcError) as exc:
                stub.SubmitTicket(bad, timeout=30)
            assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert exc.value.details()

        # The same ticket over HTTP: 200 with the existing ticket.
        r = api.post(
            "/tickets",
            json={
                "ticket_id": "grpc-e2e-1",
                "customer_id": "c1",
                "subject": "Cannot login",
                "body": "password",
            },
        )
        assert r.status_code == 200, r.text
        wait_status(api, "grpc-e2e-1", "RESOLVED")
        got = stub.GetTicket(ticket_pb2.GetTicketRequest(ticket_id="grpc-e2e-1"), timeout=30)
        assert got.status == ticket_pb2.TICKET_STATUS_RESOLVED
        with pytest.raises(grpc.RpcError) as exc:
            stub.GetTicket(ticket_pb2.GetTicketRequest(ticket_id="nope"), timeout=30)
        assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    api.close()


def test_rebuild_after_deleting_the_read_model_reproduces_every_outcome(stack_factory) -> None:
    stack = stack_factory()
    api = start_all(stack)
    finish_tickets(api)
    tid = submit(api, subject="refund", body="refund", requested_refund_cents=99_000)["ticket_id"]
    wait_status(api, tid, "WAITING_APPROVAL")
    r = api.post(
        f"/tickets/{tid}/decision",
        json={"approved": False},
        headers={"Authorization": "Bearer tok-alice-0123456789"},
    )
    assert r.status_code == 200
    wait_status(api, tid, "REJECTED")

    query = "SELECT ticket_id, status, outcome_json FROM outcomes ORDER BY ticket_id"
    before = stack.sql("readmodel.db", query)
    assert len(before) == 3

    stack.stop("ticketflow-projection")
    for suffix in ("", "-wal", "-shm"):
        (stack.data_dir / f"readmodel.db{suffix}").unlink(missing_ok=True)
    started = time.monotonic()
    out = subprocess.run(
        [str(BIN / "ticketflow-projection"), "rebuild"],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "rebuild: 3 ticket(s) rebuilt from Temporal" in out.stdout, out.stdout
    assert stack.sql("readmodel.db", query) == before
    print(f"rebuild of 3 tickets took {time.monotonic() - started:.1f}s:\n{out.stdout}")
    api.close()
