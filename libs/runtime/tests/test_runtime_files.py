"""Private files: created 0600 / 0700 whatever the umask, older ones tightened with one line each."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from ticketflow.runtime.files import private_dir, private_file, private_sqlite


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask, so nothing passes by the umask's grace."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_file_and_dir_are_private(tmp_path: Path, open_umask: None) -> None:
    lines: list[str] = []
    data = tmp_path / "a" / "data"
    private_dir(data, report=lines.append)
    assert mode(data) == 0o700
    assert private_file(data / "x.db", report=lines.append)
    assert mode(data / "x.db") == 0o600 and (data / "x.db").read_bytes() == b""
    assert lines == []


def test_older_files_are_tightened_with_one_line_each(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    db = data / "x.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (a)")
        conn.execute("INSERT INTO t VALUES ('kept')")
    for path in (db, data / "x.db-wal", data / "x.db-shm"):
        path.touch()
        path.chmod(0o644)
    lines: list[str] = []
    private_dir(data, report=lines.append)
    private_sqlite(db, report=lines.append)
    assert mode(data) == 0o700
    for path in (db, data / "x.db-wal", data / "x.db-shm"):
        assert mode(path) == 0o600, path
    assert len(lines) == 4
    assert all("0644" in line or "0755" in line for line in lines)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT a FROM t").fetchall() == [("kept",)]
    # Already private: nothing to say.
    private_sqlite(db, report=lines.append)
    private_dir(data, report=lines.append)
    assert len(lines) == 4


def test_a_service_leaves_a_dir_it_was_given(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    private_dir(tmp_path, tighten=False)
    assert mode(tmp_path) == 0o755


def test_sqlite_side_files_follow_the_database(tmp_path: Path, open_umask: None) -> None:
    db = tmp_path / "x.db"
    private_sqlite(db)
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (a)")
        assert mode(tmp_path / "x.db-wal") == 0o600
        assert mode(tmp_path / "x.db-shm") == 0o600
    finally:
        conn.close()
