"""The read model's schema: its migrations (Alembic, ``migrations/``) and what they are called.

Revision 0001 is the ``outcomes`` table of schema version 2: ``finished_us`` in integer
microseconds and the run id as the version's tie-break (see store.py). It adopts a SQLite file
that an older release made (``PRAGMA user_version`` 2 as it is, version 1 rewritten in place) and
creates the table on PostgreSQL. A deploy runs ``ticketflow-projection migrate``; ``serve`` runs it
at start when TICKETFLOW_MIGRATE_ON_START says so (the SQLite default), else refuses to start on a
store that is behind (settings.py).
"""

from __future__ import annotations

from ticketflow.storage import Migrations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "UnsupportedSchema"]

# The SQLite file's PRAGMA user_version (kept for older releases, which check it).
SCHEMA_VERSION = 2

MIGRATIONS = Migrations(
    store="read model",
    script_location="ticketflow.projection:migrations",
    version_table="readmodel_schema_version",
    command="ticketflow-projection migrate",
)


class UnsupportedSchema(RuntimeError):
    """The file was written by a newer projection (a higher ``user_version``)."""
