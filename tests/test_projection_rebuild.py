"""Rebuild from a real Temporal dev server equals the view the real activity built incrementally.

Cross-service: real TicketWorkflow executions (core-worker's workflow and side effects, the fake
agent) are recorded by the projection's real record_outcome into view A. Rebuild then re-derives
the view from visibility and workflow results. A rebuild against a server that runs no ticket
code is tested in services/projection/tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from ticketflow import testkit
from ticketflow.contracts import names
from ticketflow.contracts.models import TicketInput, TicketOutcome, TicketState, TicketStatus
from ticketflow.projection.grpc_api import ReadApiServer
from ticketflow.projection.rebuild import (
    DUPLICATE_RUN,
    HISTORY_GONE,
    NOT_IN_TEMPORAL,
    NOT_LISTED,
    rebuild,
)
from ticketflow.projection.store import ReadModelStore
from ticketflow.runtime import TemporalUnreachable
from ticketflow.storage import parse_store_url
from ticketflow.v1 import readmodel_pb2, readmodel_pb2_grpc

from .workflow_stack import (
    TicketStack,
    clear,
    copy_db,
    leftovers,
    start_server,
    table,
    visible,
)


@dataclass
class Scenario:
    env: WorkflowEnvironment
    outcomes: dict[str, TicketOutcome]
    view_a: ReadModelStore

    @property
    def client(self) -> Client:
        return self.env.client


@pytest.fixture(scope="module")
async def scenario(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scenario]:
    """One dev server and five real tickets, shared by the tests that do not change Temporal."""
    root = tmp_path_factory.mktemp("scenario")
    env = await start_server()
    try:
        async with TicketStack(env.client, root, root / "a" / "readmodel.db") as stack:
            outcomes = await stack.mixed_tickets()
            await visible(env.client, outcomes)
            yield Scenario(env, outcomes, stack.view)
    finally:
        await testkit.stop_env(env)


@pytest.fixture(params=testkit.BACKENDS)
def view_a(
    scenario: Scenario, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[ReadModelStore]:
    """A private copy of the incrementally built view, for tests that change it: a SQLite file,
    or the same rows in a fresh database on the suite's PostgreSQL server."""
    path = tmp_path / "a" / "readmodel.db"
    if getattr(request, "param", "sqlite") == "sqlite":
        store = copy_db(scenario.view_a, path)
    else:
        url = testkit.backend_database_url(request, path)
        store = ReadModelStore(parse_store_url(url, data_dir=tmp_path))
        store.put_many(scenario.view_a.rows())
    yield store
    store.close()


def outcome_of(view: ReadModelStore, ticket_id: str) -> TicketOutcome:
    row = view.get(ticket_id)
    assert row is not None, f"no row for {ticket_id}"
    return row.outcome


async def test_incremental_view_holds_every_outcome(scenario: Scenario) -> None:
    rows = {r.ticket_id: r for r in scenario.view_a.rows()}
    assert set(rows) == set(scenario.outcomes)
    for tid, outcome in scenario.outcomes.items():
        assert rows[tid].outcome == outcome
        assert rows[tid].run_id  # the activity's workflow run id


async def test_rebuild_equals_the_incremental_view(scenario: Scenario, tmp_path: Path) -> None:
    target = tmp_path / "b" / "readmodel.db"
    lines: list[str] = []
    report = await rebuild(scenario.client, target, progress=lines.append)
    assert report.rebuilt == sorted(scenario.outcomes)
    assert report.failed == {} and report.kept == [] and report.concurrent == 0
    assert report.executions == len(scenario.outcomes)
    assert table(ReadModelStore(target)) == table(scenario.view_a)
    assert any("5 outcomes fetched" in line for line in lines)
    # Nothing of the work files is left next to the view.
    leftovers = {p.name for p in target.parent.iterdir()} - {
        "readmodel.db",
        "readmodel.db-wal",
        "readmodel.db-shm",
        "readmodel.db.lock",
        "readmodel.db.gate",
        "readmodel.db.rebuild.lock",  # one rebuild at a time
    }
    assert leftovers == set()


async def test_rebuild_after_deleting_the_view_reproduces_every_outcome(
    scenario: Scenario, view_a: ReadModelStore
) -> None:
    before = table(view_a)
    clear(view_a)
    assert view_a.count() == 0
    report = await rebuild(scenario.client, view_a.url)
    assert report.failed == {}
    assert table(view_a) == before
    for tid, outcome in scenario.outcomes.items():
        assert outcome_of(view_a, tid) == outcome


async def test_rebuild_replaces_a_corrupt_view(scenario: Scenario, tmp_path: Path) -> None:
    target = tmp_path / "readmodel.db"
    target.write_bytes(b"this is not a database" * 100)
    lines: list[str] = []
    report = await rebuild(scenario.client, target, progress=lines.append)
    assert report.rebuilt == sorted(scenario.outcomes)
    assert any("unreadable" in line for line in lines)
    assert table(ReadModelStore(target)) == table(scenario.view_a)


async def test_rebuild_keeps_or_drops_rows_temporal_no_longer_has(
    scenario: Scenario, view_a: ReadModelStore
) -> None:
    ghost = testkit.outcome("ghost-1")
    view_a.record(ghost, run_id="gone")
    report = await rebuild(scenario.client, view_a.url)
    assert report.failed == {"ghost-1": NOT_IN_TEMPORAL}
    assert report.kept == ["ghost-1"]
    assert outcome_of(view_a, "ghost-1") == ghost
    assert any("ghost-1" in line and "kept" in line for line in report.lines())

    report = await rebuild(scenario.client, view_a.url, drop_unretained=True)
    assert report.failed == {"ghost-1": NOT_IN_TEMPORAL} and report.kept == []
    assert view_a.get("ghost-1") is None
    assert set(table(view_a)) == set(scenario.outcomes)


async def test_a_newer_run_not_closed_yet_is_not_rolled_back(
    scenario: Scenario, view_a: ReadModelStore
) -> None:
    """A reset: run 2 of a ticket recorded its outcome but is not closed yet (the core-worker was
    killed right after record_outcome, or visibility lags), so Temporal lists only the closed
    run 1. Rebuild re-derives run 1, and must still keep run 2's newer outcome, with or without
    --drop-unretained: the merge goes through the version rule and never goes backwards."""
    tid = sorted(scenario.outcomes)[0]
    run1 = scenario.outcomes[tid]
    run2 = run1.model_copy(
        update={
            "status": TicketStatus.ESCALATED,
            "finished_at": run1.finished_at + timedelta(minutes=1),
        }
    )
    assert view_a.record(run2, run_id="run-2-after-a-reset")
    expected = table(view_a)
    for drop in (False, True):
        report = await rebuild(scenario.client, view_a.url, drop_unretained=drop)
        row = view_a.get(tid)
        assert row is not None and row.outcome == run2
        assert row.run_id == "run-2-after-a-reset"
        assert table(view_a) == expected
        assert report.rebuilt == sorted(scenario.outcomes)  # run 1 was re-derived, and lost
        assert report.failed == {} and report.kept == [] and report.running == []
        assert report.newer == [tid]
        assert any(tid in line and "newer" in line for line in report.lines())


async def test_an_older_row_gives_way_to_the_closed_run(
    scenario: Scenario, view_a: ReadModelStore
) -> None:
    """The other direction of the same rule: a stale row (an earlier run) is replaced by the
    re-derived newer run."""
    tid = sorted(scenario.outcomes)[1]
    current = scenario.outcomes[tid]
    stale = current.model_copy(
        update={
            "status": TicketStatus.REJECTED,
            "finished_at": current.finished_at - timedelta(minutes=1),
        }
    )
    clear(view_a)
    view_a.record(stale, run_id="run-0")
    report = await rebuild(scenario.client, view_a.url, drop_unretained=True)
    assert outcome_of(view_a, tid) == current
    assert table(view_a) == table(scenario.view_a)
    assert report.failed == {} and report.newer == []


async def test_a_closed_run_missing_from_the_listing_is_kept_not_dropped(
    scenario: Scenario, view_a: ReadModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Visibility lags: a completed ticket is not in the listing yet. Absence from the listing is
    not "unretained": Temporal still has the workflow, so even --drop-unretained keeps its row."""
    lagging = sorted(scenario.outcomes)[2]
    real_list = Client.list_workflows

    def list_workflows(self, query=None, **kwargs):
        async def listing():
            async for wf in real_list(self, query, **kwargs):
                if wf.id != names.workflow_id(lagging):
                    yield wf

        return listing()

    monkeypatch.setattr(Client, "list_workflows", list_workflows)
    before = table(view_a)
    report = await rebuild(scenario.client, view_a.url, drop_unretained=True)
    assert table(view_a) == before
    assert report.rebuilt == sorted(set(scenario.outcomes) - {lagging})
    assert report.failed == {lagging: NOT_LISTED.format(status="COMPLETED")}
    assert report.kept == [lagging]


async def test_outcomes_recorded_during_the_rebuild_are_not_lost(
    scenario: Scenario, view_a: ReadModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live worker keeps recording while rebuild runs: writes before rebuild reads the current
    file (phase 1) and between that read and the swap (phase 2, under the lock) both survive,
    even with --drop-unretained (they are new, not unretained)."""
    early = testkit.outcome("live-early")
    late = testkit.outcome("live-late")
    writer = ReadModelStore(view_a.url)  # another handle, as the serving process has

    def progress(line: str) -> None:
        if "outcomes fetched" in line:  # listing done, current file not read yet
            writer.record(early, run_id="r1")

    real_swap = ReadModelStore.swap_in

    def swap_in(self, fresh, before_swap):
        writer.record(late, run_id="r2")  # after phase 1 read the file, before the lock
        return real_swap(self, fresh, before_swap)

    monkeypatch.setattr(ReadModelStore, "swap_in", swap_in)
    report = await rebuild(scenario.client, view_a.url, drop_unretained=True, progress=progress)
    assert report.concurrent == 2
    assert outcome_of(view_a, "live-early") == early
    assert outcome_of(view_a, "live-late") == late
    assert set(table(view_a)) == set(scenario.outcomes) | {"live-early", "live-late"}


async def test_read_api_keeps_answering_and_serves_the_new_file(
    scenario: Scenario, view_a: ReadModelStore
) -> None:
    view_a.record(testkit.outcome("ghost-2"))
    server = ReadApiServer(view_a, "127.0.0.1:0")
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = readmodel_pb2_grpc.ReadModelServiceStub(channel)
    some_ticket = sorted(scenario.outcomes)[0]
    stop = asyncio.Event()
    answered = 0

    async def keep_reading() -> None:
        nonlocal answered
        while True:  # at least once, until the rebuild is over
            resp = await stub.GetOutcome(readmodel_pb2.GetOutcomeRequest(ticket_id=some_ticket))
            assert resp.outcome.ticket_id == some_ticket
            page = await stub.ListOutcomes(readmodel_pb2.ListOutcomesRequest(page_size=500))
            assert len(page.outcomes) >= len(scenario.outcomes)
            answered += 1
            if stop.is_set():
                return

    try:
        await stub.GetOutcome(readmodel_pb2.GetOutcomeRequest(ticket_id="ghost-2"))
        reader = asyncio.create_task(keep_reading())
        report = await rebuild(scenario.client, view_a.url, drop_unretained=True)
        stop.set()
        await reader  # re-raises any failed read
        assert answered >= 1
        assert report.failed == {"ghost-2": NOT_IN_TEMPORAL}
        # The same server, no restart: it now reads the rebuilt file.
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetOutcome(readmodel_pb2.GetOutcomeRequest(ticket_id="ghost-2"))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        stop.set()
        await channel.close()
        await server.stop(0)


async def test_temporal_going_away_aborts_and_changes_nothing(
    scenario: Scenario, view_a: ReadModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = table(view_a)

    async def unavailable(*args, **kwargs):
        raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")

    monkeypatch.setattr(WorkflowHandle, "result", unavailable)
    with pytest.raises(TemporalUnreachable):
        await rebuild(scenario.client, view_a.url)
    assert table(view_a) == before
    assert leftovers(view_a) == []


async def test_temporal_going_away_while_asked_about_a_row_changes_nothing(
    scenario: Scenario, view_a: ReadModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An outage while rebuild asks whether a ticket still exists must not read as "gone"."""
    view_a.record(testkit.outcome("ghost-4"), run_id="gone")
    before = table(view_a)

    async def unavailable(*args, **kwargs):
        raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")

    monkeypatch.setattr(WorkflowHandle, "describe", unavailable)
    with pytest.raises(TemporalUnreachable):
        await rebuild(scenario.client, view_a.url, drop_unretained=True)
    assert table(view_a) == before
    assert leftovers(view_a) == []


# ---- a test that changes Temporal: its own server ------------------------------------------


async def test_deleted_and_unfinished_workflows_are_reported(tmp_path: Path) -> None:
    env = await start_server(fast_delete=True)
    try:
        async with TicketStack(env.client, tmp_path, tmp_path / "readmodel.db") as stack:
            outcomes = await stack.mixed_tickets()
            # A ticket that never finishes: terminated while it waits for a human.
            stuck = await stack.start(subject="unclear forever")

            async def waiting() -> bool:
                state = await stuck.query(names.STATUS_QUERY, result_type=TicketState)
                return state.status == TicketStatus.WAITING_APPROVAL

            await testkit.eventually_async(waiting, what="the stuck ticket waiting for a human")
            await stuck.terminate("test: operator gave up")
            stuck_id = stuck.id.removeprefix("ticket-")
            await visible(env.client, [*outcomes, stuck_id])

            deleted_id = sorted(outcomes)[0]
            await env.client.workflow_service.delete_workflow_execution(
                DeleteWorkflowExecutionRequest(
                    namespace=env.client.namespace,
                    workflow_execution=WorkflowExecution(workflow_id=names.workflow_id(deleted_id)),
                )
            )

            async def gone() -> bool:
                try:
                    await env.client.get_workflow_handle(names.workflow_id(deleted_id)).describe()
                except RPCError as err:
                    return err.status == RPCStatusCode.NOT_FOUND
                return False

            await testkit.eventually_async(gone, what=f"{deleted_id} deleted")

            report = await rebuild(env.client, stack.view.path)
            assert report.rebuilt == sorted(set(outcomes) - {deleted_id})
            assert set(report.failed) == {deleted_id, stuck_id}
            assert report.failed[deleted_id] in (HISTORY_GONE, NOT_IN_TEMPORAL)
            assert report.failed[stuck_id] == "not completed (TERMINATED)"
            assert report.kept == [deleted_id]  # its row is the only record left
            assert outcome_of(stack.view, deleted_id) == outcomes[deleted_id]
            assert stack.view.get(stuck_id) is None
            text = "\n".join(report.lines())
            assert deleted_id in text and stuck_id in text and "TERMINATED" in text

            # The deleted ticket submitted again while the read model was down (docs/
            # architecture.md, "Intake: accepted without the read model"): its new run ends as
            # a duplicate. Rebuild must keep the original row, not the duplicate's newer one.
            again = TicketInput(ticket=outcomes[deleted_id].ticket, intake_check=True)
            second = await env.client.start_workflow(
                names.TICKET_WORKFLOW,
                again,
                id=names.workflow_id(deleted_id),
                task_queue=names.CORE_QUEUE,
                result_type=TicketOutcome,
            )
            assert (await second.result()).duplicate_of is not None
            await visible(env.client, [deleted_id])
            report = await rebuild(env.client, stack.view.path)
            assert deleted_id not in report.rebuilt
            assert report.failed[deleted_id] == DUPLICATE_RUN
            assert deleted_id in report.kept
            assert outcome_of(stack.view, deleted_id) == outcomes[deleted_id]
    finally:
        await testkit.stop_env(env)
