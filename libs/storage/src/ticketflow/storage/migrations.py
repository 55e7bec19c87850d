"""Versioned, forward-only schema migrations (Alembic), run by a deploy, checked at start.

Each store owns a migrations directory in its service's package (``env.py`` calling
``alembic_env.run()``, and ``versions/``) and a version table of its own, so several stores can
share one PostgreSQL database. The rules:

- forward-only: revisions have no downgrade; a fix is a new revision;
- idempotent: ``upgrade`` on an up-to-date store changes nothing; a revision that adopts a store
  an older release created without Alembic checks what is there before it creates anything;
- one runner at a time: all revisions run in ONE transaction that first takes a lock
  (PostgreSQL: a transaction-scoped advisory lock keyed by the version table; SQLite: the
  ``BEGIN IMMEDIATE`` of every write transaction), so replicas that all run ``migrate`` at start
  apply each revision once, and a failure leaves the store as it was (DDL is transactional on
  both backends);
- a service whose store is behind (or ahead: written by a newer release) refuses to start,
  saying which command to run (``require_current``).
"""

from __future__ import annotations

from dataclasses import dataclass

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, text

from .engine import reader
from .locks import advisory_key

__all__ = ["Migrations", "SchemaMismatch", "current_revision", "require_current", "upgrade"]


class SchemaMismatch(RuntimeError):
    """The store's schema is not the one this release needs; the message says what to run."""


@dataclass(frozen=True)
class Migrations:
    """One store's migrations.

    ``script_location``: Alembic's ``package:dir`` form (``ticketflow.core_worker:migrations``)
    or a path; ``version_table``: this store's own; ``store``: what messages call it;
    ``command``: what an operator runs to migrate it.
    """

    store: str
    script_location: str
    version_table: str
    command: str

    def config(self, connection: Connection | None = None) -> Config:
        config = Config()
        config.set_main_option("script_location", self.script_location)
        config.attributes["version_table"] = self.version_table
        if connection is not None:
            config.attributes["connection"] = connection
        return config

    @property
    def head(self) -> str:
        head = ScriptDirectory.from_config(self.config()).get_current_head()
        if head is None:
            raise RuntimeError(f"no migrations in {self.script_location}")
        return head

    def knows(self, revision: str) -> bool:
        try:
            return ScriptDirectory.from_config(self.config()).get_revision(revision) is not None
        except CommandError:
            return False

    @property
    def lock_key(self) -> int:
        """A stable signed 64-bit key for PostgreSQL's advisory lock, one per version table."""
        return advisory_key(self.version_table)


def current_revision(engine: Engine, migrations: Migrations) -> str | None:
    """The store's revision, None for a store that has never been migrated."""
    with reader(engine).connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": migrations.version_table})
        return context.get_current_revision()


def upgrade(engine: Engine, migrations: Migrations) -> tuple[str | None, str]:
    """Bring the store to the head revision; returns (revision before, revision after)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": migrations.lock_key})
        context = MigrationContext.configure(conn, opts={"version_table": migrations.version_table})
        before = context.get_current_revision()
        _refuse_newer(migrations, before)
        if before != migrations.head:
            command.upgrade(migrations.config(conn), "head")
    return before, migrations.head


def require_current(engine: Engine, migrations: Migrations, shown_url: str) -> None:
    """Raise ``SchemaMismatch`` unless the store is at this release's head revision."""
    current = current_revision(engine, migrations)
    head = migrations.head
    if current == head:
        return
    _refuse_newer(migrations, current)
    if current is None:
        raise SchemaMismatch(
            f"the {migrations.store} at {shown_url} has no schema yet: run "
            f"`{migrations.command}` first (or start with TICKETFLOW_MIGRATE_ON_START=true)"
        )
    raise SchemaMismatch(
        f"the {migrations.store} at {shown_url} is at schema revision {current}, this release "
        f"needs {head}: run `{migrations.command}` (or start with TICKETFLOW_MIGRATE_ON_START=true)"
    )


def _refuse_newer(migrations: Migrations, current: str | None) -> None:
    if current is not None and not migrations.knows(current):
        raise SchemaMismatch(
            f"the {migrations.store} is at schema revision {current}, which this release does "
            "not know: a newer release migrated it; run that release (migrations are "
            "forward-only)"
        )
