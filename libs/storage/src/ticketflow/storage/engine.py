"""One SQLAlchemy engine per store, set up the same way by every owner.

SQLAlchemy Core only (no ORM): the stores write plain SQL through ``text()``, which reads the
same on both backends (named parameters, ``INSERT ... ON CONFLICT``, ``RETURNING``); what differs
is how a connection behaves, and that is settled here once.

SQLite (the embedded default)
    The file is created 0600 in a dir created 0700 (``runtime.files``) before SQLite opens it, so
    its WAL side files are private too. WAL journal, ``synchronous=FULL``, foreign keys on, a busy
    timeout; and every transaction starts with ``BEGIN IMMEDIATE``: a read-check-write (the
    ledger's "is this ticket refunded? if not, refund") holds the write lock from its first read,
    so two writers queue instead of both seeing "not yet". pysqlite's own transaction handling is
    switched off for that (SQLAlchemy's documented recipe). Reads through ``reader(engine)``
    begin deferred instead, so in WAL mode they never wait for a writer.

PostgreSQL
    psycopg 3, a bounded pool (``pool_size`` + ``max_overflow``) with ``pool_pre_ping`` (a
    connection the server dropped, say after a restart, is replaced instead of failing the next
    call), a connect timeout and a statement timeout so a call never hangs on a dead server.
    READ COMMITTED: correctness under concurrent writers comes from the database's constraints
    (primary keys, ``ON CONFLICT``, conditional upserts), never from process-local locks.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, NullPool, create_engine, event
from ticketflow.runtime.files import private_dir, private_sqlite

from .url import Backend, StoreUrl

__all__ = ["open_engine", "reader"]

_READ_ONLY = "ticketflow_read_only"

SQLITE_BUSY_TIMEOUT_S = 30.0


def open_engine(
    url: StoreUrl,
    *,
    pool_size: int = 5,
    max_overflow: int = 5,
    connect_timeout_s: float = 5.0,
    statement_timeout_s: float = 30.0,
    sqlite_busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_S,
    tighten_dir: bool = False,
    sqlite_pooled: bool = True,
) -> Engine:
    """An engine for ``url``. For SQLite the file is created (private) if missing.

    ``sqlite_pooled=False``: a new SQLite connection per checkout, closed at check-in (a store
    whose file may be replaced under it, like the read model's rebuild, must not keep one open).

    ``tighten_dir``: whether an existing parent dir is made 0700 (for the data dir's owner; a
    dir that someone else gave the service stays as it is).
    """
    if url.backend == Backend.SQLITE:
        return _sqlite_engine(
            url, busy_timeout_s=sqlite_busy_timeout_s, tighten_dir=tighten_dir, pooled=sqlite_pooled
        )
    return _postgresql_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_timeout_s=connect_timeout_s,
        statement_timeout_s=statement_timeout_s,
    )


def reader(engine: Engine) -> Engine:
    """The same engine (same pool) for transactions that only read: on SQLite they begin
    deferred and so never queue behind a writer; on PostgreSQL nothing changes."""
    return engine.execution_options(**{_READ_ONLY: True})


def _sqlite_engine(
    url: StoreUrl, *, busy_timeout_s: float, tighten_dir: bool, pooled: bool = True
) -> Engine:
    path = url.sqlite_path
    private_dir(path.parent, tighten=tighten_dir)
    private_sqlite(path)  # before SQLite creates it with the umask's mode
    engine = create_engine(
        url.sqlalchemy_url,
        connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
        hide_parameters=True,  # see _postgresql_engine
        **({} if pooled else {"poolclass": NullPool}),
    )

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver: SQLAlchemy's "begin" event below issues BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _postgresql_engine(
    url: StoreUrl,
    *,
    pool_size: int,
    max_overflow: int,
    connect_timeout_s: float,
    statement_timeout_s: float,
) -> Engine:
    return create_engine(
        url.sqlalchemy_url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_timeout=connect_timeout_s,
        # A failing statement's parameters are ticket text, customer ids and replies: keep them
        # out of exception messages, which reach logs and Temporal's activity failures.
        hide_parameters=True,
        connect_args={
            "connect_timeout": max(1, round(connect_timeout_s)),
            "options": f"-c statement_timeout={round(statement_timeout_s * 1000)}",
            "application_name": "ticketflow",
        },
    )
