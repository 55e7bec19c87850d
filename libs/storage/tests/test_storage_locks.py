"""Advisory locks on a real PostgreSQL server: one holder at a time, released when the holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from ticketflow.storage import LockHeld, advisory_key, advisory_lock, open_engine, parse_store_url
from ticketflow.testkit import eventually

HOLD = """
import sys
from ticketflow.storage import advisory_lock, open_engine, parse_store_url
engine = open_engine(parse_store_url(sys.argv[1], data_dir="."))
with advisory_lock(engine, "job"):
    print("held", flush=True)
    sys.stdin.read()  # until killed
"""


@pytest.fixture
def pg(postgres_url: str, tmp_path: Path) -> Iterator[Engine]:
    engine = open_engine(parse_store_url(postgres_url, data_dir=tmp_path))
    yield engine
    engine.dispose()


def can_take(engine: Engine, name: str) -> bool:
    try:
        with advisory_lock(engine, name):
            return True
    except LockHeld:
        return False


def test_keys_are_stable_and_distinct() -> None:
    assert advisory_key("job") == advisory_key("job")
    assert advisory_key("job") != advisory_key("other job")
    assert -(2**63) <= advisory_key("job") < 2**63


def test_a_second_holder_is_refused_until_the_first_lets_go(pg: Engine) -> None:
    with advisory_lock(pg, "job"):
        with pytest.raises(LockHeld):
            with advisory_lock(pg, "job"):
                pass
        assert can_take(pg, "another job")
    assert can_take(pg, "job")
    # Released before the connection went back to the pool: a pooled session holds nothing.
    assert can_take(pg, "job")


def test_the_lock_dies_with_a_killed_holder(postgres_url: str, pg: Engine) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, postgres_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert not can_take(pg, "job")
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        eventually(lambda: can_take(pg, "job"), what="the killed holder's lock released")
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)
