"""Cluster-wide mutual exclusion for maintenance jobs, from PostgreSQL's advisory locks.

A job that must not run twice at once against the same store (a read-model rebuild) holds a
session-level advisory lock on a connection of its own for as long as it runs. The server
releases it when that session ends, so a job killed at any line never leaves the lock behind,
unlike a lock row or a lock file on a shared disk. SQLite stores use a file lock instead (the
owning service knows its file).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

__all__ = ["LockHeld", "advisory_key", "advisory_lock"]


class LockHeld(RuntimeError):
    """Another session holds the advisory lock: the same job is running elsewhere."""


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory locks, one per ``name``."""
    digest = hashlib.sha256(f"ticketflow:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def advisory_lock(engine: Engine, name: str) -> Iterator[None]:
    """Hold the session-level advisory lock ``name`` or raise ``LockHeld`` at once (no wait).

    The lock lives on a connection taken from ``engine`` for the duration and released before
    the connection goes back to the pool; a connection whose unlock failed is discarded (its
    session, and so the lock, ends with it).
    """
    key = advisory_key(name)
    conn = engine.connect()
    try:
        got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
        conn.commit()  # idle, not "idle in transaction": no idle-transaction timeout applies
        if not got:
            raise LockHeld(name)
        try:
            yield
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                conn.commit()
            except Exception:
                conn.invalidate()  # the session ends, and the lock with it
    finally:
        conn.close()
