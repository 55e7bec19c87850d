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
timeout and never interleave. A rebuild replaces the whole file (`ReadModel.swap_in`). Every call
holds a shared ``flock`` on ``readmodel.db.lock`` while its connection is open; the swap holds it
exclusively, behind a turnstile (``readmodel.db.gate``) so that readers cannot starve it. So no
connection ever spans a replace: after the swap every call opens the new file, and the old file's
WAL side files can be removed safely.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ticketflow.contracts.models import TicketOutcome

__all__ = [
    "SCHEMA_VERSION",
    "OutcomeFilter",
    "ReadModel",
    "StoredOutcome",
    "UnsupportedSchema",
    "from_micros",
    "rows_since",
    "to_micros",
]

SCHEMA_VERSION = 2  # PRAGMA user_version. 1 (unversioned): finished_at as ISO text, hash tie-break.

SCHEMA = """
CREATE TABLE IF NOT EXISTS outcomes (
    ticket_id    TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL,
    finished_us  INTEGER NOT NULL,
    status       TEXT NOT NULL,
    category     TEXT,
    customer_id  TEXT NOT NULL,
    outcome_json TEXT NOT NULL,
    recorded_at  TEXT NOT NULL,
    seq          INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS outcomes_finished ON outcomes (finished_us, ticket_id);
CREATE INDEX IF NOT EXISTS outcomes_status ON outcomes (status, finished_us, ticket_id);
CREATE INDEX IF NOT EXISTS outcomes_category ON outcomes (category, finished_us, ticket_id);
CREATE INDEX IF NOT EXISTS outcomes_seq ON outcomes (seq);
"""

_COLUMNS = (
    "ticket_id, run_id, finished_us, status, category, customer_id, outcome_json, recorded_at, seq"
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(value: datetime) -> int:
    """Integer microseconds since the epoch, UTC (a naive datetime is taken as UTC)."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1)


def from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class UnsupportedSchema(RuntimeError):
    """The file was written by a newer projection (a higher ``user_version``)."""


@dataclass(frozen=True)
class StoredOutcome:
    """One row: the outcome as recorded, and when and from which run."""

    ticket_id: str
    run_id: str
    finished_us: int
    status: str
    category: str | None
    customer_id: str
    outcome_json: str
    recorded_at: str
    seq: int

    @property
    def outcome(self) -> TicketOutcome:
        return TicketOutcome.model_validate_json(self.outcome_json)

    @property
    def recorded_at_dt(self) -> datetime:
        return datetime.fromisoformat(self.recorded_at)

    @property
    def version(self) -> tuple[int, str]:
        return (self.finished_us, self.run_id)

    @classmethod
    def from_outcome(cls, outcome: TicketOutcome, run_id: str) -> StoredOutcome:
        return cls(
            ticket_id=outcome.ticket_id,
            run_id=run_id,
            finished_us=to_micros(outcome.finished_at),
            status=outcome.status.value,
            category=outcome.classification.category.value if outcome.classification else None,
            customer_id=outcome.ticket.customer_id,
            outcome_json=outcome.model_dump_json(),
            recorded_at=datetime.now(UTC).isoformat(),
            seq=0,
        )


@dataclass(frozen=True)
class OutcomeFilter:
    """ListOutcomes filters; None matches everything. Time range: after <= finished < before."""

    status: str | None = None
    category: str | None = None
    finished_after_us: int | None = None
    finished_before_us: int | None = None


class ReadModel:
    """The ``outcomes`` table of one SQLite file.

    ``shared_lock=False`` is for a private file nobody else opens (rebuild's fresh database).
    """

    def __init__(self, path: Path | str, *, shared_lock: bool = True, prepare: bool = True) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.gate_path = self.path.with_name(self.path.name + ".gate")
        self._shared_lock = shared_lock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if prepare:  # False: leave the file alone (rebuild replacing an unreadable one)
            with self._lock(exclusive=False), self._connect() as conn:
                _migrate(conn)

    # ---- connections and the swap lock ------------------------------------------------------

    @contextmanager
    def _lock(self, *, exclusive: bool) -> Iterator[None]:
        """Shared for every call, exclusive for the swap, fair to the swap.

        flock alone would let a steady stream of overlapping shared holders (a busy read API)
        starve the swap forever. So everyone first passes a turnstile (``.gate``, exclusive and held
        only for a moment by callers). The swap keeps holding the gate while it waits for the
        current holders to leave. One descriptor per holder: flock locks belong to the open file
        description, so threads must not share one (an unlock by one would release the others).
        """
        if not self._shared_lock:
            yield
            return
        gate = os.open(self.gate_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            main = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(gate, fcntl.LOCK_EX)
                fcntl.flock(main, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                if not exclusive:
                    fcntl.flock(gate, fcntl.LOCK_UN)
                yield
            finally:
                os.close(main)  # closing releases the lock
        finally:
            os.close(gate)

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
        with self._lock(exclusive=False):
            if not self.path.exists():
                yield None
                return
            with self._connect() as conn:
                yield conn

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._lock(exclusive=False), self._connect() as conn:
            # Cheap when present; recreates the table if someone deleted the file under us.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                _create(conn)
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    # ---- writes -----------------------------------------------------------------------------

    def record(self, outcome: TicketOutcome, *, run_id: str = "") -> bool:
        """Store the outcome unless one of an equal or greater version is there.

        True when the row changed (see the module docstring for the version rule).
        """
        return self.put(StoredOutcome.from_outcome(outcome, run_id))

    def put(self, row: StoredOutcome) -> bool:
        """Upsert a row under the version rule; its ``seq`` is assigned here. True when changed."""
        with self._writing() as conn:
            return _put(conn, row)

    def put_many(self, rows: list[StoredOutcome]) -> int:
        """`put` for many rows in one transaction; how many changed."""
        with self._writing() as conn:
            return sum(_put(conn, row) for row in rows)

    # ---- reads ------------------------------------------------------------------------------

    def get(self, ticket_id: str) -> StoredOutcome | None:
        with self._reading() as conn:
            if conn is None:
                return None
            row = _fetch_one(
                conn, f"SELECT {_COLUMNS} FROM outcomes WHERE ticket_id = ?", (ticket_id,)
            )
        return row

    def list(
        self,
        flt: OutcomeFilter,
        *,
        after: tuple[int, str] | None = None,
        limit: int = 50,
    ) -> list[StoredOutcome]:
        """Rows matching ``flt`` ordered by (finished_us, ticket_id), strictly after the keyset
        position ``after``, at most ``limit``."""
        where, params = [], []
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
        sql = f"SELECT {_COLUMNS} FROM outcomes"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY finished_us, ticket_id LIMIT ?"
        params.append(limit)
        with self._reading() as conn:
            if conn is None:
                return []
            return _fetch_all(conn, sql, tuple(params))

    def rows(self, *, since_seq: int = 0) -> list[StoredOutcome]:
        """Every row written after ``since_seq``, in seq order (rebuild's merge)."""
        with self._reading() as conn:
            return [] if conn is None else rows_since(conn, since_seq)

    def max_seq(self) -> int:
        with self._reading() as conn:
            if conn is None:
                return 0
            return conn.execute("SELECT coalesce(max(seq), 0) FROM outcomes").fetchone()[0]

    def count(self) -> int:
        with self._reading() as conn:
            if conn is None:
                return 0
            return conn.execute("SELECT count(*) FROM outcomes").fetchone()[0]

    # ---- rebuild's atomic replace -----------------------------------------------------------

    def swap_in(
        self,
        fresh: ReadModel,
        before_swap: Callable[[sqlite3.Connection | None], None] = lambda conn: None,
    ) -> None:
        """Replace this file by ``fresh``'s file, atomically for every reader and writer.

        Under the exclusive lock (no connection to this file is open, new ones wait):
        ``before_swap`` runs with a connection to this file, or None when there is no file
        (rebuild merges the last concurrent writes; it must not call this object's methods, which
        would wait for the lock it holds), ``fresh`` is
        checkpointed into a single file, ``os.replace``-d over this one, the old file's WAL side
        files are removed (a WAL file left next to the new file would be replayed into it), and
        the new file is put in WAL mode.
        """
        with self._lock(exclusive=True):
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
            _fsync_dir(self.path.parent)
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")


def _create(conn: sqlite3.Connection) -> None:
    # Statement by statement: executescript() would COMMIT the caller's transaction first.
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _put(conn: sqlite3.Connection, row: StoredOutcome) -> bool:
    seq = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM outcomes").fetchone()[0]
    cur = conn.execute(
        f"""
        INSERT INTO outcomes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (ticket_id) DO UPDATE SET
            run_id = excluded.run_id, finished_us = excluded.finished_us,
            status = excluded.status, category = excluded.category,
            customer_id = excluded.customer_id, outcome_json = excluded.outcome_json,
            recorded_at = excluded.recorded_at, seq = excluded.seq
        WHERE (excluded.finished_us, excluded.run_id) > (outcomes.finished_us, outcomes.run_id)
        """,
        (
            row.ticket_id,
            row.run_id,
            row.finished_us,
            row.status,
            row.category,
            row.customer_id,
            row.outcome_json,
            row.recorded_at,
            seq,
        ),
    )
    return cur.rowcount > 0


def rows_since(conn: sqlite3.Connection, seq: int) -> list[StoredOutcome]:
    """Every row written after ``seq``, in seq order."""
    return _fetch_all(conn, f"SELECT {_COLUMNS} FROM outcomes WHERE seq > ? ORDER BY seq", (seq,))


def _fetch_one(conn: sqlite3.Connection, sql: str, params: tuple) -> StoredOutcome | None:
    rows = _fetch_all(conn, sql, params)
    return rows[0] if rows else None


def _fetch_all(conn: sqlite3.Connection, sql: str, params: tuple) -> list[StoredOutcome]:
    try:
        return [StoredOutcome(*r) for r in conn.execute(sql, params).fetchall()]
    except sqlite3.OperationalError as err:
        # A file deleted by hand and recreated empty by a reader: an empty view until the next write.
        if "no such table" in str(err):
            return []
        raise


def _migrate(conn: sqlite3.Connection) -> None:
    """Create the schema, or bring a version-1 file (finished_at text, hash tie-break) to it."""
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise UnsupportedSchema(
                f"read model schema version {version} is newer than this projection's "
                f"({SCHEMA_VERSION}): upgrade the projection, or move the file away and rebuild it"
            )
        cols = {r[1] for r in conn.execute("PRAGMA table_info(outcomes)")}
        legacy = bool(cols) and "finished_us" not in cols
        if legacy:
            conn.execute("ALTER TABLE outcomes RENAME TO outcomes_v1")
            conn.execute("DROP INDEX IF EXISTS outcomes_status")  # v1's, on other columns
        _create(conn)
        if legacy:
            for (body,) in conn.execute("SELECT outcome_json FROM outcomes_v1").fetchall():
                _put(conn, StoredOutcome.from_outcome(TicketOutcome.model_validate_json(body), ""))
            conn.execute("DROP TABLE outcomes_v1")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
