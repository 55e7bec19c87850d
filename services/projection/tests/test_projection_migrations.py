"""The read model's migrations: revision 0001 adopts the SQLite files that the release before
Alembic made (built here with that release's exact DDL and upsert), creates the table on an empty
file and on PostgreSQL, is idempotent, and refuses what it does not know."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect
from ticketflow import testkit
from ticketflow.projection.schema import MIGRATIONS, UnsupportedSchema
from ticketflow.projection.store import ReadModelStore, StoredOutcome, to_micros
from ticketflow.storage import (
    SchemaMismatch,
    current_revision,
    open_engine,
    parse_store_url,
    require_current,
    upgrade,
)

# schema.py and _codec.py before Alembic (user_version 2), verbatim.
V2_SCHEMA = """
CREATE TABLE IF NOT EXISTS outcomes (
    ticket_id    TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL,
    finished_us  INTEGER NOT NULL,
    status       TEXT NOT NULL,
    category     TEXT,
    customer_id  TEXT NOT NULL,
    outcome_json TEXT NOT NULL,
    recorded_at  TEXT NOT NULL,
    seq          INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS outcomes_finished ON outcomes (finished_us, ticket_id);
CREATE INDEX IF NOT EXISTS outcomes_status ON outcomes (status, finished_us, ticket_id);
CREATE INDEX IF NOT EXISTS outcomes_category ON outcomes (category, finished_us, ticket_id);
CREATE INDEX IF NOT EXISTS outcomes_seq ON outcomes (seq);
"""
V2_INSERT = """
INSERT INTO outcomes (ticket_id, run_id, finished_us, status, category, customer_id,
    outcome_json, recorded_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def _v2_file(path: Path, *rows: StoredOutcome) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN IMMEDIATE")
        for statement in V2_SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 2")
        for seq, row in enumerate(rows, start=1):
            conn.execute(
                V2_INSERT,
                (
                    row.ticket_id,
                    row.run_id,
                    row.finished_us,
                    row.status,
                    row.category,
                    row.customer_id,
                    row.outcome_json,
                    row.recorded_at,
                    seq,
                ),
            )
        conn.execute("COMMIT")
    finally:
        conn.close()


def _user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def test_a_version_2_file_is_adopted_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "readmodel.db"
    one = StoredOutcome.from_outcome(testkit.outcome("t-1"), "run-1")
    two = StoredOutcome.from_outcome(testkit.outcome("t-2"), "run-2")
    _v2_file(path, one, two)
    url = parse_store_url(f"sqlite:///{path}", data_dir=tmp_path)
    engine = open_engine(url)
    try:
        assert current_revision(engine, MIGRATIONS) is None
        with pytest.raises(SchemaMismatch, match="ticketflow-projection migrate"):
            require_current(engine, MIGRATIONS, url.shown)
        assert upgrade(engine, MIGRATIONS) == (None, "0001")
        assert upgrade(engine, MIGRATIONS) == ("0001", "0001")  # idempotent
        require_current(engine, MIGRATIONS, url.shown)
    finally:
        engine.dispose()
    store = ReadModelStore(path)
    assert [(r.ticket_id, r.run_id, r.seq) for r in store.rows()] == [
        ("t-1", "run-1", 1),
        ("t-2", "run-2", 2),
    ]
    assert store.get("t-1") == dataclasses.replace(one, seq=1)
    assert _user_version(path) == 2
    # Writes carry on under the version rule and the seq order.
    assert store.record(testkit.outcome("t-3"), run_id="run-3")
    assert store.max_seq() == 3


def test_a_version_1_file_is_rewritten_in_place(tmp_path: Path) -> None:
    path = tmp_path / "readmodel.db"
    outcome = testkit.outcome("t-1")
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
        ("t-1", "RESOLVED", None, "cust-1", "x", "h", outcome.model_dump_json(), "x"),
    )
    conn.commit()
    conn.close()
    store = ReadModelStore(path)
    row = store.get("t-1")
    assert row is not None and row.finished_us == to_micros(outcome.finished_at)
    assert _user_version(path) == 2
    tables = set(inspect(store.engine).get_table_names())
    assert "outcomes_v1" not in tables and "readmodel_schema_version" in tables


def test_an_empty_file_gets_the_table(tmp_path: Path) -> None:
    path = tmp_path / "readmodel.db"
    path.touch()
    store = ReadModelStore(path)
    assert store.count() == 0 and _user_version(path) == 2


def test_a_newer_file_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "readmodel.db"
    _v2_file(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    with pytest.raises(UnsupportedSchema, match="newer"):
        ReadModelStore(path)
    assert _user_version(path) == 3
    engine = open_engine(parse_store_url(f"sqlite:///{path}", data_dir=tmp_path))
    try:
        assert current_revision(engine, MIGRATIONS) is None
    finally:
        engine.dispose()


def test_postgresql_gets_the_table_once(postgres_url: str, tmp_path: Path) -> None:
    url = parse_store_url(postgres_url, data_dir=tmp_path)
    engine = open_engine(url)
    try:
        with pytest.raises(SchemaMismatch, match="has no schema yet"):
            ReadModelStore(url, engine=engine, migrate=False)
        assert upgrade(engine, MIGRATIONS) == (None, "0001")
        assert upgrade(engine, MIGRATIONS) == ("0001", "0001")
        store = ReadModelStore(url, engine=engine, migrate=False)
        assert store.record(testkit.outcome("t-1"), run_id="r")
        indexes = {i["name"] for i in inspect(engine).get_indexes("outcomes")}
        assert {"outcomes_finished", "outcomes_status", "outcomes_category"} <= indexes
    finally:
        engine.dispose()
