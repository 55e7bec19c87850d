"""Which database errors are worth retrying.

A store call inside a Temporal activity that fails transiently (the server restarted, the
connection dropped, a serialisation conflict, SQLite busy past its timeout) should fail the
attempt *retryably*: Temporal retries it and, the writes being idempotent, nothing is lost or
doubled. Anything else (a constraint that a bug broke, bad SQL) would fail again the same way.
"""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy import exc as sa_exc

__all__ = ["describe", "is_transient"]

# SQLSTATE classes and codes: connection exceptions (08), insufficient resources (53), operator
# intervention (57: admin shutdown, crash shutdown, cannot connect now), serialization failure
# (40001) and deadlock (40P01).
_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57")
_TRANSIENT_SQLSTATES = ("40001", "40P01")


def is_transient(error: BaseException) -> bool:
    """True for a lost or refused connection, a timeout, a serialisation conflict, a busy SQLite."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa_exc.TimeoutError):  # no pooled connection came free in time
        return True
    cause = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    if isinstance(cause, psycopg.OperationalError):
        return True
    if isinstance(cause, psycopg.Error):
        state = cause.sqlstate or ""
        return state in _TRANSIENT_SQLSTATES or state[:2] in _TRANSIENT_SQLSTATE_CLASSES
    if isinstance(cause, sqlite3.OperationalError):
        return "locked" in str(cause) or "busy" in str(cause)
    return False


def describe(error: BaseException) -> str:
    """``<DriverError>: <the driver's first line>``, safe for logs and activity failures.

    Not ``str(error)``: SQLAlchemy's message quotes the statement, and PostgreSQL's later lines
    (DETAIL) quote the conflicting key's value, which is ticket data. The first line names the
    constraint or the condition ("duplicate key value violates unique constraint ...",
    "connection refused"), never a value.
    """
    cause = error.orig if isinstance(error, sa_exc.DBAPIError) and error.orig else error
    first = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first}".rstrip(": ")
