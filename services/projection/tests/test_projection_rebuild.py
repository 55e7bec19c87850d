"""Rebuild against a real Temporal dev server that runs no TicketWorkflow code.

Rebuild from real ticket histories (core-worker's workflow) is cross-service and lives in the root
tests/test_projection_rebuild.py; here, Temporal only knows the workflow by name.
"""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from ticketflow import testkit
from ticketflow.contracts import names
from ticketflow.contracts.models import Ticket, TicketInput
from ticketflow.projection.rebuild import (
    NOT_IN_TEMPORAL,
    RebuildReport,
    RebuildRunning,
    rebuild,
)
from ticketflow.projection.store import ReadModelStore

from ._views import leftovers, table


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    """A server of this module's own: rebuild reads every closed ticket of the namespace, and
    none of these tests closes one."""
    env = await testkit.start_dev_env()
    try:
        yield env
    finally:
        await testkit.stop_env(env)


def never_ending_listing(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Make every rebuild hang in Temporal's listing; the event says one got there."""
    listing = asyncio.Event()

    def list_workflows(self: Client, query: str | None = None, **kwargs: object):
        async def never_ending():
            listing.set()
            await asyncio.Event().wait()
            yield  # an async generator that never yields

        return never_ending()

    monkeypatch.setattr(Client, "list_workflows", list_workflows)
    return listing


async def test_a_running_ticket_is_neither_rebuilt_nor_dropped(
    temporal: WorkflowEnvironment, store: ReadModelStore
) -> None:
    """The core-worker was killed right after record_outcome: the ticket's outcome is recorded,
    its workflow is still running (no worker polls its queue) and no run of it is closed. Temporal
    still has it, so --drop-unretained keeps its row and reports it as running, not as gone. A
    ticket that Temporal really no longer has is still dropped."""
    view = store
    tid = testkit.fresh_id("running-")
    ticket = Ticket(ticket_id=tid, customer_id="cust-1", subject="cannot login", body="help")
    handle = await temporal.client.start_workflow(
        names.TICKET_WORKFLOW,
        TicketInput(ticket=ticket),
        id=names.workflow_id(tid),
        task_queue=names.CORE_QUEUE,
    )
    recorded = testkit.outcome(tid)
    assert view.record(recorded, run_id=handle.result_run_id or "")
    view.record(testkit.outcome("ghost-3"), run_id="gone")

    report = await rebuild(temporal.client, view.url, drop_unretained=True)
    row = view.get(tid)
    assert row is not None and row.outcome == recorded
    assert view.get("ghost-3") is None
    assert report.rebuilt == [] and report.running == [tid]
    assert report.failed == {"ghost-3": NOT_IN_TEMPORAL} and report.kept == []
    assert any(tid in line and "running" in line for line in report.lines())
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING


async def test_cancelled_before_the_swap_changes_nothing(
    temporal: WorkflowEnvironment, store: ReadModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop request while rebuild still reads Temporal: the view and its directory are as
    before (no work file left behind)."""
    view = store
    view.record(testkit.outcome("ghost-5"), run_id="gone")
    before = table(view)
    listing = never_ending_listing(monkeypatch)
    task = asyncio.create_task(rebuild(temporal.client, view.url, drop_unretained=True))
    await asyncio.wait_for(listing.wait(), timeout=30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert table(view) == before
    assert leftovers(view) == []


async def test_cancelled_during_the_swap_completes_it(
    temporal: WorkflowEnvironment, store: ReadModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The swap runs on a thread and cannot stop halfway: a stop request that arrives during it
    waits for it, and the rebuild returns its report."""
    view = store
    view.record(testkit.outcome("ghost-6"), run_id="gone")
    swapping, release = threading.Event(), threading.Event()
    real_swap = ReadModelStore.swap_in

    def swap_in(self: ReadModelStore, fresh: ReadModelStore, before_swap) -> None:
        swapping.set()
        assert release.wait(timeout=30)
        real_swap(self, fresh, before_swap)

    monkeypatch.setattr(ReadModelStore, "swap_in", swap_in)
    task = asyncio.create_task(rebuild(temporal.client, view.url, drop_unretained=True))

    async def in_the_swap() -> bool:
        return swapping.is_set()

    await testkit.eventually_async(in_the_swap, what="rebuild swapping the new file in")
    task.cancel()
    release.set()
    report = await task
    assert isinstance(report, RebuildReport)
    assert report.failed == {"ghost-6": NOT_IN_TEMPORAL}
    assert view.get("ghost-6") is None  # the rebuilt file is the one in place
    assert leftovers(view) == []


async def test_the_rebuilt_file_is_private(
    temporal: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rebuild's fresh file is created 0600 whatever the umask, so the file swapped in is too."""
    old_umask = os.umask(0o022)
    try:
        view = ReadModelStore(tmp_path / "readmodel.db")
        view.record(testkit.outcome("ghost-7"), run_id="gone")
        fresh_modes: list[int] = []
        real_swap = ReadModelStore.swap_in

        def swap_in(self: ReadModelStore, fresh: ReadModelStore, before_swap) -> None:
            fresh_modes.append(stat.S_IMODE(fresh.path.stat().st_mode))
            real_swap(self, fresh, before_swap)

        monkeypatch.setattr(ReadModelStore, "swap_in", swap_in)
        await rebuild(temporal.client, view.path)
    finally:
        os.umask(old_umask)
    assert fresh_modes == [0o600]
    assert stat.S_IMODE(view.path.stat().st_mode) == 0o600
    assert view.get("ghost-7") is not None  # kept: no --drop-unretained


async def test_a_second_rebuild_is_refused_while_one_runs(
    temporal: WorkflowEnvironment, store: ReadModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two rebuilds at once could lose a write (the first swap renumbers what the second merges
    from): the second is refused at once, saying why, and changes nothing. Once the first has
    ended, a rebuild runs again."""
    view = store
    view.record(testkit.outcome("ghost-8"), run_id="gone")
    before = table(view)
    listing = never_ending_listing(monkeypatch)
    first = asyncio.create_task(rebuild(temporal.client, view.url, drop_unretained=True))
    try:
        await asyncio.wait_for(listing.wait(), timeout=30)
        with pytest.raises(RebuildRunning, match=r"another rebuild of .* is running"):
            await rebuild(temporal.client, view.url, drop_unretained=True)
        assert table(view) == before
    finally:
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
    monkeypatch.undo()
    report = await rebuild(temporal.client, view.url, drop_unretained=True)
    assert report.failed == {"ghost-8": NOT_IN_TEMPORAL}
    assert view.get("ghost-8") is None


async def test_a_dead_rebuilds_work_is_removed_by_the_next(
    temporal: WorkflowEnvironment, store: ReadModelStore
) -> None:
    """A rebuild killed before its swap leaves its half-filled work file or table behind (it
    never reaches its clean-up). The next rebuild, holding the lock, knows nobody is using it."""
    view = store
    view.record(testkit.outcome("ghost-9"), run_id="gone")
    dead = view.fresh()  # what a killed rebuild had made, partly filled
    dead.put_many(view.rows())
    left = leftovers(view)
    assert left
    report = await rebuild(temporal.client, view.url)
    assert leftovers(view) == []
    assert report.leftovers == left
    assert any("interrupted rebuild" in line for line in report.lines())
    assert view.get("ghost-9") is not None
