"""What the refund ledger and the reply outbox share: one store (``TICKETFLOW_LEDGER_URL``: the
SQLite file ``ledger.db`` by default, or a PostgreSQL database), one SQLAlchemy engine, its
migrations, and the audit record of who asked.

Each store keeps its own tables (docs/architecture.md, "Side effects: effectively once"); this
module only knows how to open the store, keep its schema current and write to it safely. The
engine comes from ``ticketflow.storage``: on SQLite a private file (0600 in a 0700 dir, an older
readable file tightened), WAL, every write transaction ``BEGIN IMMEDIATE``; on PostgreSQL a
bounded pool with pre-ping and timeouts. Correctness under concurrent writers comes from the
tables' keys (``INSERT ... ON CONFLICT DO NOTHING``), never from a process-local lock, so
several core workers may share one PostgreSQL database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine
from ticketflow.storage import (
    Backend,
    Migrations,
    StoreUrl,
    current_revision,
    open_engine,
    require_current,
    sqlite_url,
    upgrade,
)
from ticketflow.storage.engine import reader

__all__ = [
    "MIGRATIONS",
    "UNIDENTIFIED",
    "AttemptInfo",
    "LedgerStore",
    "StoreUser",
    "effect_id",
    "now_iso",
]

MIGRATIONS = Migrations(
    store="ledger",
    script_location="ticketflow.core_worker:migrations",
    version_table="ledger_schema_version",
    command="ticketflow-core-worker migrate",
)


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


class LedgerStore:
    """The ledger's database: one engine, shared by the refund ledger and the reply outbox."""

    def __init__(self, url: StoreUrl, *, connections: int = 5) -> None:
        """``connections``: the PostgreSQL pool's size, one per activity slot that may use it at
        once (more would only wait for a connection, past its timeout a retryable failure)."""
        self.url = url
        self.engine: Engine = open_engine(url, pool_size=connections, max_overflow=0)

    @classmethod
    def sqlite_file(cls, path: Path | str) -> LedgerStore:
        """A SQLite file, migrated to head (embedded use: tests, scripts, ops tools)."""
        store = cls(sqlite_url(Path(path)))
        store.migrate()
        return store

    @property
    def shown(self) -> str:
        """The URL with its password masked."""
        return self.url.shown

    @property
    def path(self) -> Path:
        """The SQLite file (for ops and tests that read it directly)."""
        return self.url.sqlite_path

    @property
    def backend(self) -> Backend:
        return self.url.backend

    def migrate(self) -> tuple[str | None, str]:
        """Bring the schema to this release's head: (revision before, revision after)."""
        return upgrade(self.engine, MIGRATIONS)

    def revision(self) -> str | None:
        return current_revision(self.engine, MIGRATIONS)

    def require_current(self) -> None:
        """Raise ``SchemaMismatch`` (saying what to run) unless the schema is at head."""
        require_current(self.engine, MIGRATIONS, self.shown)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction (SQLite: ``BEGIN IMMEDIATE``): the effect row and its attempt
        row commit together, or neither does."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (SQLite: deferred, never queued behind a writer)."""
        with reader(self.engine).begin() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()


class StoreUser:
    """Base of the ledger and the outbox: given a ``LedgerStore`` (shared), or a SQLite file
    path, opened and migrated here (embedded use)."""

    def __init__(self, store: LedgerStore | Path | str) -> None:
        self.store = store if isinstance(store, LedgerStore) else LedgerStore.sqlite_file(store)

    @property
    def path(self) -> Path:
        return self.store.path
