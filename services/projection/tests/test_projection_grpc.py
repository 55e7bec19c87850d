"""The gRPC read API over a real grpc.aio channel on 127.0.0.1: get, list, paging, errors, health,
reflection."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from ticketflow import testkit
from ticketflow.contracts.models import Category, TicketOutcome, TicketStatus
from ticketflow.contracts.proto_convert import from_proto
from ticketflow.projection.grpc_api import ReadApiServer
from ticketflow.projection.paging import encode_token
from ticketflow.projection.store import OutcomeFilter, ReadModelStore, StoredOutcome
from ticketflow.v1 import readmodel_pb2, ticket_pb2


def ts(dt) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(dt)
    return t


async def expect_error(call, code: grpc.StatusCode, *needles: str) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    for needle in needles:
        assert needle in info.value.details()
    return info.value.details()


# ---- GetOutcome -------------------------------------------------------------------------------


async def test_get_outcome(read_api, store: ReadModelStore) -> None:
    outcome = testkit.outcome("t-42", category=Category.REFUND)
    store.record(outcome, run_id="run-1")
    resp = await read_api.stub.GetOutcome(readmodel_pb2.GetOutcomeRequest(ticket_id="t-42"))
    assert from_proto(resp.outcome, TicketOutcome) == outcome
    assert resp.outcome.status == ticket_pb2.TICKET_STATUS_RESOLVED
    assert resp.outcome.classification.category == ticket_pb2.CATEGORY_REFUND
    assert resp.recorded_at.ToDatetime().year >= 2026


async def test_get_unknown_is_not_found(read_api) -> None:
    await expect_error(
        read_api.stub.GetOutcome(readmodel_pb2.GetOutcomeRequest(ticket_id="nobody")),
        grpc.StatusCode.NOT_FOUND,
        "nobody",
    )


@pytest.mark.parametrize("bad", ["", "has space", "x" * 65, "semi;colon", "new\nline", "é"])
async def test_get_malformed_ticket_id_is_invalid_argument(read_api, bad: str) -> None:
    await expect_error(
        read_api.stub.GetOutcome(readmodel_pb2.GetOutcomeRequest(ticket_id=bad)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "ticket_id",
        "malformed",
    )


# ---- ListOutcomes -----------------------------------------------------------------------------


@pytest.fixture
def seeded(store: ReadModelStore) -> list[str]:
    """12 outcomes, one minute apart: statuses cycle RESOLVED/REJECTED/ESCALATED, categories
    cycle account/refund/billing/(none). Returns the ticket ids in (finished_at, ticket_id) order."""
    statuses = [TicketStatus.RESOLVED, TicketStatus.REJECTED, TicketStatus.ESCALATED]
    categories = [Category.ACCOUNT, Category.REFUND, Category.BILLING, None]
    ids = []
    for i in range(12):
        tid = f"t-{i:02d}"
        store.record(
            testkit.outcome(
                tid,
                status=statuses[i % 3],
                category=categories[i % 4],
                finished_at=testkit.BASE_TIME + timedelta(minutes=i),
            )
        )
        ids.append(tid)
    return ids


async def list_all(stub, page_size: int, **filters) -> tuple[list[str], int]:
    """Every page's ticket ids, following next_page_token; and how many pages."""
    ids, token, pages = [], "", 0
    while True:
        resp = await stub.ListOutcomes(
            readmodel_pb2.ListOutcomesRequest(page_size=page_size, page_token=token, **filters)
        )
        pages += 1
        assert len(resp.outcomes) <= page_size
        ids += [o.ticket_id for o in resp.outcomes]
        token = resp.next_page_token
        if not token:
            return ids, pages


async def test_list_without_filters_pages_through_everything(read_api, seeded) -> None:
    ids, pages = await list_all(read_api.stub, 5)
    assert ids == seeded
    assert pages == 3
    # An exact multiple of the page size: the last page is full and says it is the last.
    ids, pages = await list_all(read_api.stub, 4)
    assert (ids, pages) == (seeded, 3)
    ids, pages = await list_all(read_api.stub, 500)
    assert (ids, pages) == (seeded, 1)


async def test_list_default_page_size(read_api, store: ReadModelStore) -> None:
    store.put_many(
        [
            StoredOutcome.from_outcome(
                testkit.outcome(f"d-{i:03d}", finished_at=testkit.BASE_TIME + timedelta(seconds=i)),
                run_id="",
            )
            for i in range(60)
        ]
    )
    resp = await read_api.stub.ListOutcomes(readmodel_pb2.ListOutcomesRequest())
    assert len(resp.outcomes) == 50
    assert resp.next_page_token
    rest = await read_api.stub.ListOutcomes(
        readmodel_pb2.ListOutcomesRequest(page_token=resp.next_page_token)
    )
    assert [o.ticket_id for o in rest.outcomes] == [f"d-{i:03d}" for i in range(50, 60)]
    assert rest.next_page_token == ""


async def test_list_by_status(read_api, seeded) -> None:
    ids, _ = await list_all(read_api.stub, 2, status=ticket_pb2.TICKET_STATUS_ESCALATED)
    assert ids == [t for i, t in enumerate(seeded) if i % 3 == 2]
    ids, _ = await list_all(read_api.stub, 2, status=ticket_pb2.TICKET_STATUS_WAITING_APPROVAL)
    assert ids == []


async def test_list_by_category(read_api, seeded) -> None:
    ids, _ = await list_all(read_api.stub, 2, category=ticket_pb2.CATEGORY_REFUND)
    assert ids == [t for i, t in enumerate(seeded) if i % 4 == 1]


async def test_list_by_time_range(read_api, seeded) -> None:
    # Half-open: finished_after <= finished_at < finished_before.
    after, before = (
        testkit.BASE_TIME + timedelta(minutes=3),
        testkit.BASE_TIME + timedelta(minutes=7),
    )
    ids, _ = await list_all(read_api.stub, 3, finished_after=ts(after))
    assert ids == seeded[3:]
    ids, _ = await list_all(read_api.stub, 3, finished_before=ts(before))
    assert ids == seeded[:7]
    ids, _ = await list_all(read_api.stub, 3, finished_after=ts(after), finished_before=ts(before))
    assert ids == seeded[3:7]
    # A nanosecond past a row's time excludes it from "after" (rows have microseconds).
    late = ts(after)
    late.nanos += 1
    ids, _ = await list_all(read_api.stub, 3, finished_after=late)
    assert ids == seeded[4:]


async def test_list_filters_combine(read_api, seeded) -> None:
    ids, pages = await list_all(
        read_api.stub,
        1,
        status=ticket_pb2.TICKET_STATUS_RESOLVED,
        category=ticket_pb2.CATEGORY_BILLING,
    )
    assert ids == [t for i, t in enumerate(seeded) if i % 3 == 0 and i % 4 == 2]
    assert ids == ["t-06"]
    assert pages == 1
    ids, _ = await list_all(
        read_api.stub,
        1,
        status=ticket_pb2.TICKET_STATUS_REJECTED,
        finished_after=ts(testkit.BASE_TIME + timedelta(minutes=2)),
        finished_before=ts(testkit.BASE_TIME + timedelta(minutes=10)),
    )
    assert ids == ["t-04", "t-07"]


async def test_paging_is_stable_while_rows_arrive(read_api, store, seeded) -> None:
    first = await read_api.stub.ListOutcomes(readmodel_pb2.ListOutcomesRequest(page_size=6))
    # A row finishing before the cursor does not shift the next page (keyset, not offset).
    store.record(testkit.outcome("t-early", finished_at=testkit.BASE_TIME - timedelta(hours=1)))
    second = await read_api.stub.ListOutcomes(
        readmodel_pb2.ListOutcomesRequest(page_size=6, page_token=first.next_page_token)
    )
    assert [o.ticket_id for o in second.outcomes] == seeded[6:]


@pytest.mark.parametrize(
    ("request_kwargs", "needle"),
    [
        ({"page_size": -1}, "page_size"),
        ({"page_size": 501}, "page_size"),
        ({"page_token": "not a token!"}, "page_token"),
        ({"page_token": "eyJ2IjoxfQ"}, "page_token"),  # {"v":1}: valid base64 and JSON, no key
        ({"page_token": "x" * 600}, "page_token"),
        ({"status": 99}, "status"),
        ({"category": 42}, "category"),
    ],
)
async def test_list_invalid_arguments(read_api, request_kwargs, needle) -> None:
    await expect_error(
        read_api.stub.ListOutcomes(readmodel_pb2.ListOutcomesRequest(**request_kwargs)),
        grpc.StatusCode.INVALID_ARGUMENT,
        needle,
    )


async def test_list_inverted_or_invalid_time_range(read_api) -> None:
    await expect_error(
        read_api.stub.ListOutcomes(
            readmodel_pb2.ListOutcomesRequest(
                finished_after=ts(testkit.BASE_TIME),
                finished_before=ts(testkit.BASE_TIME - timedelta(1)),
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "finished_after",
    )
    bad = Timestamp(seconds=1, nanos=-5)
    await expect_error(
        read_api.stub.ListOutcomes(readmodel_pb2.ListOutcomesRequest(finished_before=bad)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "finished_before",
    )


async def test_token_from_other_filters_is_refused(read_api, seeded) -> None:
    first = await read_api.stub.ListOutcomes(
        readmodel_pb2.ListOutcomesRequest(page_size=2, status=ticket_pb2.TICKET_STATUS_RESOLVED)
    )
    assert first.next_page_token
    await expect_error(
        read_api.stub.ListOutcomes(
            readmodel_pb2.ListOutcomesRequest(
                page_size=2,
                status=ticket_pb2.TICKET_STATUS_REJECTED,
                page_token=first.next_page_token,
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "other filters",
    )
    # A well-formed token for the same (empty) filters is accepted.
    token = encode_token((0, "t-00"), OutcomeFilter())
    resp = await read_api.stub.ListOutcomes(readmodel_pb2.ListOutcomesRequest(page_token=token))
    assert len(resp.outcomes) == len(seeded)


# ---- undecodable requests ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "method", list(readmodel_pb2.DESCRIPTOR.services_by_name["ReadModelService"].methods_by_name)
)
async def test_undecodable_request_is_invalid_argument_with_one_log_line(
    read_api, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The single byte 0x0a (a length-delimited field 1 with no length) is no valid message: every
    RPC answers INVALID_ARGUMENT with a message and logs one line, without traceback or bytes."""
    call = read_api.channel.unary_unary(
        f"/ticketflow.v1.ReadModelService/{method}",
        request_serializer=lambda raw: raw,
        response_deserializer=lambda raw: raw,
    )
    with caplog.at_level("DEBUG"):
        details = await expect_error(
            call(b"\x0a"), grpc.StatusCode.INVALID_ARGUMENT, "malformed request"
        )
    assert "DecodeError" not in details and "Traceback" not in details
    lines = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    assert method in lines[0].getMessage()
    assert lines[0].exc_info is None and lines[0].exc_text is None
    assert all(r.exc_info is None for r in caplog.records)
    assert "\\x0a" not in lines[0].getMessage()


# ---- health and reflection --------------------------------------------------------------------


async def test_health_answers_serving(read_api) -> None:
    stub = health_pb2_grpc.HealthStub(read_api.channel)
    for service in ("", "ticketflow.v1.ReadModelService"):
        resp = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
    await expect_error(
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service")),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_reflection_lists_and_describes_the_service(read_api) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(read_api.channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="ticketflow.v1.ReadModelService"
        ),
    ]
    answers = [a async for a in stub.ServerReflectionInfo(iter(requests))]
    services = {s.name for s in answers[0].list_services_response.service}
    assert {
        "ticketflow.v1.ReadModelService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= services
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in answers[1].file_descriptor_response.file_descriptor_proto
    ]
    assert "ticketflow/v1/readmodel.proto" in {f.name for f in files}


async def test_stop_turns_health_not_serving(store: ReadModelStore) -> None:
    server = ReadApiServer(store, "127.0.0.1:0")
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        assert (await stub.Check(health_pb2.HealthCheckRequest())).status == (
            health_pb2.HealthCheckResponse.SERVING
        )
        await server._health.enter_graceful_shutdown()
        assert (await stub.Check(health_pb2.HealthCheckRequest())).status == (
            health_pb2.HealthCheckResponse.NOT_SERVING
        )
    finally:
        await channel.close()
        await server.stop(0)
