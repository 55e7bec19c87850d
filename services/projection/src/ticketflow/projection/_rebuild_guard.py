"""One rebuild at a time per read model, and the work left behind by one that died.

Two rebuilds of the same view at once would each merge "the writes since I started" by sequence
number, but the first swap renumbers the table the second reads from, so the second could miss a
write recorded in between. So a rebuild holds an exclusive lock for its whole run:

- SQLite: a non-blocking ``flock`` on ``<db>.rebuild.lock`` (the kernel drops it with the process);
- PostgreSQL: a session-level advisory lock keyed by the table (ticketflow.storage.locks; the
  server drops it with the session), so it holds across hosts.

A second rebuild is refused at once (``RebuildRunning``), not queued: the first one's result is
what the operator asked for. Holding the lock also proves that no other rebuild is at work, so
the work files or tables a killed rebuild left (``<db>.rebuild-*``, ``outcomes_rebuild_*``) are
removed here, before the new rebuild makes its own.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import text
from ticketflow.runtime.files import private_file
from ticketflow.storage import LockHeld, advisory_lock

from ._pg_swap import drop_table

if TYPE_CHECKING:
    from .store import ReadModelStore

__all__ = ["RebuildRunning", "exclusive_rebuild"]


class RebuildRunning(RuntimeError):
    """Another rebuild of the same read model is running."""


@contextmanager
def exclusive_rebuild(store: ReadModelStore) -> Iterator[list[str]]:
    """Hold the store's rebuild lock; yields the leftovers of dead rebuilds it removed."""
    busy = RebuildRunning(
        f"another rebuild of {store.where} is running; wait for it to finish (its report says "
        "what it did), then run rebuild again if you still need to"
    )
    if store.sqlite:
        lock_path = store.path.with_name(store.path.name + ".rebuild.lock")
        private_file(lock_path)
        fd = os.open(lock_path, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise busy from None
            yield _remove_sqlite_leftovers(store)
        finally:
            os.close(fd)  # closing releases the lock
        return
    try:
        with advisory_lock(store.engine, f"readmodel-rebuild:{store.table}"):
            yield _remove_pg_leftovers(store)
    except LockHeld:
        raise busy from None


def _remove_sqlite_leftovers(store: ReadModelStore) -> list[str]:
    prefix = f"{store.path.name}.rebuild-"
    removed = []
    for path in sorted(store.path.parent.glob(f"{prefix}*")):
        path.unlink(missing_ok=True)
        removed.append(path.name)
    return removed


def _remove_pg_leftovers(store: ReadModelStore) -> list[str]:
    pattern = store.table.replace("_", r"\_") + r"\_rebuild\_%"
    with store.engine.begin() as conn:
        tables = list(
            conn.execute(
                text(
                    "SELECT tablename FROM pg_tables "
                    "WHERE schemaname = current_schema() AND tablename LIKE :pattern "
                    "ORDER BY tablename"
                ),
                {"pattern": pattern},
            ).scalars()
        )
        for table in tables:
            drop_table(conn, table)
    return tables
