"""``ticketflow-projection rebuild``: re-derive the read model from Temporal and swap it in.

1. List the closed ``TicketWorkflow`` executions (visibility) and fetch each completed run's result
   (a ``TicketOutcome``, through the contracts' data converter), a few at a time.
2. Write them into a fresh store (SQLite: a file next to ``readmodel.db``; PostgreSQL: a table
   next to ``outcomes``, store.py ``fresh``), under the same version rule as the
   activity, so the result equals the incrementally built view.
3. Merge every row of the current file into the fresh one, again under the version rule (only a
   strictly newer version wins), so the merge can never go backwards. A row newer than what the
   listing gave back stays: a reset's second run that recorded its outcome but is not closed yet
   (its worker died right after ``record_outcome``, or visibility lags). The one exception:
   with ``drop_unretained``, the rows of tickets that Temporal no longer has are left out. Only
   Temporal itself decides that (describing the ticket's workflow answers NOT_FOUND), never the
   absence from the listing: a ticket whose workflow is still running, or whose closed run is
   not listed yet, is neither rebuilt nor dropped. Rows that the running projection recorded
   during the rebuild (their ``seq`` is above the one noted at the start) are always kept.
   A run that ended as a duplicate (``TicketOutcome.duplicate_of``: a re-submission the api
   accepted without the read model, docs/architecture.md, "Intake: accepted without the read
   model") is never rebuilt: it did nothing, and the earlier run's row stays.
4. Swap the fresh store in atomically (`ReadModelStore.swap_in`). The last concurrent writes are
   merged under the exclusive lock, so none is lost. The gRPC API keeps answering, from the old
   view before the swap and from the new one after it.

A ticket that cannot be rebuilt is reported with the reason. A Temporal server that stops answering
aborts the rebuild (``TemporalUnreachable``) and leaves the current file untouched. Otherwise an
outage would look like "every history is gone" and would replace a good view with an empty one.
Cancelling the rebuild leaves the current file untouched too, unless the swap has begun: the swap
then completes and the rebuild returns its report.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from ticketflow.contracts import names
from ticketflow.contracts.models import TicketOutcome
from ticketflow.runtime import TemporalUnreachable
from ticketflow.storage import StoreUrl

from ._rebuild_guard import RebuildRunning, exclusive_rebuild
from .store import ReadModelStore, StoredOutcome, is_sqlite_corruption, rows_since

__all__ = [
    "CLOSED_TICKETS_QUERY",
    "DUPLICATE_RUN",
    "HISTORY_GONE",
    "NOT_IN_TEMPORAL",
    "NOT_LISTED",
    "RebuildReport",
    "RebuildRunning",
    "TemporalUnreachable",
    "rebuild",
]

CLOSED_TICKETS_QUERY = f'WorkflowType = "{names.TICKET_WORKFLOW}" AND ExecutionStatus != "Running"'
HISTORY_GONE = "history gone (deleted or past retention)"
NOT_IN_TEMPORAL = "not in Temporal any more (history deleted or past retention)"
NOT_LISTED = "closed ({status}) but not listed as a completed run yet (visibility lags)"
DUPLICATE_RUN = (
    "its retained run ended as a duplicate of an earlier run whose history is gone (a "
    "re-submission accepted without the read model); the earlier run's outcome is the ticket's"
)

_UNREACHABLE_CODES = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.UNAUTHENTICATED,
    RPCStatusCode.PERMISSION_DENIED,
    RPCStatusCode.CANCELLED,
}
_BATCH = 500
T = TypeVar("T")


@dataclass
class RebuildReport:
    path: Path | str
    executions: int = 0
    rebuilt: list[str] = field(default_factory=list)
    # ticket_id -> why it was not re-derived from Temporal
    failed: dict[str, str] = field(default_factory=dict)
    # tickets among `failed` whose previous row was carried over
    kept: list[str] = field(default_factory=list)
    # tickets whose workflow is still running and that have a row: kept, neither rebuilt nor dropped
    running: list[str] = field(default_factory=list)
    # rebuilt tickets whose previous row is newer than every closed run Temporal gave back (a
    # reset's next run that recorded its outcome and is not closed yet): the newer row was kept
    newer: list[str] = field(default_factory=list)
    # rows the running projection recorded while the rebuild ran, merged into the new file
    concurrent: int = 0
    # work files or tables of an earlier rebuild that died, removed before this one began
    leftovers: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"rebuild: {len(self.rebuilt)} ticket(s) rebuilt from Temporal into {self.path}"]
        if self.leftovers:
            out.append(
                f"rebuild: removed what an interrupted rebuild left: {', '.join(self.leftovers)}"
            )
        if self.failed:
            out.append(f"rebuild: {len(self.failed)} ticket(s) could not be rebuilt:")
            kept = set(self.kept)
            for tid in sorted(self.failed):
                note = "; kept its previous row" if tid in kept else ""
                out.append(f"  {tid}: {self.failed[tid]}{note}")
        if self.running:
            out.append(
                f"rebuild: {len(self.running)} ticket(s) still running in Temporal kept their "
                f"recorded row: {', '.join(self.running)}"
            )
        if self.newer:
            out.append(
                f"rebuild: {len(self.newer)} ticket(s) kept a recorded row newer than their "
                f"closed runs in Temporal (a later run not closed yet): {', '.join(self.newer)}"
            )
        if self.concurrent:
            out.append(
                f"rebuild: {self.concurrent} outcome(s) recorded by the running projection "
                "during the rebuild were merged"
            )
        return out


def _unreachable(err: RPCError) -> bool:
    return err.status in _UNREACHABLE_CODES


async def rebuild(
    client: Client,
    where: StoreUrl | Path,
    *,
    drop_unretained: bool = False,
    concurrency: int = 16,
    progress: Callable[[str], None] = lambda line: None,
    migrate: bool = True,
) -> RebuildReport:
    """Re-derive the view at ``where`` from Temporal and swap it in; see the module docstring."""
    live = _open_live(where, progress, migrate)
    report = RebuildReport(path=live.where)
    try:
        with exclusive_rebuild(live) as leftovers:  # RebuildRunning if another one is at work
            report.leftovers = leftovers
            await _rebuild_into(client, live, report, drop_unretained, concurrency, progress)
    finally:
        live.close()
    progress(f"rebuild: swapped the new view in at {live.where}")
    return report


async def _rebuild_into(
    client: Client,
    live: ReadModelStore,
    report: RebuildReport,
    drop_unretained: bool,
    concurrency: int,
    progress: Callable[[str], None],
) -> None:
    start_seq = await asyncio.to_thread(_safe, live.max_seq, 0)
    fresh = await asyncio.to_thread(live.fresh)
    try:
        outcomes, failures, listed = await _fetch_all(client, concurrency, progress)
        report.executions = listed
        rows: list[StoredOutcome] = []
        for tid, runs in outcomes.items():
            report.rebuilt.append(tid)
            rows.extend(StoredOutcome.from_outcome(o, run_id) for run_id, o in runs)
        for i in range(0, len(rows), _BATCH):
            await asyncio.to_thread(fresh.put_many, rows[i : i + _BATCH])
        report.rebuilt.sort()
        for tid, reasons in failures.items():
            if tid not in outcomes:
                report.failed[tid] = "; ".join(reasons)
        rebuilt: dict[str, tuple[int, str]] = {}
        for row in rows:
            rebuilt[row.ticket_id] = max(rebuilt.get(row.ticket_id, row.version), row.version)

        # Phase 1, without the lock: everything the current file holds. For the tickets that were
        # there before the rebuild started but were not rebuilt, ask Temporal whether it still has
        # them: only a NOT_FOUND makes a row "unretained".
        previous = await asyncio.to_thread(_safe, lambda: live.rows(since_seq=0), [])
        unlisted = sorted(
            {r.ticket_id for r in previous if r.seq <= start_seq and r.ticket_id not in rebuilt}
        )
        if unlisted:
            progress(f"rebuild: asking Temporal about {len(unlisted)} ticket(s) not rebuilt")
        states = await _describe_all(client, unlisted, concurrency)
        carry = _classify(previous, start_seq, rebuilt, states, report, drop_unretained)
        for i in range(0, len(carry), _BATCH):
            await asyncio.to_thread(fresh.put_many, carry[i : i + _BATCH])
        seen = max((r.seq for r in previous), default=start_seq)
        for tickets in (report.kept, report.running, report.newer):
            tickets.sort()

        # Phase 2, under the exclusive lock: whatever was recorded since phase 1 read. All of it is
        # newer than phase 1, so all of it is kept (the version rule still decides per ticket).
        def last_writes(conn: Connection | None) -> None:
            if conn is None:
                return
            late: list[StoredOutcome] = _safe(lambda: rows_since(conn, seen, live.table), [])
            report.concurrent += len(late)
            for i in range(0, len(late), _BATCH):
                fresh.put_many(late[i : i + _BATCH])

        await _swap_to_the_end(live, fresh, last_writes)
    except BaseException:
        fresh.discard()
        raise
    fresh.close()


async def _swap_to_the_end(
    live: ReadModelStore,
    fresh: ReadModelStore,
    last_writes: Callable[[Connection | None], None],
) -> None:
    """``live.swap_in(fresh, last_writes)`` on a thread, never abandoned halfway.

    A thread cannot be stopped: if this coroutine were cancelled while the swap runs, the caller's
    clean-up would delete the fresh file under it. So a cancellation waits for the swap, and is
    then consumed (the rebuild is complete and returns its report).
    """
    swap = asyncio.ensure_future(asyncio.to_thread(live.swap_in, fresh, last_writes))
    try:
        await asyncio.shield(swap)
    except asyncio.CancelledError:
        await swap
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()


# What describing a ticket's workflow said: its latest run's status; None for NOT_FOUND (Temporal
# no longer has it); or, as text, why Temporal's answer does not tell (another error).
_State = WorkflowExecutionStatus | str | None


def _classify(
    rows: list[StoredOutcome],
    start_seq: int,
    rebuilt: dict[str, tuple[int, str]],
    states: dict[str, _State],
    report: RebuildReport,
    drop_unretained: bool,
) -> list[StoredOutcome]:
    """The rows of the current file to merge into the fresh one (under the version rule), and
    the report's account of them. Only a row whose ticket Temporal answered NOT_FOUND for is
    ever left out, and only with ``drop_unretained``."""
    carry: list[StoredOutcome] = []
    for row in rows:
        tid = row.ticket_id
        if row.seq > start_seq:
            # Recorded by the live worker during the rebuild: newer than our listing.
            report.concurrent += 1
        elif tid in rebuilt:
            if row.version > rebuilt[tid]:
                report.newer.append(tid)
        elif tid not in states:
            pass  # not asked (cannot happen for rows of phase 1): keep, say nothing
        elif (state := states[tid]) is None:
            report.failed.setdefault(tid, NOT_IN_TEMPORAL)
            if drop_unretained:
                continue
            report.kept.append(tid)
        elif state == WorkflowExecutionStatus.RUNNING:
            report.running.append(tid)
        else:
            if isinstance(state, str):
                reason = f"Temporal could not say whether it still has it: {state}"
            else:
                reason = NOT_LISTED.format(status=state.name)
            report.failed.setdefault(tid, reason)
            report.kept.append(tid)
        carry.append(row)
    return carry


async def _describe_all(
    client: Client, ticket_ids: list[str], concurrency: int
) -> dict[str, _State]:
    """Describe each ticket's workflow (its latest run), a few at a time."""
    limit = asyncio.Semaphore(concurrency)

    async def describe(tid: str) -> tuple[str, _State]:
        async with limit:
            try:
                desc = await client.get_workflow_handle(names.workflow_id(tid)).describe()
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    return tid, None
                if _unreachable(err):
                    raise TemporalUnreachable(f"Temporal stopped answering: {err}") from err
                return tid, str(err) or err.status.name
            return tid, desc.status or "described without a status"

    tasks = [asyncio.create_task(describe(tid)) for tid in ticket_ids]
    try:
        return dict(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _fetch_all(
    client: Client, concurrency: int, progress: Callable[[str], None]
) -> tuple[dict[str, list[tuple[str, TicketOutcome]]], dict[str, list[str]], int]:
    outcomes: dict[str, list[tuple[str, TicketOutcome]]] = {}
    failures: dict[str, list[str]] = {}
    pending: set[asyncio.Task[None]] = set()
    listed = fetched = 0

    async def fetch(wf: WorkflowExecution, tid: str) -> None:
        nonlocal fetched
        handle = client.get_workflow_handle(wf.id, run_id=wf.run_id, result_type=TicketOutcome)
        try:
            outcome = await handle.result(follow_runs=False)
        except RPCError as err:
            if _unreachable(err):
                raise TemporalUnreachable(f"Temporal stopped answering: {err}") from err
            reason = HISTORY_GONE if err.status == RPCStatusCode.NOT_FOUND else f"{err}"
            failures.setdefault(tid, []).append(reason)
            return
        except Exception as err:  # a result that does not decode, or the run did not complete
            failures.setdefault(tid, []).append(f"result unreadable: {type(err).__name__}: {err}")
            return
        if outcome.duplicate_of is not None:
            # It did nothing; its newer finish time must not replace the earlier run's row.
            failures.setdefault(tid, []).append(DUPLICATE_RUN)
            return
        if outcome.ticket_id != tid:
            failures.setdefault(tid, []).append(
                f"result is for ticket {outcome.ticket_id!r}, not {tid!r}"
            )
            return
        outcomes.setdefault(tid, []).append((wf.run_id or "", outcome))
        fetched += 1

    async def drain(until: int) -> None:
        nonlocal pending
        while len(pending) > until:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = task.exception()
                if error is not None:
                    raise error  # TemporalUnreachable, or a bug

    try:
        async for wf in client.list_workflows(CLOSED_TICKETS_QUERY):
            listed += 1
            tid = names.ticket_id_from_workflow_id(wf.id) or wf.id
            if wf.status != WorkflowExecutionStatus.COMPLETED:
                status = wf.status.name if wf.status else "UNKNOWN"
                failures.setdefault(tid, []).append(f"not completed ({status})")
            else:
                pending.add(asyncio.create_task(fetch(wf, tid)))
                await drain(concurrency - 1)
            if listed % 100 == 0:
                progress(f"rebuild: {listed} closed executions listed, {fetched} outcomes fetched")
        await drain(0)
    except RPCError as err:
        if _unreachable(err):
            raise TemporalUnreachable(f"Temporal stopped answering: {err}") from err
        raise
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    progress(f"rebuild: {listed} closed executions listed, {fetched} outcomes fetched")
    return outcomes, failures, listed


def _open_live(
    where: StoreUrl | Path, progress: Callable[[str], None], migrate: bool
) -> ReadModelStore:
    try:
        return ReadModelStore(where, migrate=migrate)
    except Exception as err:
        if not is_sqlite_corruption(err):
            raise
        progress(
            f"rebuild: the current {where} is unreadable ({err}); replacing it, carrying nothing "
            "over"
        )
        return ReadModelStore(where, prepare=False)


def _safe(fn: Callable[[], T], default: T) -> T:
    """Reads of the current SQLite file; an unreadable (corrupt) file counts as empty. A database
    server's error is not "empty": it aborts the rebuild."""
    try:
        return fn()
    except Exception as err:
        if is_sqlite_corruption(err):
            return default
        raise
