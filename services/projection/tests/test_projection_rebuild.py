"""Rebuild from a real Temporal dev server equals the view the real activity built incrementally.

Real TicketWorkflow executions (core-worker's workflow and ledger, fake agents) are recorded by the
projection's real record_outcome into view A. Rebuild then re-derives the view from visibility
and workflow results.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from ticketflow.contracts import names
from ticketflow.contracts.models import (
    Ticket,
    TicketInput,
    TicketOutcome,
    TicketState,
    TicketStatus,
)
from ticketflow.projection.grpc_api import ReadApiServer
from ticketflow.projection.rebuild import (
    CLOSED_TICKETS_QUERY,
    HISTORY_GONE,
    NOT_IN_TEMPORAL,
    NOT_LISTED,
    TemporalUnreachable,
    rebuild,
)
from ticketflow.projection.store import ReadModel
from ticketflow.v1 import readmodel_pb2, readmodel_pb2_grpc


class Scenario:
    def __init__(self, env: WorkflowEnvironment, outcomes: dict[str, TicketOutcome], view_a):
        self.env = env
        self.client: Client = env.client
        self.outcomes = outcomes
        self.view_a: ReadModel = view_a


async def visible(client: Client, ticket_ids, helpers) -> None:
    """Visibility is updated asynchronously: wait until the listing shows every ticket closed."""

    async def listed() -> None:
        seen = {wf.id async for wf in client.list_workflows(CLOSED_TICKETS_QUERY)}
        assert {names.workflow_id(t) for t in ticket_ids} <= seen

    await helpers.eventually(listed)


def copy_db(src: ReadModel, dest: Path) -> ReadModel:
    """A consistent copy (SQLite's backup API: includes what is still in the WAL)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(src.path) as a, sqlite3.connect(dest) as b:
        a.backup(b)
    a.close()
    b.close()
    return ReadModel(dest)


def delete_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@pytest.fixture(scope="module")
async def scenario(tmp_path_factory, helpers) -> AsyncIterator[Scenario]:
    """One dev server and five real tickets, shared by the tests that do not change Temporal."""
    root = tmp_path_factory.mktemp("scenario")
    env = await helpers.start_dev_server()
    try:
        async with helpers.Fleet(env.client, root / "ledger.db", root / "a" / "readmodel.db") as f:
            outcomes = await f.mixed_tickets()
            await visible(env.client, outcomes, helpers)
            yield Scenario(env, outcomes, f.store)
    finally:
        await env.shutdown()


@pytest.fixture
def view_a(scenario: Scenario, tmp_path: Path) -> ReadModel:
    """A private copy of the incrementally built view, for tests that change it."""
    return copy_db(scenario.view_a, tmp_path / "a" / "readmodel.db")


async def test_incremental_view_holds_every_outcome(scenario: Scenario) -> None:
    rows = {r.ticket_id: r for r in scenario.view_a.rows()}
    assert set(rows) == set(scenario.outcomes)
    for tid, outcome in scenario.outcomes.items():
        assert rows[tid].outcome == outcome
        assert rows[tid].run_id  # the activity's workflow run id


async def test_rebuild_equals_the_incremental_view(
    scenario: Scenario, tmp_path: Path, helpers
) -> None:
    target = tmp_path / "b" / "readmodel.db"
    lines: list[str] = []
    report = await rebuild(scenario.client, target, progress=lines.append)
    assert report.rebuilt == sorted(scenario.outcomes)
    assert report.failed == {} and report.kept == [] and report.concurrent == 0
    assert report.executions == len(scenario.outcomes)
    assert helpers.table(ReadModel(target)) == helpers.table(scenario.view_a)
    assert any("5 outcomes fetched" in line for line in lines)
    # Nothing of the work files is left next to the view.
    leftovers = {p.name for p in target.parent.iterdir()} - {
        "readmodel.db",
        "readmodel.db-wal",
        "readmodel.db-shm",
        "readmodel.db.lock",
        "readmodel.db.gate",
    }
    assert leftovers == set()


async def test_rebuild_after_deleting_the_view_reproduces_every_outcome(
    scenario: Scenario, view_a: ReadModel, helpers
) -> None:
    before = helpers.table(view_a)
    delete_db(view_a.path)
    assert view_a.count() == 0
    report = await rebuild(scenario.client, view_a.path)
    assert report.failed == {}
    assert helpers.table(view_a) == before
    for tid, outcome in scenario.outcomes.items():
        assert view_a.get(tid).outcome == outcome


async def test_rebuild_replaces_a_corrupt_view(scenario: Scenario, tmp_path: Path, helpers) -> None:
    target = tmp_path / "readmodel.db"
    target.write_bytes(b"this is not a database" * 100)
    lines: list[str] = []
    report = await rebuild(scenario.client, target, progress=lines.append)
    assert report.rebuilt == sorted(scenario.outcomes)
    assert any("unreadable" in line for line in lines)
    assert helpers.table(ReadModel(target)) == helpers.table(scenario.view_a)


async def test_rebuild_keeps_or_drops_rows_temporal_no_longer_has(
    scenario: Scenario, view_a: ReadModel, helpers
) -> None:
    ghost = helpers.make_outcome("ghost-1")
    view_a.record(ghost, run_id="gone")
    report = await rebuild(scenario.client, view_a.path)
    assert report.failed == {"ghost-1": NOT_IN_TEMPORAL}
    assert report.kept == ["ghost-1"]
    assert view_a.get("ghost-1").outcome == ghost
    assert any("ghost-1" in line and "kept" in line for line in report.lines())

    report = await rebuild(scenario.client, view_a.path, drop_unretained=True)
    assert report.failed == {"ghost-1": NOT_IN_TEMPORAL} and report.kept == []
    assert view_a.get("ghost-1") is None
    assert set(helpers.table(view_a)) == set(scenario.outcomes)


async def test_a_newer_run_not_closed_yet_is_not_rolled_back(
    scenario: Scenario, view_a: ReadModel, helpers
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
    expected = helpers.table(view_a)
    for drop in (False, True):
        report = await rebuild(scenario.client, view_a.path, drop_unretained=drop)
        assert view_a.get(tid).outcome == run2
        assert view_a.get(tid).run_id == "run-2-after-a-reset"
        assert helpers.table(view_a) == expected
        assert report.rebuilt == sorted(scenario.outcomes)  # run 1 was re-derived, and lost
        assert report.failed == {} and report.kept == [] and report.running == []
        assert report.newer == [tid]
        assert any(tid in line and "newer" in line for line in report.lines())


async def test_an_older_row_gives_way_to_the_closed_run(
    scenario: Scenario, view_a: ReadModel, helpers
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
    delete_db(view_a.path)
    view_a.record(stale, run_id="run-0")
    report = await rebuild(scenario.client, view_a.path, drop_unretained=True)
    assert view_a.get(tid).outcome == current
    assert helpers.table(view_a) == helpers.table(scenario.view_a)
    assert report.failed == {} and report.newer == []


async def test_a_closed_run_missing_from_the_listing_is_kept_not_dropped(
    scenario: Scenario, view_a: ReadModel, helpers, monkeypatch
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
    before = helpers.table(view_a)
    report = await rebuild(scenario.client, view_a.path, drop_unretained=True)
    assert helpers.table(view_a) == before
    assert report.rebuilt == sorted(set(scenario.outcomes) - {lagging})
    assert report.failed == {lagging: NOT_LISTED.format(status="COMPLETED")}
    assert report.kept == [lagging]


async def test_outcomes_recorded_during_the_rebuild_are_not_lost(
    scenario: Scenario, view_a: ReadModel, helpers, monkeypatch
) -> None:
    """The live worker keeps recording while rebuild runs: writes before rebuild reads the current
    file (phase 1) and between that read and the swap (phase 2, under the lock) both survive,
    even with --drop-unretained (they are new, not unretained)."""
    early = helpers.make_outcome("live-early")
    late = helpers.make_outcome("live-late")
    writer = ReadModel(view_a.path)  # another handle, as the serving process has

    def progress(line: str) -> None:
        if "outcomes fetched" in line:  # listing done, current file not read yet
            writer.record(early, run_id="r1")

    real_swap = ReadModel.swap_in

    def swap_in(self, fresh, before_swap):
        writer.record(late, run_id="r2")  # after phase 1 read the file, before the lock
        return real_swap(self, fresh, before_swap)

    monkeypatch.setattr(ReadModel, "swap_in", swap_in)
    report = await rebuild(scenario.client, view_a.path, drop_unretained=True, progress=progress)
    assert report.concurrent == 2
    assert view_a.get("live-early").outcome == early
    assert view_a.get("live-late").outcome == late
    assert set(helpers.table(view_a)) == set(scenario.outcomes) | {"live-early", "live-late"}


async def test_read_api_keeps_answering_and_serves_the_new_file(
    scenario: Scenario, view_a: ReadModel, helpers
) -> None:
    view_a.record(helpers.make_outcome("ghost-2"))
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
        report = await rebuild(scenario.client, view_a.path, drop_unretained=True)
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
    scenario: Scenario, view_a: ReadModel, helpers, monkeypatch
) -> None:
    before = helpers.table(view_a)

    async def unavailable(*args, **kwargs):
        raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")

    monkeypatch.setattr(WorkflowHandle, "result", unavailable)
    with pytest.raises(TemporalUnreachable):
        await rebuild(scenario.client, view_a.path)
    assert helpers.table(view_a) == before
    assert not any(".rebuild-" in p.name for p in view_a.path.parent.iterdir())


async def test_temporal_going_away_while_asked_about_a_row_changes_nothing(
    scenario: Scenario, view_a: ReadModel, helpers, monkeypatch
) -> None:
    """An outage while rebuild asks whether a ticket still exists must not read as "gone"."""
    view_a.record(helpers.make_outcome("ghost-4"), run_id="gone")
    before = helpers.table(view_a)

    async def unavailable(*args, **kwargs):
        raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")

    monkeypatch.setattr(WorkflowHandle, "describe", unavailable)
    with pytest.raises(TemporalUnreachable):
        await rebuild(scenario.client, view_a.path, drop_unretained=True)
    assert helpers.table(view_a) == before
    assert not any(".rebuild-" in p.name for p in view_a.path.parent.iterdir())


# ---- tests that change Temporal: their own server ------------------------------------------


async def test_deleted_and_unfinished_workflows_are_reported(tmp_path: Path, helpers) -> None:
    env = await helpers.start_dev_server(fast_delete=True)
    try:
        async with helpers.Fleet(
            env.client, tmp_path / "ledger.db", tmp_path / "readmodel.db"
        ) as fleet:
            outcomes = await fleet.mixed_tickets()
            # A ticket that never finishes: terminated while it waits for a human.
            stuck = await fleet.start(subject="unclear forever")
            await helpers.eventually(lambda: _status_is_waiting(stuck))
            await stuck.terminate("test: operator gave up")
            stuck_id = stuck.id.removeprefix("ticket-")
            await visible(env.client, [*outcomes, stuck_id], helpers)

            deleted_id = sorted(outcomes)[0]
            await env.client.workflow_service.delete_workflow_execution(
                DeleteWorkflowExecutionRequest(
                    namespace=env.client.namespace,
                    workflow_execution=WorkflowExecution(workflow_id=names.workflow_id(deleted_id)),
                )
            )

            async def gone() -> None:
                try:
                    await env.client.get_workflow_handle(names.workflow_id(deleted_id)).describe()
                except RPCError as err:
                    assert err.status == RPCStatusCode.NOT_FOUND
                    return
                raise AssertionError(f"{deleted_id} still described")

            await helpers.eventually(gone)

            report = await rebuild(env.client, fleet.store.path)
            assert report.rebuilt == sorted(set(outcomes) - {deleted_id})
            assert set(report.failed) == {deleted_id, stuck_id}
            assert report.failed[deleted_id] in (HISTORY_GONE, NOT_IN_TEMPORAL)
            assert report.failed[stuck_id] == "not completed (TERMINATED)"
            assert report.kept == [deleted_id]  # its row is the only record left
            assert fleet.store.get(deleted_id).outcome == outcomes[deleted_id]
            assert fleet.store.get(stuck_id) is None
            text = "\n".join(report.lines())
            assert deleted_id in text and stuck_id in text and "TERMINATED" in text
    finally:
        await env.shutdown()


async def test_a_running_ticket_is_neither_rebuilt_nor_dropped(tmp_path: Path, helpers) -> None:
    """The core-worker was killed right after record_outcome: the ticket's outcome is recorded,
    its workflow is still running (no worker polls its queue) and no run of it is closed. Temporal
    still has it, so --drop-unretained keeps its row and reports it as running, not as gone. A
    ticket that Temporal really no longer has is still dropped."""
    env = await helpers.start_dev_server()
    try:
        view = ReadModel(tmp_path / "readmodel.db")
        tid = "running-1"
        ticket = Ticket(ticket_id=tid, customer_id="cust-1", subject="cannot login", body="help")
        handle = await env.client.start_workflow(
            names.TICKET_WORKFLOW,
            TicketInput(ticket=ticket),
            id=names.workflow_id(tid),
            task_queue=names.CORE_QUEUE,
        )
        recorded = helpers.make_outcome(tid)
        assert view.record(recorded, run_id=handle.result_run_id)
        view.record(helpers.make_outcome("ghost-3"), run_id="gone")

        report = await rebuild(env.client, view.path, drop_unretained=True)
        assert view.get(tid).outcome == recorded
        assert view.get("ghost-3") is None
        assert report.rebuilt == [] and report.running == [tid]
        assert report.failed == {"ghost-3": NOT_IN_TEMPORAL} and report.kept == []
        assert any(tid in line and "running" in line for line in report.lines())
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    finally:
        await env.shutdown()


async def _status_is_waiting(handle) -> None:
    state = await handle.query(names.STATUS_QUERY, result_type=TicketState)
    assert state.status == TicketStatus.WAITING_APPROVAL
