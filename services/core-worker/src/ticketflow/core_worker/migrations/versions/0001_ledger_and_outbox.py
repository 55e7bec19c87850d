"""The refund ledger and the reply outbox as they were before migrations: ``refunds``,
``refund_attempts``, ``replies`` (with ``content_sha256``), ``reply_attempts`` and their indexes.

It ADOPTS a SQLite ``ledger.db`` that the code before migrations made (``CREATE TABLE IF NOT
EXISTS`` at every open): what is there stays, rows included; a ``replies`` table from before the
content fingerprint gains the nullable column in place. On an empty SQLite file or PostgreSQL
database it creates everything. Same columns, constraints and meaning on both backends: SQLite
keeps its STRICT tables and CHECKs; PostgreSQL uses BIGINT money and identity keys. Timestamps
stay ISO-8601 text on both (what the code and ops have always read).
"""

from alembic import op
from sqlalchemy import inspect

revision = "0001"
down_revision = None

# The exact DDL of the code before migrations (ledger.py and outbox.py at 0.1.0).
SQLITE = [
    """CREATE TABLE IF NOT EXISTS refunds (
        ticket_id    TEXT PRIMARY KEY,
        refund_id    TEXT NOT NULL UNIQUE,
        customer_id  TEXT NOT NULL,
        order_id     TEXT,
        amount_cents INTEGER NOT NULL CHECK (typeof(amount_cents) = 'integer' AND amount_cents > 0),
        workflow_id  TEXT,
        created_at   TEXT NOT NULL
    ) STRICT""",
    """CREATE TABLE IF NOT EXISTS refund_attempts (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        ticket_id    TEXT NOT NULL,
        amount_cents INTEGER NOT NULL,
        workflow_id  TEXT,
        run_id       TEXT,
        activity_id  TEXT,
        attempt      INTEGER,
        result       TEXT NOT NULL CHECK (result IN ('applied', 'already_applied', 'conflict')),
        at           TEXT NOT NULL
    ) STRICT""",
    "CREATE INDEX IF NOT EXISTS refund_attempts_ticket ON refund_attempts (ticket_id)",
    """CREATE TABLE IF NOT EXISTS replies (
        ticket_id    TEXT PRIMARY KEY,
        reply_id     TEXT NOT NULL UNIQUE,
        customer_id  TEXT NOT NULL,
        kind         TEXT NOT NULL,
        body         TEXT NOT NULL,
        workflow_id  TEXT,
        created_at   TEXT NOT NULL,
        content_sha256 TEXT
    ) STRICT""",
    """CREATE TABLE IF NOT EXISTS reply_attempts (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        ticket_id    TEXT NOT NULL,
        kind         TEXT NOT NULL,
        workflow_id  TEXT,
        run_id       TEXT,
        activity_id  TEXT,
        attempt      INTEGER,
        result       TEXT NOT NULL CHECK (result IN ('sent', 'already_sent', 'conflict')),
        at           TEXT NOT NULL
    ) STRICT""",
    "CREATE INDEX IF NOT EXISTS reply_attempts_ticket ON reply_attempts (ticket_id)",
]

# PostgreSQL never held these tables before migrations; IF NOT EXISTS only makes a rerun after
# a half-done manual setup harmless.
POSTGRESQL = [
    """CREATE TABLE IF NOT EXISTS refunds (
        ticket_id    TEXT PRIMARY KEY,
        refund_id    TEXT NOT NULL UNIQUE,
        customer_id  TEXT NOT NULL,
        order_id     TEXT,
        amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
        workflow_id  TEXT,
        created_at   TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS refund_attempts (
        id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        ticket_id    TEXT NOT NULL,
        amount_cents BIGINT NOT NULL,
        workflow_id  TEXT,
        run_id       TEXT,
        activity_id  TEXT,
        attempt      INTEGER,
        result       TEXT NOT NULL CHECK (result IN ('applied', 'already_applied', 'conflict')),
        at           TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS refund_attempts_ticket ON refund_attempts (ticket_id)",
    """CREATE TABLE IF NOT EXISTS replies (
        ticket_id    TEXT PRIMARY KEY,
        reply_id     TEXT NOT NULL UNIQUE,
        customer_id  TEXT NOT NULL,
        kind         TEXT NOT NULL,
        body         TEXT NOT NULL,
        workflow_id  TEXT,
        created_at   TEXT NOT NULL,
        content_sha256 TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS reply_attempts (
        id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        ticket_id    TEXT NOT NULL,
        kind         TEXT NOT NULL,
        workflow_id  TEXT,
        run_id       TEXT,
        activity_id  TEXT,
        attempt      INTEGER,
        result       TEXT NOT NULL CHECK (result IN ('sent', 'already_sent', 'conflict')),
        at           TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS reply_attempts_ticket ON reply_attempts (ticket_id)",
]


def upgrade() -> None:
    bind = op.get_bind()
    for statement in POSTGRESQL if bind.dialect.name == "postgresql" else SQLITE:
        op.execute(statement)
    # A replies table from before the fingerprint (IF NOT EXISTS kept it as it was).
    columns = {c["name"] for c in inspect(bind).get_columns("replies")}
    if "content_sha256" not in columns:
        op.execute("ALTER TABLE replies ADD COLUMN content_sha256 TEXT")
