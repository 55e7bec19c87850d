"""``ticketflow-projection rebuild``: re-derive the read model from Temporal and swap it in.

1. List the closed ``TicketWorkflow`` executions (visibility) and fetch each completed run's result
   (a ``TicketOutcome``, through the contracts' data converter), a few at a time.
2. Write them into a fresh file next to ``readmodel.db``, under the same version rule as the
   activity, so the result equals the incrementally built view.
3. Merge from the current file: rows that the running projection recorded during the rebuild
   (their ``seq`` is above the one noted at the start), and, unless ``drop_unretained``, the rows of
   tickets that Temporal can no longer give back (history deleted or past retention). Those rows
   are then the only record of those tickets, and dropping them is not this command's decision.
4. Swap the fresh file in atomically (`ReadModel.swap_in`). The last concurrent writes are merged
   under the exclusive lock, so none is lost. The gRPC API keeps answering, from the old file
   before the swap and from the new one after it.

A ticket that cannot be rebuilt is reported with the reason. A Temporal server that stops answering
aborts the rebuild and leaves the current file untouched. Otherwise an outage would look like
"every history is gone" and would replace a good view with an empty one.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.exceptions import TemporalError
from temporalio.service import RPCError, RPCStatusCode
from ticketflow.contracts import DATA_CONVERTER, names
from ticketflow.contracts.models import TicketOutcome

from .store import ReadModel, StoredOutcome, rows_since

__all__ = [
    "CLOSED_TICKETS_QUERY",
    "RebuildReport",
    "TemporalUnreachable",
    "connect_once",
    "rebuild",
]

CLOSED_TICKETS_QUERY = f'WorkflowType = "{names.TICKET_WORKFLOW}" AND ExecutionStatus != "Running"'
HISTORY_GONE = "history gone (deleted or past retention)"
NOT_IN_TEMPORAL = "not in Temporal any more (history deleted or past retention)"

_UNREACHABLE_CODES = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.UNAUTHENTICATED,
    RPCStatusCode.PERMISSION_DENIED,
    RPCStatusCode.CANCELLED,
}
_BATCH = 500


class TemporalUnreachable(RuntimeError):
    """Temporal did not answer (at connect or during the rebuild); nothing was replaced."""


@dataclass
class RebuildReport:
    path: Path
    executions: int = 0
    rebuilt: list[str] = field(default_factory=list)
    # ticket_id -> why it was not re-derived from Temporal
    failed: dict[str, str] = field(default_factory=dict)
    # tickets among `failed` whose previous row was carried over
    kept: list[str] = field(default_factory=list)
    # rows the running projection recorded while the rebuild ran, merged into the new file
    concurrent: int = 0

    def lines(self) -> list[str]:
        out = [f"rebuild: {len(self.rebuilt)} ticket(s) rebuilt from Temporal into {self.path}"]
        if self.failed:
            out.append(f"rebuild: {len(self.failed)} ticket(s) could not be rebuilt:")
            kept = set(self.kept)
            for tid in sorted(self.failed):
                note = "; kept its previous row" if tid in kept else ""
                out.append(f"  {tid}: {self.failed[tid]}{note}")
        if self.concurrent:
            out.append(
                f"rebuild: {self.concurrent} outcome(s) recorded by the running projection "
                "during the rebuild were merged"
            )
        return out


async def connect_once(address: str, namespace: str, timeout_s: float) -> Client:
    """One connection attempt under a deadline; raises `TemporalUnreachable`."""
    try:
        async with asyncio.timeout(timeout_s):
            return await Client.connect(
                address,
                namespace=namespace,
                data_converter=DATA_CONVERTER,
                connect_timeout=timedelta(seconds=timeout_s),
            )
    except (TimeoutError, RuntimeError, TemporalError, OSError) as err:
        raise TemporalUnreachable(
            f"Temporal at {address} (namespace {namespace}) is unreachable: {err or type(err).__name__}"
        ) from err


def _unreachable(err: RPCError) -> bool:
    return err.status in _UNREACHABLE_CODES


async def rebuild(
    client: Client,
    path: Path,
    *,
    drop_unretained: bool = False,
    concurrency: int = 16,
    progress: Callable[[str], None] = lambda line: None,
) -> RebuildReport:
    """Re-derive the view at ``path`` from Temporal and swap it in; see the module docstring."""
    report = RebuildReport(path=path)
    live = _open_live(path, progress)
    start_seq = _safe(live.max_seq, 0)
    fresh_path = path.with_name(f"{path.name}.rebuild-{os.getpid()}")
    _remove_db(fresh_path)
    fresh = ReadModel(fresh_path, shared_lock=False)
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

        # Phase 1, without the lock: everything the current file holds.
        previous = _safe(lambda: live.rows(since_seq=0), [])
        seen = _merge(previous, start_seq, set(outcomes), fresh, report, drop_unretained)

        # Phase 2, under the exclusive lock: whatever was recorded since phase 1 read.
        def last_writes(conn: sqlite3.Connection | None) -> None:
            if conn is None:
                return
            late = _safe(lambda: rows_since(conn, seen), [])
            _merge(late, start_seq, set(outcomes), fresh, report, drop_unretained)

        await asyncio.to_thread(live.swap_in, fresh, last_writes)
    except BaseException:
        _remove_db(fresh_path)
        raise
    progress(f"rebuild: swapped the new view in at {path}")
    return report


def _merge(
    rows: list[StoredOutcome],
    start_seq: int,
    rebuilt: set[str],
    fresh: ReadModel,
    report: RebuildReport,
    drop_unretained: bool,
) -> int:
    """Carry rows of the current file over into ``fresh``; the highest seq seen."""
    carry: list[StoredOutcome] = []
    for row in rows:
        if row.seq > start_seq:
            # Recorded by the live worker during the rebuild: newer than our listing, keep it
            # (the version rule decides if it races a rebuilt row of the same ticket).
            report.concurrent += 1
            carry.append(row)
        elif row.ticket_id not in rebuilt:
            report.failed.setdefault(row.ticket_id, NOT_IN_TEMPORAL)
            if not drop_unretained:
                report.kept.append(row.ticket_id)
                carry.append(row)
    for i in range(0, len(carry), _BATCH):
        fresh.put_many(carry[i : i + _BATCH])
    return max((r.seq for r in rows), default=start_seq)


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
            errors = [t.exception() for t in done if t.exception() is not None]
            if errors:
                raise errors[0]  # TemporalUnreachable, or a bug

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


def _open_live(path: Path, progress: Callable[[str], None]) -> ReadModel:
    try:
        return ReadModel(path)
    except sqlite3.DatabaseError as err:
        progress(
            f"rebuild: the current {path} is unreadable ({err}); replacing it, carrying nothing over"
        )
        return ReadModel(path, prepare=False)


def _safe(fn, default):
    """Reads of the current file; an unreadable (corrupt) file counts as empty."""
    try:
        return fn()
    except sqlite3.DatabaseError:
        return default


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal", ".lock", ".gate"):
        try:
            os.unlink(f"{path}{suffix}")
        except FileNotFoundError:
            pass
