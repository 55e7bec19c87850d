"""PostgresServer: a real server on 127.0.0.1 that a test can crash and restart without losing
committed rows, and that leaves no process behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import psycopg
import pytest
from ticketflow.testkit import PostgresServer, eventually


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


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for whoever adopted it to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


STARTS_AND_WAITS = """
import sys
from ticketflow.testkit import PostgresServer
server = PostgresServer().start()
print(server.pid, server.root, flush=True)
sys.stdin.read()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux parent-death signal")
def test_the_server_dies_with_the_process_that_started_it() -> None:
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTS_AND_WAITS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert starter.stdout is not None
        line = starter.stdout.readline()
        assert line, f"the starter exited with {starter.wait()} before the server was up"
        pid_text, root = line.split()
        pid = int(pid_text)
        assert _running(pid)
        starter.kill()  # SIGKILL: no __exit__, no atexit; only the kernel can tell the server
        starter.wait()
        eventually(lambda: not _running(pid), timeout=30, what=f"postgres {pid} gone")
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()
        if "root" in locals():
            shutil.rmtree(root, ignore_errors=True)
