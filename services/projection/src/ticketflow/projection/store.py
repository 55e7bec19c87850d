"""The read model of finished tickets: SQLite or PostgreSQL, owned by the projection service.

One URL says where (``TICKETFLOW_READMODEL_URL``; by default ``readmodel.db`` under the data dir),
SQLAlchemy Core talks to it, ``ticketflow-projection migrate`` (schema.py) creates the schema.

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

Concurrency on SQLite
---------------------
WAL mode, one short-lived connection per call (no pool) (activities run on a thread pool, gRPC reads on
threads), and ``BEGIN IMMEDIATE`` around every write, so concurrent writers queue on SQLite's busy
timeout and never interleave. A rebuild replaces the whole file (`ReadModelStore.swap_in`). Every call
holds a shared ``flock`` on ``readmodel.db.lock`` while its connection is open; the swap holds it
exclusively, behind a turnstile (``readmodel.db.gate``) so that readers cannot starve it. So no
connection ever spans a replace: after the swap every call opens the new file, and the old file's
WAL side files can be removed safely.

Concurrency on PostgreSQL
-------------------------
Several projection replicas may write at once: the upsert is one statement whose row lock makes
the version rule atomic. ``seq`` comes from a SEQUENCE. Rebuild builds a new table next to
``outcomes`` and swaps it in with a rename inside one transaction that holds ``outcomes`` in
ACCESS EXCLUSIVE mode (``swap_in``, _pg_swap.py): readers wait for that commit and then read the
new table, never a half-built one. Rebuild reads the live table (``rows``, ``max_seq``) under a
SHARE lock, which waits for the writes in flight, so no write with a smaller ``seq`` commits after
the rows it read: "every row above the seq I saw" is then exactly the writes made meanwhile.

Private files (SQLite)
----------------------
The file is created 0600 before SQLite opens it (its ``-wal``/``-shm`` files get its mode; the
lock files are 0600 too), in a dir created 0700; rebuild's fresh file is made the same way, so the
swapped-in file is private as well. A file an older version left readable by others is tightened
when the store opens it, with one log line each (``ticketflow.runtime.files``).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, NullPool, create_engine, text
from sqlalchemy import exc as sa_exc
from ticketflow.contracts.models import TicketOutcome
from ticketflow.runtime.files import private_dir, private_file, private_sqlite
from ticketflow.storage import (
    Backend,
    StoreUrl,
    open_engine,
    require_current,
    sqlite_url,
    upgrade,
)
from ticketflow.storage.engine import reader

from ._codec import StoredOutcome, from_micros, rows_since, select_rows, to_micros, upsert
from ._locking import SwapLock, fsync_dir
from ._pg_swap import create_like, drop_table, replace_table
from .schema import MIGRATIONS

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
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class OutcomeFilter:
    """ListOutcomes filters; None matches everything. Time range: after <= finished < before."""

    status: str | None = None
    category: str | None = None
    finished_after_us: int | None = None
    finished_before_us: int | None = None


class ReadModelStore:
    """The ``outcomes`` table: the projection's read model, in a SQLite file or on PostgreSQL.

    ``where``: a store URL, or a SQLite file's path. ``migrate``: bring the schema to this
    release's (else refuse a store that is behind: ``SchemaMismatch`` says what to run).
    ``shared_lock=False`` is for a private SQLite file nobody else opens (rebuild's fresh
    database). ``prepare=False`` leaves the store alone (rebuild replacing an unreadable file, or
    its fresh PostgreSQL table). ``engine``/``table``: a table next to another store's (rebuild).
    """

    def __init__(
        self,
        where: StoreUrl | Path | str,
        *,
        shared_lock: bool = True,
        prepare: bool = True,
        migrate: bool = True,
        engine: Engine | None = None,
        table: str = "outcomes",
    ) -> None:
        self.url = where if isinstance(where, StoreUrl) else sqlite_url(Path(where))
        self.table = table
        self.sqlite = self.url.backend == Backend.SQLITE
        self._owns_engine = engine is None
        if self.sqlite:
            path = self.url.sqlite_path
            self._swap_lock = SwapLock(path, enabled=shared_lock)
            private_dir(path.parent, tighten=False)  # 0700 if created here; a given dir stays
            private_sqlite(path, create=prepare)
            if shared_lock:
                private_file(self._swap_lock.lock_path)
                private_file(self._swap_lock.gate_path)
            # No pool: a connection must not outlive its call (a rebuild replaces the file).
            self.engine = engine or open_engine(self.url, sqlite_pooled=False)
        else:
            self._swap_lock = SwapLock(Path("unused"), enabled=False)
            self.engine = engine or open_engine(self.url)
        if prepare:
            with self._swap_lock.shared():
                if migrate:
                    upgrade(self.engine, MIGRATIONS)
                else:
                    require_current(self.engine, MIGRATIONS, self.url.shown)

    @property
    def path(self) -> Path:
        """The SQLite file (ValueError on PostgreSQL)."""
        return self.url.sqlite_path

    @property
    def where(self) -> str:
        """What messages call this store: the file, or the URL with its password masked."""
        return str(self.path) if self.sqlite else f"{self.url.shown} (table {self.table})"

    @property
    def lock_path(self) -> Path:
        return self._swap_lock.lock_path

    @property
    def gate_path(self) -> Path:
        return self._swap_lock.gate_path

    def close(self) -> None:
        """Close the engine's pooled connections (PostgreSQL) unless it is another store's."""
        if self._owns_engine:
            self.engine.dispose()

    # ---- connections --------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[Connection | None]:
        """A read transaction, or None when the SQLite file is gone (the view is then empty)."""
        with self._swap_lock.shared():
            if self.sqlite and not self.path.exists():
                yield None
                return
            with reader(self.engine).begin() as conn:
                yield conn

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self._swap_lock.shared():
            if self.sqlite and not self.path.exists():
                # Deleted under us: recreate it private (SQLite would use the umask) with the schema.
                private_file(self.path)
                upgrade(self.engine, MIGRATIONS)
            with self.engine.begin() as conn:
                yield conn

    # ---- writes -------------------------------------------------------------------------------

    def record(self, outcome: TicketOutcome, *, run_id: str = "") -> bool:
        """Store the outcome unless one of an equal or greater version is there.

        True when the row changed (see the module docstring for the version rule).
        """
        return self.put(StoredOutcome.from_outcome(outcome, run_id))

    def put(self, row: StoredOutcome) -> bool:
        """Upsert a row under the version rule; its ``seq`` is assigned here. True when changed."""
        with self._writing() as conn:
            return upsert(conn, row, self.table)

    def put_many(self, rows: _Rows) -> int:
        """`put` for many rows in one transaction; how many changed."""
        with self._writing() as conn:
            return sum(upsert(conn, row, self.table) for row in rows)

    # ---- reads --------------------------------------------------------------------------------

    def get(self, ticket_id: str) -> StoredOutcome | None:
        with self._reading() as conn:
            if conn is None:
                return None
            found = select_rows(conn, "WHERE ticket_id = :tid", {"tid": ticket_id}, self.table)
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
        params: dict[str, object] = {"limit": limit}
        if flt.status is not None:
            where.append("status = :status")
            params["status"] = flt.status
        if flt.category is not None:
            where.append("category = :category")
            params["category"] = flt.category
        if flt.finished_after_us is not None:
            where.append("finished_us >= :after_us")
            params["after_us"] = flt.finished_after_us
        if flt.finished_before_us is not None:
            where.append("finished_us < :before_us")
            params["before_us"] = flt.finished_before_us
        if after is not None:
            where.append("(finished_us, ticket_id) > (:pos_us, :pos_tid)")
            params["pos_us"], params["pos_tid"] = after
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        with self._reading() as conn:
            if conn is None:
                return []
            return select_rows(
                conn, f"{clause} ORDER BY finished_us, ticket_id LIMIT :limit", params, self.table
            )

    def rows(self, *, since_seq: int = 0) -> _Rows:
        """Every row written after ``since_seq``, in seq order (rebuild's merge).

        On PostgreSQL under a SHARE lock: no write is in flight, so none with a smaller ``seq``
        can commit later (see the module docstring)."""
        with self._settled() as conn:
            return [] if conn is None else rows_since(conn, since_seq, self.table)

    def max_seq(self) -> int:
        """The highest ``seq`` written (under the same lock as ``rows``)."""
        with self._settled() as conn:
            if conn is None:
                return 0
            sql = f"SELECT coalesce(max(seq), 0) FROM {self.table}"
            return int(conn.execute(text(sql)).scalar_one())

    def count(self) -> int:
        with self._reading() as conn:
            if conn is None:
                return 0
            return int(conn.execute(text(f"SELECT count(*) FROM {self.table}")).scalar_one())

    @contextmanager
    def _settled(self) -> Iterator[Connection | None]:
        if self.sqlite:  # seq is max+1 under the write lock: commit order already
            with self._reading() as conn:
                yield conn
            return
        with self.engine.begin() as conn:
            conn.execute(text(f"LOCK TABLE {self.table} IN SHARE MODE"))
            yield conn

    # ---- rebuild's fresh store and atomic replace ---------------------------------------------

    def fresh(self) -> ReadModelStore:
        """An empty store of the same schema for rebuild to fill: a private file next to this
        one, or a table next to ``outcomes`` in the same database."""
        tag = f"{os.getpid()}_{secrets.token_hex(3)}"
        if self.sqlite:
            fresh_path = self.path.with_name(f"{self.path.name}.rebuild-{tag}")
            return ReadModelStore(fresh_path, shared_lock=False)
        table = f"{self.table}_rebuild_{tag}"
        with self.engine.begin() as conn:
            create_like(conn, table, like=self.table)
        return ReadModelStore(self.url, engine=self.engine, table=table, prepare=False)

    def discard(self) -> None:
        """Remove this (fresh) store: its file and side files, or its table."""
        if self.sqlite:
            for suffix in ("", *_SQLITE_SIDE_FILES, ".lock", ".gate"):
                try:
                    os.unlink(f"{self.path}{suffix}")
                except FileNotFoundError:
                    pass
        else:
            with self.engine.begin() as conn:
                drop_table(conn, self.table)
        self.close()

    def swap_in(
        self,
        fresh: ReadModelStore,
        before_swap: Callable[[Connection | None], None] = lambda conn: None,
    ) -> None:
        """Replace this store's content by ``fresh``'s, atomically for every reader and writer.

        ``before_swap`` runs first, with a connection to this store (None when the SQLite file is
        gone); no write to this store can happen meanwhile, so rebuild merges the last concurrent
        writes there. It must not call this object's methods (they would wait for the lock held).

        SQLite, under the exclusive file lock (no connection to this file is open, new ones wait):
        ``fresh`` is checkpointed into a single file, ``os.replace``-d over this one, the old
        file's WAL side files are removed (a WAL file left next to the new file would be replayed
        into it), and the new file is put in WAL mode.

        PostgreSQL, in one transaction holding this table in ACCESS EXCLUSIVE mode: the old table
        is dropped and the fresh one renamed in its place, with its indexes (_pg_swap.py).
        """
        if not self.sqlite:
            with self.engine.begin() as conn:
                conn.execute(text(f"LOCK TABLE {self.table} IN ACCESS EXCLUSIVE MODE"))
                before_swap(conn)
                replace_table(conn, self.table, fresh.table)
            return
        with self._swap_lock.exclusive():
            if self.path.exists():
                # A bare engine: no pragma, so an unreadable file fails only in before_swap.
                bare = create_engine(self.url.sqlalchemy_url, poolclass=NullPool)
                try:
                    with bare.connect() as live:
                        before_swap(live)
                finally:
                    bare.dispose()
            else:
                before_swap(None)
            # Folds the WAL into the main file and deletes -wal/-shm: one self-contained file.
            # (A driver connection: the engine's would wrap the pragma in a transaction.)
            checkpoint = sqlite3.connect(fresh.path, isolation_level=None)
            try:
                checkpoint.execute("PRAGMA journal_mode=DELETE")
            finally:
                checkpoint.close()
            os.replace(fresh.path, self.path)
            for suffix in _SQLITE_SIDE_FILES:
                try:
                    os.unlink(f"{self.path}{suffix}")
                except FileNotFoundError:
                    pass
            fsync_dir(self.path.parent)
            with self.engine.connect():
                pass  # the engine's connect hook puts the new file in WAL mode


def is_sqlite_corruption(err: BaseException) -> bool:
    """An unreadable SQLite file (not a database, malformed), as rebuild tolerates it."""
    cause = err.orig if isinstance(err, sa_exc.DBAPIError) else err
    return isinstance(cause, sqlite3.DatabaseError)
