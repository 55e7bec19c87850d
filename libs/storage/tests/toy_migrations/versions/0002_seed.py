"""One seeded item: counting it shows how often the revision ran."""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.execute("INSERT INTO items (id, name) VALUES (1, 'seed')")
