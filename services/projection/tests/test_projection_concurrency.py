"""Concurrency of the read model past one process: writers with their own engines (projection
replicas) on PostgreSQL, rebuild's swap while writes and reads continue (both backends), and a
read while PostgreSQL is down (UNAVAILABLE with a message, never a hang)."""

from __future__ import annotations

import random
import threading
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from sqlalchemy import Connection
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from ticketflow import testkit
from ticketflow.projection.activities import TRANSIENT, ProjectionActivities
from ticketflow.projection.grpc_api import ReadApiServer
from ticketflow.projection.store import OutcomeFilter, ReadModelStore, StoredOutcome, rows_since
from ticketflow.storage import StoreUrl, parse_store_url
from ticketflow.testkit import PostgresServer
from ticketflow.v1 import readmodel_pb2, readmodel_pb2_grpc


def test_replicas_writing_old_and_new_outcomes_in_any_order_keep_the_newest(
    postgres_url: str, tmp_path: Path
) -> None:
    """Two writers, each with its own engine (its own pool, as two projection replicas), record
    every version of the same tickets in their own random order: each ticket ends at its newest
    version, whatever the interleaving (the upsert is one statement under the row lock)."""
    url = parse_store_url(postgres_url, data_dir=tmp_path)
    ReadModelStore(url).close()  # migrated once, as a deploy does
    tickets = [f"t-{i}" for i in range(20)]
    versions = range(12)
    work = [(tid, v, run) for tid in tickets for v in versions for run in ("run-a", "run-b")]
    errors: list[BaseException] = []

    def replica(seed: int) -> None:
        store = ReadModelStore(url, migrate=False)
        try:
            mine = work[:]
            random.Random(seed).shuffle(mine)
            for tid, v, run in mine:
                finished = testkit.BASE_TIME + timedelta(seconds=v)
                store.record(testkit.outcome(tid, finished_at=finished), run_id=run)
        except BaseException as err:  # reported below
            errors.append(err)
        finally:
            store.close()

    threads = [threading.Thread(target=replica, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = ReadModelStore(url, migrate=False)
    try:
        newest = (testkit.BASE_TIME + timedelta(seconds=max(versions))).timestamp()
        rows = {r.ticket_id: r for r in store.rows()}
        assert sorted(rows) == sorted(tickets)
        for row in rows.values():
            assert (row.finished_us, row.run_id) == (round(newest * 1_000_000), "run-b")
        seqs = [r.seq for r in rows.values()]
        assert len(set(seqs)) == len(seqs)
    finally:
        store.close()


def test_a_swap_while_writes_and_reads_continue_loses_no_write_and_is_atomic(
    store: ReadModelStore,
) -> None:
    """Rebuild's merge and swap (rebuild.py's phases) while a writer keeps recording and a reader
    keeps listing: every acknowledged write is in the view afterwards, and every read sees all of
    the old view or all of the new one, never a mix or an empty table."""
    old = [f"old-{i}" for i in range(60)]
    new = [f"new-{i}" for i in range(60)]
    store.put_many([StoredOutcome.from_outcome(testkit.outcome(t), "r") for t in old])
    acked: list[str] = []
    errors: list[BaseException] = []
    reads: list[tuple[int, int]] = []
    stop = threading.Event()

    def writer() -> None:
        i = 0
        try:
            while not stop.is_set():
                store.record(testkit.outcome(f"w-{i}"), run_id="r")
                acked.append(f"w-{i}")
                i += 1
        except BaseException as err:
            errors.append(err)

    def reader() -> None:
        try:
            while not stop.is_set():
                ids = [r.ticket_id for r in store.list(OutcomeFilter(), limit=100_000)]
                reads.append(
                    (sum(t.startswith("old-") for t in ids), sum(t.startswith("new-") for t in ids))
                )
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    try:
        testkit.eventually(lambda: len(acked) >= 5, what="the writer recording")
        fresh = store.fresh()
        try:
            fresh.put_many([StoredOutcome.from_outcome(testkit.outcome(t), "r") for t in new])
            # Phase 1, without the lock: carry the current rows over, except the old view's
            # (as --drop-unretained drops the tickets Temporal no longer has).
            current = store.rows()
            fresh.put_many([r for r in current if not r.ticket_id.startswith("old-")])
            seen = max(r.seq for r in current)

            def last_writes(conn: Connection | None) -> None:  # phase 2: under the lock
                assert conn is not None
                fresh.put_many(rows_since(conn, seen, store.table))

            store.swap_in(fresh, last_writes)
        finally:
            fresh.close()
        after_swap = len(acked)
        testkit.eventually(lambda: len(acked) >= after_swap + 5, what="writes after the swap")
        count = len(reads)
        testkit.eventually(lambda: len(reads) >= count + 2, what="reads after the swap")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    ids = {r.ticket_id for r in store.rows()}
    assert set(acked) <= ids
    assert not ids & set(old) and set(new) <= ids
    assert reads and all(r in ((len(old), 0), (0, len(new))) for r in reads)
    assert reads[-1] == (0, len(new))


@pytest.mark.timeout(120)  # starts a PostgreSQL of its own, twice
async def test_a_read_while_postgresql_is_down_is_unavailable_and_recovers(
    tmp_path: Path,
) -> None:
    with PostgresServer() as server:
        url: StoreUrl = parse_store_url(server.create_database(), data_dir=tmp_path)
        store = ReadModelStore(url)
        store.record(testkit.outcome("t-1"), run_id="r")
        api = ReadApiServer(store, "127.0.0.1:0")
        port = await api.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stub = readmodel_pb2_grpc.ReadModelServiceStub(channel)
        request = readmodel_pb2.GetOutcomeRequest(ticket_id="t-1")
        try:
            assert (await stub.GetOutcome(request, timeout=30)).outcome.ticket_id == "t-1"
            server.kill()
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.GetOutcome(request, timeout=30)  # the engine's timeouts answer first
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "read model unavailable" in (info.value.details() or "")
            server.start()

            async def answers() -> bool:
                try:
                    await stub.GetOutcome(request, timeout=30)
                except grpc.aio.AioRpcError:
                    return False
                return True

            await testkit.eventually_async(answers, what="reads after PostgreSQL is back")
        finally:
            await channel.close()
            await api.stop(0)
            store.close()


@pytest.mark.timeout(120)  # starts a PostgreSQL of its own, twice
def test_postgresql_restarted_under_load_loses_no_outcome(tmp_path: Path) -> None:
    """Two activity slots record outcomes while the server is killed and started again: the
    attempts in between fail retryably (ReadModelUnavailable) and, retried as Temporal does,
    every outcome ends up recorded once."""
    tickets = [f"t-{i}" for i in range(400)]
    with PostgresServer() as server:
        store = ReadModelStore(parse_store_url(server.create_database(), data_dir=tmp_path))
        acts = ProjectionActivities(store)
        done: list[str] = []
        failures: list[str] = []
        errors: list[BaseException] = []

        def slot(mine: list[str]) -> None:
            env = ActivityEnvironment()
            try:
                for tid in mine:
                    while True:  # Temporal's retry policy, in short
                        try:
                            env.run(acts.record_outcome, testkit.outcome(tid))
                            break
                        except ApplicationError as err:
                            assert not err.non_retryable
                            failures.append(err.type or "")
                            threading.Event().wait(0.02)  # the retry's backoff
                    done.append(tid)
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=slot, args=(tickets[i::2],)) for i in range(2)]
        for t in threads:
            t.start()
        try:
            testkit.eventually(lambda: len(done) >= 10, what="outcomes recorded")
            server.kill()
            testkit.eventually(lambda: len(failures) >= 2, what="attempts failing")
            server.start()
        finally:
            for t in threads:
                t.join(timeout=90)
        try:
            assert errors == []
            assert sorted(done) == sorted(tickets)
            assert set(failures) == {TRANSIENT}
            assert sorted(r.ticket_id for r in store.rows()) == sorted(tickets)
        finally:
            store.close()
