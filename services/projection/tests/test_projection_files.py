"""``readmodel.db`` is private: 0600 with its WAL side files and lock files, in a 0700 dir the
projection creates, also after a rebuild's swap or a write that recreates a deleted file; a file an
older version left readable by others is tightened at open with one log line each."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from ticketflow import testkit
from ticketflow.projection.store import ReadModelStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def side_files(db: Path) -> list[Path]:
    return [db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", ".lock", ".gate")]


def assert_private_while_open(db: Path) -> None:
    with closing(sqlite3.connect(db)) as reader:  # an open connection keeps -wal and -shm
        reader.execute("SELECT count(*) FROM outcomes").fetchall()
        for path in (db, *side_files(db)):
            assert mode(path) == 0o600, path


def test_a_new_read_model_is_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = ReadModelStore(data / "readmodel.db")
    store.record(testkit.outcome("t-1"))
    assert mode(data) == 0o700
    assert_private_while_open(store.path)


def test_a_write_that_recreates_a_deleted_file_makes_it_private(tmp_path: Path) -> None:
    store = ReadModelStore(tmp_path / "readmodel.db")
    store.path.unlink()
    assert store.record(testkit.outcome("t-1"))
    assert_private_while_open(store.path)


def test_a_swapped_in_rebuild_is_private(tmp_path: Path) -> None:
    live = ReadModelStore(tmp_path / "readmodel.db")
    fresh = ReadModelStore(tmp_path / "readmodel.db.rebuild-1", shared_lock=False)
    fresh.record(testkit.outcome("t-1"))
    assert mode(fresh.path) == 0o600
    live.swap_in(fresh)
    assert live.get("t-1") is not None
    assert_private_while_open(live.path)


def test_an_older_readable_read_model_is_tightened_with_one_line_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "readmodel.db"
    ReadModelStore(db).record(testkit.outcome("t-1"))
    for path in (db, *side_files(db)):
        path.touch()
        path.chmod(0o644)
    with caplog.at_level("INFO"):
        store = ReadModelStore(db)
    assert mode(db) == 0o600
    for path in side_files(db):  # tightened, then -wal/-shm possibly removed by the last close
        assert not path.exists() or mode(path) == 0o600, path
    lines = [r.getMessage() for r in caplog.records if "tightened" in r.getMessage()]
    assert len(lines) == 5 and all("0644" in line and "0600" in line for line in lines)
    assert store.get("t-1") is not None
