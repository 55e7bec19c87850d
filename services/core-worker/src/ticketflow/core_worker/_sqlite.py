"""What the refund ledger and the reply outbox share: one SQLite file (``ledger.db``), opened the
same way, written in serialised transactions, and the audit record of who asked.

Each store keeps its own tables in the file (docs/architecture.md, "Side effects: effectively
once"); this module only knows how to open it and write to it safely. The file is private:
created 0600 (its WAL side files follow its mode) in a dir created 0700, and a file an older
version left readable by others is tightened on open, one log line each (``runtime.files``).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ticketflow.runtime.files import private_dir, private_sqlite

__all__ = ["UNIDENTIFIED", "AttemptInfo", "SqliteStore", "effect_id", "now_iso"]


@dataclass(frozen=True)
class AttemptInfo:
    """Who is asking: recorded with every attempt, for audit."""

    workflow_id: str | None = None
    run_id: str | None = None
    activity_id: str | None = None
    attempt: int | None = None


# A call from outside an activity (ops scripts, tests): nothing to record but the call itself.
UNIDENTIFIED = AttemptInfo()


def effect_id(prefix: str, ticket_id: str) -> str:
    """Deterministic: the same ticket always maps to the same refund/reply id."""
    return f"{prefix}_{hashlib.sha256(ticket_id.encode()).hexdigest()[:20]}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class SqliteStore:
    """Tables of one store in a SQLite file: created on open, written one transaction at a time."""

    SCHEMA = ""  # the store's CREATE ... IF NOT EXISTS statements
    # Columns added after a table first shipped: (table, column, SQL type), added in place to a
    # file that lacks them. Forward-only (never dropped or changed) and idempotent.
    COLUMNS: tuple[tuple[str, str, str], ...] = ()

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        private_dir(self.path.parent, tighten=False)  # 0700 if created here; a given dir stays
        private_sqlite(self.path)  # before SQLite creates it with the umask's mode
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(self.SCHEMA)
        self._add_columns()

    def _add_columns(self) -> None:
        if not self.COLUMNS:
            return
        # One write transaction: two processes opening an old file at once add each column once.
        with self._transaction() as conn:
            for table, column, sql_type in self.COLUMNS:
                have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One connection per call: activities run on a thread pool. Autocommit mode, explicit
        # BEGIN IMMEDIATE so a read-check-write is one serialised transaction.
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One serialised write transaction: the effect row and its attempt row commit together."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
