"""The ``outcomes`` table: its schema, its version (``PRAGMA user_version``) and the migration.

Version 2 (this one): ``finished_us`` in integer microseconds and the run id as the version's
tie-break (see store.py). Version 1 (unversioned, the first unreleased projection) kept
``finished_at`` as ISO text with a content-hash tie-break; ``migrate`` rewrites such a file in
place. A file of a higher version was written by a newer projection and is refused.
"""

from __future__ import annotations

import sqlite3

from ticketflow.contracts.models import TicketOutcome

from ._codec import StoredOutcome, upsert

__all__ = ["SCHEMA", "SCHEMA_VERSION", "UnsupportedSchema", "create", "migrate"]

SCHEMA_VERSION = 2

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


class UnsupportedSchema(RuntimeError):
    """The file was written by a newer projection (a higher ``user_version``)."""


def create(conn: sqlite3.Connection) -> None:
    """Create the table and indexes if missing, inside the caller's transaction."""
    # Statement by statement: executescript() would COMMIT the caller's transaction first.
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def migrate(conn: sqlite3.Connection) -> None:
    """Create the schema, or bring a version-1 file (finished_at text, hash tie-break) to it.

    Raises ``UnsupportedSchema`` for a newer file, ``sqlite3.DatabaseError`` for one that is not a
    database; either way the file is left as it was.
    """
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
        create(conn)
        if legacy:
            for (body,) in conn.execute("SELECT outcome_json FROM outcomes_v1").fetchall():
                upsert(
                    conn, StoredOutcome.from_outcome(TicketOutcome.model_validate_json(body), "")
                )
            conn.execute("DROP TABLE outcomes_v1")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
