"""ticketflow's own stores (the ledger and outbox, the read model) on SQLite or PostgreSQL.

- ``url``: one setting per store, a URL (``sqlite:///...``, the embedded default, or
  ``postgresql://...``), parsed and shown with its password masked;
- ``engine``: a SQLAlchemy engine set up the same way for every store of a backend;
- ``migrations``: versioned, forward-only migrations (Alembic) that a deploy runs with the owning
  service's ``migrate`` command, and the check a service makes at start;
- ``errors``: which database errors are worth retrying;
- ``locks``: one runner at a time for maintenance jobs (PostgreSQL advisory locks).
"""

from .engine import open_engine
from .errors import describe, is_transient
from .locks import LockHeld, advisory_key, advisory_lock
from .migrations import Migrations, SchemaMismatch, current_revision, require_current, upgrade
from .url import Backend, InvalidStoreUrl, StoreUrl, parse_store_url, sqlite_url

__all__ = [
    "Backend",
    "InvalidStoreUrl",
    "LockHeld",
    "Migrations",
    "SchemaMismatch",
    "StoreUrl",
    "advisory_key",
    "advisory_lock",
    "current_revision",
    "describe",
    "is_transient",
    "open_engine",
    "parse_store_url",
    "require_current",
    "sqlite_url",
    "upgrade",
]
