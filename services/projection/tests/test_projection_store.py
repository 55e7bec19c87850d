"""The read model's version rule, its concurrency, its swap and its schema migration."""

from __future__ import annotations

import random
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from ticketflow import testkit
from ticketflow.contracts.models import Category, TicketStatus
from ticketflow.projection.activities import TRANSIENT, ProjectionActivities
from ticketflow.projection.schema import SCHEMA_VERSION
from ticketflow.projection.store import OutcomeFilter, ReadModelStore, from_micros, to_micros

from ._views import table


def test_same_outcome_twice_changes_once(store: ReadModelStore) -> None:
    outcome = testkit.outcome("t-1")
    assert store.record(outcome, run_id="run-a") is True
    before = store.get("t-1")
    assert store.record(outcome, run_id="run-a") is False
    assert store.get("t-1") == before  # recorded_at and seq untouched too
    assert store.count() == 1
    assert store.get("t-1").outcome == outcome


def test_reserialised_outcome_is_the_same_version(store: ReadModelStore) -> None:
    # Newer code may serialise the same outcome differently (a field added with a default);
    # the version is (finished_at, run_id), not the content, so that is no change.
    outcome = testkit.outcome("t-1")
    assert store.record(outcome, run_id="run-a")
    same = outcome.model_copy(update={"escalation_reason": "differs"})
    assert store.record(same, run_id="run-a") is False
    assert store.get("t-1").outcome.escalation_reason is None


def test_older_after_newer_changes_nothing(store: ReadModelStore) -> None:
    older = testkit.outcome("t-1", status=TicketStatus.ESCALATED)
    newer = testkit.outcome(
        "t-1", status=TicketStatus.RESOLVED, finished_at=testkit.BASE_TIME + timedelta(seconds=1)
    )
    assert store.record(newer, run_id="run-b")
    assert store.record(older, run_id="run-a") is False
    assert store.get("t-1").status == "RESOLVED"
    assert store.get("t-1").run_id == "run-b"


def test_newer_replaces_older(store: ReadModelStore) -> None:
    older = testkit.outcome("t-1", status=TicketStatus.ESCALATED)
    newer = testkit.outcome(
        "t-1",
        status=TicketStatus.RESOLVED,
        finished_at=testkit.BASE_TIME + timedelta(microseconds=1),
    )
    assert store.record(older, run_id="run-a")
    assert store.record(newer, run_id="run-b")
    row = store.get("t-1")
    assert (row.status, row.run_id, row.finished_us) == (
        "RESOLVED",
        "run-b",
        to_micros(newer.finished_at),
    )


def test_equal_finish_is_decided_by_run_id_in_any_order(tmp_path: Path) -> None:
    a = testkit.outcome("t-1", status=TicketStatus.ESCALATED)
    b = testkit.outcome("t-1", status=TicketStatus.RESOLVED)
    one, two = ReadModelStore(tmp_path / "one.db"), ReadModelStore(tmp_path / "two.db")
    one.record(a, run_id="run-a")
    one.record(b, run_id="run-b")
    two.record(b, run_id="run-b")
    two.record(a, run_id="run-a")
    assert table(one) == table(two)
    assert one.get("t-1").run_id == "run-b"


def test_concurrent_writers_from_threads(store: ReadModelStore) -> None:
    """8 threads (activity slots), each with its own shuffled deliveries of 10 versions of 20
    tickets: every ticket ends at its newest version, and exactly the winning writes changed it."""
    tickets = [f"t-{i}" for i in range(20)]
    versions = range(10)
    deliveries = [(tid, v, run) for tid in tickets for v in versions for run in ("run-x", "run-y")]
    per_thread = []
    for seed in range(8):
        mine = list(deliveries)
        random.Random(seed).shuffle(mine)
        per_thread.append(mine)
    start = threading.Barrier(8)

    def work(mine: list[tuple[str, int, str]]) -> int:
        start.wait()
        changed = 0
        for tid, v, run in mine:
            outcome = testkit.outcome(tid, finished_at=testkit.BASE_TIME + timedelta(seconds=v))
            changed += store.record(outcome, run_id=run)
        return changed

    with ThreadPoolExecutor(max_workers=8) as pool:
        changes = sum(pool.map(work, per_thread))

    assert store.count() == len(tickets)
    newest = to_micros(testkit.BASE_TIME + timedelta(seconds=max(versions)))
    for tid in tickets:
        row = store.get(tid)
        assert (row.finished_us, row.run_id) == (newest, "run-y")
    # Every change raised the version, so at most one per distinct version per ticket.
    assert len(tickets) <= changes <= len(tickets) * len(versions) * 2
    seqs = [r.seq for r in store.rows()]
    assert len(set(seqs)) == len(seqs)


def test_wal_mode_and_schema_version(sqlite_store: ReadModelStore) -> None:
    conn = sqlite3.connect(sqlite_store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()


def test_list_orders_by_finish_then_ticket_and_filters(store: ReadModelStore) -> None:
    t0 = testkit.BASE_TIME
    store.record(testkit.outcome("b", finished_at=t0))
    store.record(testkit.outcome("a", finished_at=t0))
    store.record(testkit.outcome("c", finished_at=t0 - timedelta(seconds=1)))
    store.record(
        testkit.outcome(
            "d", status=TicketStatus.ESCALATED, category=None, finished_at=t0 + timedelta(1)
        )
    )
    assert [r.ticket_id for r in store.list(OutcomeFilter())] == ["c", "a", "b", "d"]
    assert [r.ticket_id for r in store.list(OutcomeFilter(), after=(to_micros(t0), "a"))] == [
        "b",
        "d",
    ]
    assert [r.ticket_id for r in store.list(OutcomeFilter(status="ESCALATED"))] == ["d"]
    assert [r.ticket_id for r in store.list(OutcomeFilter(category="account"), limit=2)] == [
        "c",
        "a",
    ]
    window = OutcomeFilter(finished_after_us=to_micros(t0), finished_before_us=to_micros(t0) + 1)
    assert [r.ticket_id for r in store.list(window)] == ["a", "b"]


def test_micros_round_trip() -> None:
    assert from_micros(to_micros(testkit.BASE_TIME)) == testkit.BASE_TIME
    assert to_micros(testkit.BASE_TIME.replace(tzinfo=None)) == to_micros(testkit.BASE_TIME)


def test_missing_file_is_an_empty_view_and_the_next_write_recreates_it(
    sqlite_store: ReadModelStore,
) -> None:
    store = sqlite_store
    store.record(testkit.outcome("t-1"))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store.path}{suffix}").unlink(missing_ok=True)
    assert store.get("t-1") is None
    assert store.list(OutcomeFilter()) == []
    assert store.record(testkit.outcome("t-2"))
    assert [r.ticket_id for r in store.rows()] == ["t-2"]


def test_swap_in_replaces_the_file_and_drops_old_wal(tmp_path: Path) -> None:
    live = ReadModelStore(tmp_path / "readmodel.db")
    live.record(testkit.outcome("old"))
    fresh = ReadModelStore(tmp_path / "readmodel.db.fresh", shared_lock=False)
    fresh.record(testkit.outcome("new"))
    seen: list[list[str]] = []
    live.swap_in(
        fresh,
        lambda conn: seen.append(
            [r[0] for r in conn.execute(text("SELECT ticket_id FROM outcomes"))]
        ),
    )
    assert seen == [["old"]]
    assert [r.ticket_id for r in live.rows()] == ["new"]
    assert not fresh.path.exists()
    assert not any("fresh" in p.name for p in tmp_path.iterdir())
    # The new file is in WAL mode and takes writes.
    assert live.record(testkit.outcome("next"))
    conn = sqlite3.connect(live.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_readers_and_writers_keep_working_across_swaps(tmp_path: Path) -> None:
    """Threads read and write while the file is swapped repeatedly: no error, no torn read."""
    live = ReadModelStore(tmp_path / "readmodel.db")
    live.record(testkit.outcome("stable"))
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                row = live.get("stable")
                assert row is not None and row.ticket_id == "stable"
                live.list(OutcomeFilter(), limit=10)
            except BaseException as err:
                errors.append(err)
                return

    def writer(n: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                live.record(testkit.outcome(f"w{n}-{i}"))
            except BaseException as err:
                errors.append(err)
                return
            i += 1

    threads = [threading.Thread(target=reader) for _ in range(3)]
    threads += [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(20):
            fresh = ReadModelStore(tmp_path / f"fresh-{i}.db", shared_lock=False)
            fresh.record(testkit.outcome("stable"))
            live.swap_in(fresh)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert live.get("stable") is not None


def test_migrates_a_version_1_file(tmp_path: Path) -> None:
    path = tmp_path / "readmodel.db"
    outcome = testkit.outcome("t-1", category=Category.REFUND)
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE outcomes (
            ticket_id TEXT PRIMARY KEY, status TEXT NOT NULL, category TEXT,
            customer_id TEXT NOT NULL, finished_at TEXT NOT NULL, content_hash TEXT NOT NULL,
            outcome_json TEXT NOT NULL, recorded_at TEXT NOT NULL) STRICT;
        CREATE INDEX outcomes_status ON outcomes (status, finished_at);
        """
    )
    conn.execute(
        "INSERT INTO outcomes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ("t-1", "RESOLVED", "refund", "cust-1", "x", "h", outcome.model_dump_json(), "x"),
    )
    conn.commit()
    conn.close()
    store = ReadModelStore(path)
    row = store.get("t-1")
    assert row.outcome == outcome
    assert (row.category, row.finished_us) == ("refund", to_micros(outcome.finished_at))


def test_activity_records_with_the_run_id(store: ReadModelStore) -> None:
    acts = ProjectionActivities(store)
    env = ActivityEnvironment()
    outcome = testkit.outcome("t-1")
    assert env.run(acts.record_outcome, outcome) is True
    assert env.run(acts.record_outcome, outcome) is False  # a retry
    assert store.get("t-1").run_id == env.info.workflow_run_id


def test_a_database_error_fails_the_activity_retryably_without_the_outcome(
    store: ReadModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLAlchemy's message quotes the statement's parameters (the outcome, so the customer's
    ticket): the failure that reaches Temporal carries the driver's line only, and is retryable."""
    outcome = testkit.outcome("t-1")

    def lost(*args: object, **kwargs: object) -> bool:
        raise sa_exc.OperationalError(
            "INSERT INTO outcomes ...",
            {"outcome_json": outcome.model_dump_json()},
            psycopg.OperationalError("server closed the connection unexpectedly"),
        )

    monkeypatch.setattr(store, "record", lost)
    with pytest.raises(ApplicationError) as info:
        ActivityEnvironment().run(ProjectionActivities(store).record_outcome, outcome)
    assert info.value.type == TRANSIENT and not info.value.non_retryable
    assert "server closed the connection" in info.value.message
    assert outcome.ticket.body not in info.value.message
    assert info.value.__cause__ is None
