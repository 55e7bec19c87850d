"""The read model of finished tickets: SQLite, owned by the projection service.

Derived data: every row can be re-derived from Temporal while histories are retained
(``ticketflow-projection rebuild``, see rebuild.py).

The version rule (idempotent, ordered writes)
---------------------------------------------
Each row carries the version ``(finished_us, run_id)``: the outcome's ``finished_at`` in integer
microseconds UTC, then the workflow run id as a tie-break. A write replaces the stored row only
when its version is strictly greater, in one conditional upsert:

- the same outcome again (an activity retry, a replayed workflow, a rebuild): equal version, no
  change, even if a newer contracts version serialises the outcome differently;
- an older outcome after a newer one (a late retry from a run that a reset replaced): smaller
  version, no change;
- a new run of the same ticket (a reset, a reused workflow id): it finished later, so it wins.

``finished_at`` is ``workflow.now()`` in the workflow's last step. It is written into the history,
so every retry of the activity sends the same value, and rebuild reads the same value from the
workflow result. That is why the version is not the history length or an event id: an activity is
not told either, and a reset run's event ids are not greater than its predecessor's. The run id
only breaks ties, which cannot happen unless two runs finish in the same microsecond. It makes the
result independent of delivery order and, unlike a content hash, does not change when the payload
is re-serialised by newer code.

Concurrency
-----------
WAL mode, one short-lived connection per call (activities run on a thread pool, gRPC reads on
threads), and ``BEGIN IMMEDIATE`` around every write, so concurrent writers queue on SQLite's busy
timeout and never interleave. A rebuild replaces the whole file (`ReadModelStore.swap_in`). Every call
holds a shared ``flock`` on ``readmodel.db.lock`` while its connection is open; the swap holds it
exclusively, behind a turnstile (``readmodel.db.gate``) so that readers cannot starve it. So no
connection ever spans a replace: after the swap every call opens the new file, and the old file's
WAL side files can be removed safely.

Private files
-------------
The file is created 0600 before SQLite opens it (its ``-wal``/``-shm`` files get its mode; the
lock files are 0600 too), in a dir created 0700; rebuild's fresh file is made the same way, so the
swapped-in file is private as well. A file an older version left readable by others is tightened
when the store opens it, with one log line each (``ticketflow.runtime.files``).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ticketflow.contracts.models import TicketOutcome
from ticketflow.runtime.files import private_dir, private_file, private_sqlite

from ._codec import StoredOutcome, from_micros, rows_since, select_rows, to_micros, upsert
from ._locking import SwapLock, fsync_dir
from .schema import create, migrate

__all__ = [
    "OutcomeFilter",
    "ReadModelStore",
    "StoredOutcome",
    "from_micros",
    "rows_since",
    "to_micros",
]

# `ReadModelStore.list` shadows the builtin inside the class body.
_Rows = list[StoredOutcome]


@dataclass(frozen=True)
class OutcomeFilter:
    """ListOutcomes filters; None matches everything. Time range: after <= finished < before."""

    status: str | None = None
    category: str | None = None
    finished_after_us: int | None = None
    finished_before_us: int | None = None


class ReadModelStore:
    """The ``outcomes`` table of one SQLite file: the projection's read model on disk.

    ``shared_lock=False`` is for a private file nobody else opens (rebuild's fresh database).
    ``prepare=False`` leaves the file alone (rebuild replacing an unreadable one); otherwise the
    schema is created or migrated here.
    """

    def __init__(self, path: Path | str, *, shared_lock: bool = True, prepare: bool = True) -> None:
        self.path = Path(path)
        self._swap_lock = SwapLock(self.path, enabled=shared_lock)
        self.lock_path = self._swap_lock.lock_path
        self.gate_path = self._swap_lock.gate_path
        private_dir(self.path.parent, tighten=False)  # 0700 if created here; a given dir stays
        private_sqlite(self.path, create=prepare)
        if shared_lock:
            private_file(self.lock_path)
            private_file(self.gate_path)
        if prepare:
            with self._swap_lock.shared(), self._connect() as conn:
                migrate(conn)

    # ---- connections --------------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # Autocommit mode; writes use explicit BEGIN IMMEDIATE.
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=FULL")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection | None]:
        """A connection for a read, or None when the file is gone (the view is then empty)."""
        with self._swap_lock.shared():
            if not self.path.exists():
                yield None
                return
            with self._connect() as conn:
                yield conn

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._swap_lock.shared():
            if not self.path.exists():
                private_file(self.path)  # deleted under us: SQLite would create it world-readable
            with self._connect() as conn:
                # Cheap when present; recreates the table if someone deleted the file under us.
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    create(conn)
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise

    # ---- writes -------------------------------------------------------------------------------

    def record(self, outcome: TicketOutcome, *, run_id: str = "") -> bool:
        """Store the outcome unless one of an equal or greater version is there.

        True when the row changed (see the module docstring for the version rule).
        """
        return self.put(StoredOutcome.from_outcome(outcome, run_id))

    def put(self, row: StoredOutcome) -> bool:
        """Upsert a row under the version rule; its ``seq`` is assigned here. True when changed."""
        with self._writing() as conn:
            return upsert(conn, row)

    def put_many(self, rows: _Rows) -> int:
        """`put` for many rows in one transaction; how many changed."""
        with self._writing() as conn:
            return sum(upsert(conn, row) for row in rows)

    # ---- reads --------------------------------------------------------------------------------

    def get(self, ticket_id: str) -> StoredOutcome | None:
        with self._reading() as conn:
            if conn is None:
                return None
            found = select_rows(conn, "WHERE ticket_id = ?", (ticket_id,))
        return found[0] if found else None

    def list(
        self,
        flt: OutcomeFilter,
        *,
        after: tuple[int, str] | None = None,
        limit: int = 50,
    ) -> _Rows:
        """Rows matching ``flt`` ordered by (finished_us, ticket_id), strictly after the keyset
        position ``after``, at most ``limit``."""
        where: list[str] = []
        params: list[object] = []
        if flt.status is not None:
            where.append("status = ?")
            params.append(flt.status)
        if flt.category is not None:
            where.append("category = ?")
            params.append(flt.category)
        if flt.finished_after_us is not None:
            where.append("finished_us >= ?")
            params.append(flt.finished_after_us)
        if flt.finished_before_us is not None:
            where.append("finished_us < ?")
            params.append(flt.finished_before_us)
        if after is not None:
            where.append("(finished_us, ticket_id) > (?, ?)")
            params.extend(after)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        params.append(limit)
        with self._reading() as conn:
            if conn is None:
                return []
            return select_rows(conn, f"{clause} ORDER BY finished_us, ticket_id LIMIT ?", params)

    def rows(self, *, since_seq: int = 0) -> _Rows:
        """Every row written after ``since_seq``, in seq order (rebuild's merge)."""
        with self._reading() as conn:
            return [] if conn is None else rows_since(conn, since_seq)

    def max_seq(self) -> int:
        return self._scalar("SELECT coalesce(max(seq), 0) FROM outcomes")

    def count(self) -> int:
        return self._scalar("SELECT count(*) FROM outcomes")

    def _scalar(self, sql: str) -> int:
        with self._reading() as conn:
            if conn is None:
                return 0
            value: int = conn.execute(sql).fetchone()[0]
            return value

    # ---- rebuild's atomic replace -------------------------------------------------------------

    def swap_in(
        self,
        fresh: ReadModelStore,
        before_swap: Callable[[sqlite3.Connection | None], None] = lambda conn: None,
    ) -> None:
        """Replace this file by ``fresh``'s file, atomically for every reader and writer.

        Under the exclusive lock (no connection to this file is open, new ones wait):
        ``before_swap`` runs with a connection to this file, or None when there is no file
        (rebuild merges the last concurrent writes; it must not call this object's methods, which
        would wait for the lock it holds), ``fresh`` is checkpointed into a single file,
        ``os.replace``-d over this one, the old file's WAL side files are removed (a WAL file left
        next to the new file would be replayed into it), and the new file is put in WAL mode.
        """
        with self._swap_lock.exclusive():
            if self.path.exists():
                # A bare connection: no pragma, so an unreadable file fails only in before_swap.
                live = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
                try:
                    before_swap(live)
                finally:
                    live.close()
            else:
                before_swap(None)
            with fresh._connect() as conn:
                # Folds the WAL into the main file and deletes -wal/-shm: one self-contained file.
                conn.execute("PRAGMA journal_mode=DELETE")
            os.replace(fresh.path, self.path)
            for suffix in ("-wal", "-shm", "-journal"):
                try:
                    os.unlink(f"{self.path}{suffix}")
                except FileNotFoundError:
                    pass
            fsync_dir(self.path.parent)
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
