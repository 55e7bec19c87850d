"""The ``outcomes`` table (schema version 2), adopting a read model that an older release made.

SQLite: a file at ``PRAGMA user_version`` 2 is taken as it is; a version-1 file (``finished_at``
as ISO text, a content-hash tie-break, the first unreleased projection) is rewritten in place as
that release's ``schema.migrate`` did; an empty file gets the table. A file of a higher
user_version was written by a newer projection and is refused (nothing changes: the migration
runs in one transaction). PostgreSQL: the table, its indexes, and the SEQUENCE that numbers writes
(``seq``, rebuild's merge order).

Forward-only: there is no downgrade.
"""

from alembic import op
from sqlalchemy import text
from ticketflow.contracts.models import TicketOutcome
from ticketflow.projection._codec import StoredOutcome, upsert
from ticketflow.projection.schema import UnsupportedSchema

revision = "0001"
down_revision = None

SQLITE_VERSION = 2

SQLITE_DDL = (
    """
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
    ) STRICT
    """,
    "CREATE INDEX IF NOT EXISTS outcomes_finished ON outcomes (finished_us, ticket_id)",
    "CREATE INDEX IF NOT EXISTS outcomes_status ON outcomes (status, finished_us, ticket_id)",
    "CREATE INDEX IF NOT EXISTS outcomes_category ON outcomes (category, finished_us, ticket_id)",
    "CREATE INDEX IF NOT EXISTS outcomes_seq ON outcomes (seq)",
)

POSTGRESQL_DDL = (
    "CREATE SEQUENCE IF NOT EXISTS readmodel_outcome_seq AS BIGINT",
    """
    CREATE TABLE IF NOT EXISTS outcomes (
        ticket_id    TEXT PRIMARY KEY,
        run_id       TEXT NOT NULL,
        finished_us  BIGINT NOT NULL,
        status       TEXT NOT NULL,
        category     TEXT,
        customer_id  TEXT NOT NULL,
        outcome_json TEXT NOT NULL,
        recorded_at  TEXT NOT NULL,
        seq          BIGINT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS outcomes_finished ON outcomes (finished_us, ticket_id)",
    "CREATE INDEX IF NOT EXISTS outcomes_status ON outcomes (status, finished_us, ticket_id)",
    "CREATE INDEX IF NOT EXISTS outcomes_category ON outcomes (category, finished_us, ticket_id)",
    "CREATE INDEX IF NOT EXISTS outcomes_seq ON outcomes (seq)",
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for statement in POSTGRESQL_DDL:
            bind.execute(text(statement))
        return
    version = bind.execute(text("PRAGMA user_version")).scalar_one()
    if version > SQLITE_VERSION:
        raise UnsupportedSchema(
            f"read model schema version {version} is newer than this projection's "
            f"({SQLITE_VERSION}): upgrade the projection, or move the file away and rebuild it"
        )
    columns = {r[1] for r in bind.execute(text("PRAGMA table_info(outcomes)"))}
    legacy = bool(columns) and "finished_us" not in columns
    if legacy:
        bind.execute(text("ALTER TABLE outcomes RENAME TO outcomes_v1"))
        bind.execute(text("DROP INDEX IF EXISTS outcomes_status"))  # v1's, on other columns
    for statement in SQLITE_DDL:
        bind.execute(text(statement))
    if legacy:
        for (body,) in bind.execute(text("SELECT outcome_json FROM outcomes_v1")).all():
            upsert(bind, StoredOutcome.from_outcome(TicketOutcome.model_validate_json(body), ""))
        bind.execute(text("DROP TABLE outcomes_v1"))
    # Kept for an older projection that opens this file: it refuses a version it does not know.
    bind.execute(text(f"PRAGMA user_version = {SQLITE_VERSION}"))
