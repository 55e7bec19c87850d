"""Engines: a private SQLite file whose writers queue (readers do not), PostgreSQL that recovers
after its server restarts, and which errors count as transient on each."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import Engine, NullPool, text
from sqlalchemy.exc import DBAPIError, OperationalError
from ticketflow.storage import describe, is_transient, open_engine, parse_store_url
from ticketflow.storage.engine import reader
from ticketflow.testkit import PostgresServer


def test_a_new_sqlite_store_is_private(tmp_path: Path) -> None:
    url = parse_store_url("sqlite:///fresh/store.db", data_dir=tmp_path)
    engine = open_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (a INTEGER)"))
    finally:
        engine.dispose()
    assert stat.S_IMODE((tmp_path / "fresh").stat().st_mode) == 0o700
    for path in (tmp_path / "fresh").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_an_unpooled_sqlite_engine_keeps_no_connection_open(tmp_path: Path) -> None:
    """A file replaced under the engine (rebuild's swap) must not be read through a connection
    that still has the old one open."""
    url = parse_store_url("sqlite:///store.db", data_dir=tmp_path)
    engine = open_engine(url, sqlite_pooled=False)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (a INTEGER)"))
        assert isinstance(engine.pool, NullPool)
    finally:
        engine.dispose()


def test_sqlite_writers_queue_from_their_first_read_and_readers_do_not(tmp_path: Path) -> None:
    url = parse_store_url("sqlite:///store.db", data_dir=tmp_path)
    first = open_engine(url)
    impatient = open_engine(url, sqlite_busy_timeout_s=0)
    try:
        with first.begin() as conn:
            conn.execute(text("CREATE TABLE refunds (ticket_id TEXT PRIMARY KEY)"))
        with first.begin() as conn:
            # A read-check-write: the write lock is held from the SELECT on ...
            assert conn.execute(text("SELECT count(*) FROM refunds")).scalar_one() == 0
            # ... so a second writer cannot even read its way to "not refunded yet".
            with pytest.raises(OperationalError, match="database is locked"):
                with impatient.begin() as other:
                    other.execute(text("SELECT count(*) FROM refunds"))
            # A reader is not blocked, and sees only what is committed.
            with reader(impatient).connect() as other:
                conn.execute(text("INSERT INTO refunds VALUES ('t-1')"))
                assert other.execute(text("SELECT count(*) FROM refunds")).scalar_one() == 0
        with reader(impatient).connect() as other:
            assert other.execute(text("SELECT count(*) FROM refunds")).scalar_one() == 1
    finally:
        first.dispose()
        impatient.dispose()


def test_a_constraint_violation_is_not_transient_and_its_message_holds_no_data(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (k TEXT PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t VALUES (:k)"), {"k": "my card was charged twice"})
    with pytest.raises(DBAPIError) as raised, engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (:k)"), {"k": "my card was charged twice"})
    assert not is_transient(raised.value)
    # SQLAlchemy's message hides the parameters; `describe` drops the server's DETAIL line too.
    assert "SQL parameters hidden" in str(raised.value)
    assert "charged twice" not in describe(raised.value)
    assert "unique" in describe(raised.value).lower()


def test_a_postgresql_restart_fails_calls_transiently_then_the_pool_recovers() -> None:
    with PostgresServer() as server:
        engine = open_engine(parse_store_url(server.url(), data_dir=Path(".")), connect_timeout_s=2)
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT 1")).scalar_one() == 1
            server.kill()
            with pytest.raises(DBAPIError) as raised, engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            assert is_transient(raised.value)
            server.start()
            # The pooled connections died with the server; pre-ping replaces them.
            with engine.connect() as conn:
                assert conn.execute(text("SELECT 1")).scalar_one() == 1
        finally:
            engine.dispose()
