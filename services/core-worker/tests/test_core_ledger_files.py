"""``ledger.db`` is private: 0600 with its WAL side files, in a 0700 dir the worker creates, and a
file an older version left readable by others is tightened at open with one log line each."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from ticketflow.core_worker.ledger import RefundLedger
from ticketflow.core_worker.outbox import ReplyOutbox


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("store", [RefundLedger, ReplyOutbox])
def test_a_new_ledger_is_private(tmp_path: Path, usual_umask: None, store: type) -> None:
    data = tmp_path / "data"
    db = data / "ledger.db"
    ledger = RefundLedger(db) if store is RefundLedger else ReplyOutbox(db)
    assert mode(data) == 0o700
    with closing(sqlite3.connect(db)) as reader:  # a reader keeps the WAL files in place
        reader.execute("SELECT count(*) FROM sqlite_master").fetchall()
        if isinstance(ledger, RefundLedger):
            ledger.apply_refund(ticket_id="t1", customer_id="c", order_id=None, amount_cents=1)
        else:
            ledger.send_reply(ticket_id="t1", customer_id="c", body="hello", kind="resolution")
        for path in (db, data / "ledger.db-wal", data / "ledger.db-shm"):
            assert mode(path) == 0o600, path


def test_an_older_readable_ledger_is_tightened_with_one_line_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "ledger.db"
    RefundLedger(db).apply_refund(ticket_id="t1", customer_id="c", order_id=None, amount_cents=7)
    side = [tmp_path / "ledger.db-wal", tmp_path / "ledger.db-shm"]
    for path in (db, *side):
        path.touch()
        path.chmod(0o644)
    with caplog.at_level("INFO"):
        ledger = RefundLedger(db)
    assert mode(db) == 0o600
    for path in side:  # tightened, then possibly removed by SQLite's last close
        assert not path.exists() or mode(path) == 0o600, path
    lines = [r.getMessage() for r in caplog.records if "tightened" in r.getMessage()]
    assert len(lines) == 3 and all("0644" in line and "0600" in line for line in lines)
    again = ledger.apply_refund(ticket_id="t1", customer_id="c", order_id=None, amount_cents=7)
    assert again.already_applied  # nothing lost, nothing paid twice
