"""The body of every store's Alembic ``env.py``: migrate on the connection ``upgrade`` passes.

A store's migrations directory holds an ``env.py`` of two lines that calls ``run()``; the
connection (already in the transaction that holds the migration lock) and the store's version
table come through the Alembic config's ``attributes`` (see ``migrations.upgrade``). Online
only: a deploy runs migrations against the database, never as SQL scripts.
"""

from __future__ import annotations

from alembic import context

__all__ = ["run"]


def run() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through ticketflow.storage.upgrade, not the alembic CLI")
    context.configure(
        connection=connection,
        version_table=config.attributes["version_table"],
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()
