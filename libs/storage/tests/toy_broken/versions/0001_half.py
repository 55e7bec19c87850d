"""Creates a table, then fails: nothing of it may remain."""

from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.execute("CREATE TABLE half_done (id INTEGER PRIMARY KEY)")
    raise RuntimeError("migration failed half-way")
