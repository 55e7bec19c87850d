"""A table of items."""

from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
