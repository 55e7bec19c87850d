"""PostgresServer: a real server on 127.0.0.1 that a test can crash and restart without losing
committed rows, and that leaves no process behind."""

from __future__ import annotations

import os

import psycopg
import pytest
from ticketflow.testkit import PostgresServer


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_fresh_databases_are_separate_and_reachable_over_loopback(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    assert postgres_url.startswith(f"postgresql://postgres@127.0.0.1:{postgres_server.port}/")
    other = postgres_server.create_database()
    try:
        with psycopg.connect(postgres_url) as conn:
            conn.execute("CREATE TABLE t (a int)")
        with psycopg.connect(other) as conn:
            found = conn.execute("SELECT to_regclass('public.t')").fetchone()
        assert found == (None,)
    finally:
        postgres_server.drop_database(other)


def test_a_killed_server_restarts_with_its_committed_rows() -> None:
    with PostgresServer() as server:
        url = server.create_database()
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE t (a int)")
            conn.execute("INSERT INTO t VALUES (1)")
        pid = server.pid
        assert pid is not None
        server.kill()
        assert not _alive(pid)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2)
        server.start()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT a FROM t").fetchall() == [(1,)]


def test_close_stops_the_server_and_removes_its_directory() -> None:
    server = PostgresServer().start()
    pid, root = server.pid, server.root
    assert pid is not None and root.exists()
    server.close()
    assert not _alive(pid)
    assert not root.exists()
